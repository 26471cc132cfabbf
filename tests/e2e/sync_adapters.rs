//! The sync's adapters against the emulator: jobs with their leases, checkpoints, seen-key chunks
//! and cursor on the state table; change detection reads on the entities table.

use crate::adapters::{collection, connection, job_for, now};
use crate::helpers::aws::TestAws;
use aws_adapters::DynamoStore;
use chrono::Duration;
use domain::entity::{Change, Entity, EntityKey, EntityWrite};
use domain::feed::{FeedMark, Positions};
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::job::{Counts, JobClaim, JobStatus, Lease, RunState};
use domain::ports::{
    CollectionStore, ConnectionStore, CursorUpdate, EntityStore, FinishedRun, JobStore,
    NewConnection, StoreError,
};
use domain::usecases::sync::SEEN_CHUNK_BYTES;
use serde_json::json;
use std::collections::BTreeMap;

fn lease(holder: &str, seconds: i64) -> Lease {
    Lease {
        holder: holder.to_owned(),
        until: now() + Duration::seconds(seconds),
    }
}

/// A stored connection (at version 1) and its pending first job.
async fn stored(store: &DynamoStore) -> (domain::connection::SourceConnection, domain::job::Job) {
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let c = connection(org, "docs");
    let job = job_for(&c);
    store
        .insert_connection(NewConnection {
            connection: &c,
            first_job: Some(&job),
            idempotency: None,
            events: &[],
        })
        .await
        .unwrap();
    (c, job)
}

#[tokio::test]
async fn a_job_is_held_by_one_run_at_a_time_until_it_ends() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let (c, job) = stored(&store).await;

    let JobClaim::Claimed {
        job: claimed,
        state: checkpoint,
        claim: 1,
    } = store
        .claim_job(c.id, job.id, &lease("a", 60), now(), &|_| Vec::new())
        .await
        .unwrap()
    else {
        panic!("a pending job is claimed");
    };
    assert_eq!(claimed.status, JobStatus::Running);
    assert!(claimed.started_at.is_some() && checkpoint.is_none());
    assert!(matches!(
        store
            .claim_job(c.id, job.id, &lease("b", 60), now(), &|_| Vec::new())
            .await
            .unwrap(),
        JobClaim::Busy { .. }
    ));

    let counts = Counts {
        inserted: 7,
        kept: 2,
        ..Counts::default()
    };
    assert!(matches!(
        store
            .record_progress(c.id, job.id, &lease("b", 60), &counts, None)
            .await,
        Err(StoreError::LeaseLost)
    ));
    // Two feed marks: the newest, and the one it replaced.
    let mut positions = Positions::new(job.id, 1);
    let marks: Vec<FeedMark> = [1, 2]
        .map(|i| FeedMark {
            through: positions.next(now()),
            // Marks keep milliseconds.
            at: chrono::DateTime::from_timestamp_millis(now().timestamp_millis() + i * 1000)
                .unwrap(),
        })
        .to_vec();
    let status = store
        .record_progress(c.id, job.id, &lease("a", 60), &counts, Some(&marks[0]))
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Running);
    assert_eq!(
        store
            .get_job(c.id, job.id)
            .await
            .unwrap()
            .unwrap()
            .entities_inserted,
        7
    );

    // A hand-over: the checkpoint is saved and the lease released for the next delivery.
    let checkpoint = RunState {
        stream_checkpoint: Some(json!({"next": 3, "since": {"etag": "x"}})),
        counts,
        tallies: BTreeMap::new(),
        seen_chunks: 2,
        store_was_empty: true,
        ..RunState::default()
    };
    store
        .save_run_state(c.id, job.id, "a", &checkpoint, None, Some(&marks[1]))
        .await
        .unwrap();
    let newest = store.feed_marks(c.id).await.unwrap();
    assert_eq!(newest.len(), 1, "one job");
    assert_eq!(newest[0].job, job.id);
    assert_eq!(newest[0].ended_at, None);
    assert_eq!(newest[0].marks, vec![marks[1], marks[0]]);
    let JobClaim::Claimed {
        job: resumed,
        state: restored,
        claim: 2,
    } = store
        .claim_job(c.id, job.id, &lease("b", 60), now(), &|_| Vec::new())
        .await
        .unwrap()
    else {
        panic!("a released job is claimed at once");
    };
    assert_eq!(restored, Some(checkpoint));
    assert_eq!(resumed.started_at, claimed.started_at, "started_at is kept");

    // The first holder lost it: nothing it writes lands.
    let mut done = (*resumed).clone();
    done.status = JobStatus::Completed;
    let cursor = json!({"since": 42});
    let finish = |holder: &'static str, version| FinishedRun {
        job: &done,
        holder,
        connection: Some((&c, version)),
        cursor: CursorUpdate::Save(&cursor),
        events: &[],
    };
    assert!(matches!(
        store.finish_job(finish("a", 1)).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.finish_job(finish("b", 7)).await,
        Err(StoreError::VersionConflict)
    ));
    assert_eq!(
        store.sync_cursor(c.id).await.unwrap(),
        None,
        "a refused outcome writes nothing"
    );
    store.finish_job(finish("b", 1)).await.unwrap();

    assert_eq!(
        store
            .get_versioned(c.organization_id, c.id)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        store.sync_cursor(c.id).await.unwrap(),
        Some(json!({"since": 42}))
    );
    assert!(matches!(
        store
            .claim_job(c.id, job.id, &lease("c", 60), now(), &|_| Vec::new())
            .await
            .unwrap(),
        JobClaim::Finished(JobStatus::Completed)
    ));
    assert!(matches!(
        store
            .claim_job(c.id, JobId::new(), &lease("c", 60), now(), &|_| Vec::new())
            .await
            .unwrap(),
        JobClaim::Missing
    ));
    let item = aws
        .item(&format!("CONN#{}", c.id), &format!("JOB#{}", job.id))
        .await
        .unwrap();
    assert!(!item.contains_key("lease_holder") && !item.contains_key("checkpoint"));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_jobs_list_newest_first() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let (c, job) = stored(&store).await;
    store
        .claim_job(
            c.id,
            job.id,
            &lease("dead", -1),
            now() - Duration::seconds(5),
            &|_| Vec::new(),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .claim_job(c.id, job.id, &lease("alive", 60), now(), &|_| Vec::new())
            .await
            .unwrap(),
        JobClaim::Claimed { .. }
    ));
    // The first job still holds the connection's slot: another cannot start until it ends.
    let later = job_for(&c);
    assert!(matches!(
        store.start_job(&later, &[]).await,
        Err(StoreError::JobActive)
    ));
    let mut ended = store.get_job(c.id, job.id).await.unwrap().unwrap();
    ended.status = JobStatus::Failed;
    let run = FinishedRun {
        job: &ended,
        holder: "alive",
        connection: None,
        cursor: CursorUpdate::Keep,
        events: &[],
    };
    store.finish_job(run).await.unwrap();
    store.start_job(&later, &[]).await.unwrap();
    let listed = store.list_jobs(c.id, &Default::default()).await.unwrap();
    let ids: Vec<JobId> = listed.items.iter().map(|j| j.id).collect();
    assert_eq!(ids, [later.id, job.id]);
}

