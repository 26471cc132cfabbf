//! Reading connections: one organization never sees another's.

use super::{add_collection, create, direct_body, setup, with};
use crate::connection::SourceConnection;
use crate::error::DomainError;
use crate::ids::{ConnectionId, OrganizationId};
use crate::page::PageRequest;
use crate::usecases::connections::{get_connection, list_connections};
use serde_json::json;

fn ids(items: &[SourceConnection]) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = items.iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_created_connection_reads_back_as_answered() {
    let (f, org) = setup().await;
    let created = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;

    let read = get_connection(&f.platform, org, &created.id.to_string())
        .await
        .unwrap();

    assert_eq!(read, created);
}

#[tokio::test]
async fn another_organizations_connection_is_not_found() {
    let (f, org) = setup().await;
    let created = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;

    let err = get_connection(&f.platform, OrganizationId::new(), &created.id.to_string())
        .await
        .expect_err("hidden");

    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let (f, org) = setup().await;

    for id in [
        ConnectionId::new().to_string(),
        "not-a-uuid".into(),
        String::new(),
    ] {
        let err = get_connection(&f.platform, org, &id)
            .await
            .expect_err("unknown");
        assert!(matches!(err, DomainError::NotFound(_)), "{id}: {err:?}");
    }
}

#[tokio::test]
async fn the_list_is_filtered_by_collection_and_organization() {
    let (f, org) = setup().await;
    add_collection(&f.platform, org, "notes").await;
    let in_docs = [
        create(&f.platform, org, direct_body())
            .await
            .unwrap()
            .connection,
        create(&f.platform, org, direct_body())
            .await
            .unwrap()
            .connection,
    ];
    let notes_body = with(direct_body(), json!({"readable_collection_id": "notes"}));
    let in_notes = create(&f.platform, org, notes_body)
        .await
        .unwrap()
        .connection;
    let all = PageRequest::default();

    let docs = list_connections(&f.platform, org, Some("docs"), &all)
        .await
        .unwrap();
    assert_eq!(ids(&docs.items), ids(&in_docs));
    assert_eq!(docs.next_cursor, None);

    let notes = list_connections(&f.platform, org, Some("notes"), &all)
        .await
        .unwrap();
    assert_eq!(ids(&notes.items), vec![in_notes.id]);

    let everything = list_connections(&f.platform, org, None, &all)
        .await
        .unwrap();
    assert_eq!(everything.items.len(), 3);

    for unknown in ["nosuch", "Not_An_Id"] {
        let none = list_connections(&f.platform, org, Some(unknown), &all)
            .await
            .unwrap();
        assert!(none.items.is_empty(), "{unknown}");
    }
    let stranger = list_connections(&f.platform, OrganizationId::new(), None, &all)
        .await
        .unwrap();
    assert!(stranger.items.is_empty());
}

#[tokio::test]
async fn the_list_pages_with_limit_skip_and_cursor() {
    let (f, org) = setup().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            create(&f.platform, org, direct_body())
                .await
                .unwrap()
                .connection,
        );
    }
    let page = |skip, limit, cursor| PageRequest {
        skip,
        limit,
        cursor,
    };

    let first = list_connections(&f.platform, org, None, &page(0, 2, None))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let cursor = first.next_cursor.clone().expect("more follow");
    let second = list_connections(&f.platform, org, None, &page(0, 2, Some(cursor)))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    let cursor = second.next_cursor.clone().expect("one more follows");
    let last = list_connections(&f.platform, org, None, &page(0, 2, Some(cursor)))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None);
    let walked: Vec<SourceConnection> = [first.items, second.items, last.items].concat();
    assert_eq!(ids(&walked), ids(&created), "every connection exactly once");

    let skipped = list_connections(&f.platform, org, None, &page(3, 10, None))
        .await
        .unwrap();
    assert_eq!(skipped.items.len(), 2);
    assert_eq!(skipped.next_cursor, None);
}
