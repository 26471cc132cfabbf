//! The change feed's marks on a job's item: `feed_mark`, the newest "every write up to this
//! position was done at this time" the run recorded, and `feed_mark_before`, the one it replaced
//! (see `domain::feed`). Recorded with the run's progress and run-state writes; read, with the
//! job's times, for the connection's two newest jobs.

use super::jobs::JOB_PREFIX;
use super::keys::connection_pk;
use super::{backend, from_item, s, DynamoStore};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::feed::{FeedMark, JobMarks};
use domain::ids::ConnectionId;
use domain::job::Job;
use domain::ports::StoreError;
use std::collections::HashMap;

const FEED_MARK: &str = "feed_mark";
const FEED_MARK_BEFORE: &str = "feed_mark_before";
/// Records a mark (`:mark`), keeping the one it replaces.
const MARK_UPDATE: &str = "feed_mark_before = if_not_exists(feed_mark, :mark), feed_mark = :mark";

/// `, <mark update>` for an update expression's SET clause when there is a mark to record.
pub(super) fn mark_update(
    mark: Option<&FeedMark>,
    values: &mut HashMap<String, AttributeValue>,
) -> String {
    match mark {
        Some(mark) => {
            values.insert(":mark".to_owned(), s(mark.to_string()));
            format!(", {MARK_UPDATE}")
        }
        None => String::new(),
    }
}

impl DynamoStore {
    /// The connection's two newest jobs, newest first, with their marks.
    pub(super) async fn newest_marks(
        &self,
        connection: ConnectionId,
    ) -> Result<Vec<JobMarks>, StoreError> {
        // Consistent: a job created since must not be missed (its writes are not settled).
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :jobs)")
            .expression_attribute_values(":pk", s(connection_pk(connection)))
            .expression_attribute_values(":jobs", s(JOB_PREFIX))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(2)
            .send()
            .await
            .map_err(backend)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let marks = [FEED_MARK, FEED_MARK_BEFORE]
                    .iter()
                    .filter_map(|name| item.get(*name)?.as_s().ok()?.parse::<FeedMark>().ok())
                    .collect();
                let job: Job = from_item(item)?;
                Ok(JobMarks {
                    job: job.id,
                    created_at: job.created_at,
                    ended_at: job
                        .status
                        .is_terminal()
                        .then_some(job.completed_at)
                        .flatten(),
                    marks,
                })
            })
            .collect()
    }
}