#[tokio::test]
async fn seen_key_chunks_round_trip_in_order_and_are_deleted_with_the_run() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let (c, job) = stored(&store).await;
    let chunks: Vec<Vec<u8>> = vec![vec![1; SEEN_CHUNK_BYTES], vec![2; 32], vec![3; 16]];
    for (i, chunk) in chunks.iter().enumerate() {
        store
            .put_seen_chunk(c.id, job.id, i as u32, chunk)
            .await
            .unwrap();
    }
    // Only the chunks a checkpoint counts: a third written by an unfinished hand-over is not.
    assert_eq!(
        store.seen_chunks(c.id, job.id, 2).await.unwrap(),
        chunks[..2]
    );
    store.delete_seen_chunks(c.id, job.id).await.unwrap();
    assert!(store.seen_chunks(c.id, job.id, 3).await.unwrap().is_empty());
    assert!(aws
        .scan_keys()
        .await
        .iter()
        .all(|(_, sk)| !sk.starts_with("CKPT#")));
}

#[tokio::test]
async fn stored_entities_are_read_back_for_comparison_in_batches() {
    let aws = TestAws::fresh().await;
    let entities = aws.entities();
    let connection = ConnectionId::new();
    let job = JobId::new();
    assert!(!entities.has_entities(connection).await.unwrap());
    let writes: Vec<EntityWrite> = (0..130)
        .map(|i| {
            let entity = Entity {
                entity_type: "doc".into(),
                entity_id: format!("{i:03}"),
                title: format!("Doc {i}"),
                updated_at: Some(now()),
                payload: json!({"i": i}),
            };
            crate::helpers::syncing::write_of(
                entity,
                job,
                if i % 2 == 0 {
                    Change::Inserted
                } else {
                    Change::Updated
                },
            )
        })
        .collect();
    entities.write(connection, &writes).await.unwrap();
    assert!(entities.has_entities(connection).await.unwrap());

    let mut keys: Vec<EntityKey> = writes.iter().map(|w| w.key.clone()).collect();
    keys.push(EntityKey::new("doc", "missing").unwrap());
    let found = entities.stored(connection, &keys).await.unwrap();
    assert_eq!(
        found.len(),
        130,
        "more than one BatchGetItem's 100 keys; the missing one left out"
    );
    let odd = &found[&writes[1].key];
    assert_eq!(
        (odd.hash, odd.written_by, odd.change),
        (writes[1].hash, Some(job), Some(Change::Updated))
    );

    let listed = entities.keys(connection, None).await.unwrap();
    assert_eq!(listed.keys.len(), 130);
    assert_eq!(listed.next, None);
    entities.delete(connection, &keys[..60]).await.unwrap();
    assert_eq!(
        entities.keys(connection, None).await.unwrap().keys.len(),
        70
    );
    let other = entities.stored(ConnectionId::new(), &keys).await.unwrap();
    assert!(
        other.is_empty(),
        "another connection's partition is another's"
    );
}

#[tokio::test]
async fn unprocessed_items_and_keys_are_sent_again_until_done() {
    use crate::helpers::sdk::{CallLog, Unprocessed, WithInterceptor};
    let aws = TestAws::fresh().await;
    let log = CallLog::default();
    // The first `n` batch answers hand everything back.
    let throttled = |n| {
        let client = log.dynamodb(&Unprocessed::new(n).dynamodb(&aws.clients.dynamodb));
        aws_adapters::DynamoEntities::new(client, &aws.entities_table)
    };
    let connection = ConnectionId::new();
    let writes: Vec<EntityWrite> = (0..25)
        .map(|i| {
            let entity = Entity {
                entity_type: "doc".into(),
                entity_id: format!("{i}"),
                title: String::new(),
                updated_at: None,
                payload: json!(i),
            };
            crate::helpers::syncing::write_of(entity, JobId::new(), Change::Inserted)
        })
        .collect();
    // Two answers hand everything back: three requests in all, then the write is done.
    throttled(2).write(connection, &writes).await.unwrap();
    assert_eq!(log.count("DynamoDB_20120810.BatchWriteItem"), 3);
    let keys: Vec<EntityKey> = writes.iter().map(|w| w.key.clone()).collect();
    // One answer hands the keys back: the read is sent again and finds all 25.
    let found = throttled(1).stored(connection, &keys).await.unwrap();
    assert_eq!(found.len(), 25);
    assert_eq!(log.count("DynamoDB_20120810.BatchGetItem"), 2);
}

#[tokio::test]
async fn an_ended_job_expires_after_the_retention_and_a_live_one_never() {
    let aws = TestAws::fresh().await;
    let store = aws.store().with_job_retention(7);
    let (c, job) = stored(&store).await;
    let ttl = |item: Option<std::collections::HashMap<String, _>>| {
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            item.expect("the job's item");
        item.get("ttl")
            .map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
    };
    let pk = format!("CONN#{}", c.id);
    let job_item = |id: JobId| {
        let (aws, pk) = (&aws, pk.clone());
        async move { aws.item(&pk, &format!("JOB#{id}")).await }
    };
    store
        .claim_job(c.id, job.id, &lease("a", 60), now(), &|_| Vec::new())
        .await
        .unwrap();
    assert_eq!(
        ttl(job_item(job.id).await),
        None,
        "a running job does not expire"
    );

    let at = now();
    let mut ended = store.get_job(c.id, job.id).await.unwrap().unwrap();
    ended.status = JobStatus::Completed;
    ended.completed_at = Some(at);
    let run = FinishedRun {
        job: &ended,
        holder: "a",
        connection: None,
        cursor: CursorUpdate::Keep,
        events: &[],
    };
    store.finish_job(run).await.unwrap();
    let week = (at + Duration::days(7)).timestamp();
    assert_eq!(ttl(job_item(job.id).await), Some(week));

    // A pending job cancelled at once ends then, and expires a week later too.
    let later = job_for(&c);
    store.start_job(&later, &[]).await.unwrap();
    store
        .cancel_job(c.id, later.id, at, &|_| Vec::new())
        .await
        .unwrap();
    assert_eq!(ttl(job_item(later.id).await), Some(week));
}
