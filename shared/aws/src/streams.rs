//! Lambda's DynamoDB Streams event source mapping, done locally (the dev gateway, tests): reads a
//! table's stream from its trim horizon, shard by shard (a child only once its parent is read to
//! its end), hands each batch of records to the handler the Lambda function runs, as the
//! `aws_lambda_events` event Lambda would send, and reads on from the first record the handler
//! reported as failed (`ReportBatchItemFailures`, no bisecting), as Lambda does.

mod event;

pub use event::RecordError;

use crate::clients::Deferred;
use crate::error::{adapter, boxed, service_code};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_dynamodbstreams::Client;
use domain::ports::BoxError;
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;
use tokio::time::{sleep, Instant};
use tracing::{debug, warn};

/// Records per batch at most, as the default of Lambda's event source mapping.
const BATCH_SIZE: i32 = 100;
/// The pause after a round that found no records: Lambda reads each shard four times a second.
const IDLE: Duration = Duration::from_millis(250);
/// The first pause after a failed round (an error, or a batch to hand over again); it doubles
/// with each failed round in a row, up to `MAX_BACKOFF`.
const BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the shards are listed again, for new ones; a shard read to its end (its children
/// are due) has them listed at once.
const SHARD_REFRESH: Duration = Duration::from_secs(10);

/// Reading the stream failed; nothing was skipped: the next round reads on from the last
/// record the handler took.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("could not list the shards of stream '{stream}'")]
    Describe {
        stream: String,
        #[source]
        source: BoxError,
    },
    #[error("could not get an iterator of shard '{shard}'")]
    Iterator {
        shard: String,
        #[source]
        source: BoxError,
    },
    #[error("could not read the records of shard '{shard}'")]
    Records {
        shard: String,
        #[source]
        source: BoxError,
    },
    #[error("a record of shard '{shard}' does not fit Lambda's event")]
    Record {
        shard: String,
        #[source]
        source: RecordError,
    },
}

/// Reads one stream and hands its records to a handler, as Lambda's event source mapping with
/// starting position `TRIM_HORIZON`, batch size 100 and `ReportBatchItemFailures`.
/// It keeps its place in memory only: a new poller reads the stream from its trim horizon.
#[derive(Debug)]
pub struct StreamPoller {
    client: Deferred<Client>,
    stream_arn: String,
    /// Shards not read to their end, in the order the stream lists them.
    shards: Vec<Shard>,
    /// Shards read to their end: their children may be read.
    ended: HashSet<String>,
    listed_at: Option<Instant>,
}

#[derive(Debug)]
struct Shard {
    id: String,
    parent: Option<String>,
    /// The iterator the last read answered; none when the next read starts from `resume`.
    iterator: Option<String>,
    resume: Resume,
    ended: bool,
}

/// Where a shard is read from when it has no iterator.
#[derive(Debug, Clone)]
enum Resume {
    TrimHorizon,
    /// A batch the handler failed: again from its first failed record.
    At(String),
    /// After the last record the handler took.
    After(String),
}

/// What one round over the shards did.
#[derive(Debug, Default, Clone, Copy)]
struct Round {
    handed_over: usize,
    retrying: bool,
}

impl StreamPoller {
    pub fn new(client: impl Into<Deferred<Client>>, stream_arn: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            stream_arn: stream_arn.into(),
            shards: Vec::new(),
            ended: HashSet::new(),
            listed_at: None,
        }
    }

    /// The stream this poller reads.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// One read of every shard that is due (listing the shards first when that is due) and the
    /// batches it brought handed to `handler`; answers how many records were handed over. A
    /// record the handler reports as failed comes again, with the ones after it, in the next
    /// round. On an error the shards not read yet wait for the next round.
    pub async fn poll_once<H, F>(&mut self, mut handler: H) -> Result<usize, StreamError>
    where
        H: FnMut(Event) -> F,
        F: Future<Output = DynamoDbEventResponse>,
    {
        self.round(&mut handler)
            .await
            .map(|round| round.handed_over)
    }

    /// Polls until `shutdown` resolves: at once after a round that handed records over, after a
    /// short pause after one that found none, and after a growing pause after an error (logged)
    /// or a batch to hand over again. Shutting down drops a batch the handler is still on; the
    /// poller's place in the stream is lost with it anyway.
    pub async fn run<H, F>(mut self, mut handler: H, shutdown: impl Future<Output = ()>)
    where
        H: FnMut(Event) -> F,
        F: Future<Output = DynamoDbEventResponse>,
    {
        tokio::pin!(shutdown);
        let mut setbacks = 0u32;
        loop {
            let outcome = tokio::select! {
                outcome = self.round(&mut handler) => outcome,
                () = &mut shutdown => break,
            };
            let pause = match outcome {
                Ok(round) if round.retrying => backoff(&mut setbacks),
                Ok(round) => {
                    setbacks = 0;
                    if round.handed_over == 0 {
                        IDLE
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    warn!(
                        stream = %self.stream_arn,
                        error = %DisplayErrorContext(&e),
                        "could not read the stream; trying again"
                    );
                    backoff(&mut setbacks)
                }
            };
            tokio::select! {
                () = sleep(pause) => {}
                () = &mut shutdown => break,
            }
        }
    }

    async fn round<H, F>(&mut self, handler: &mut H) -> Result<Round, StreamError>
    where
        H: FnMut(Event) -> F,
        F: Future<Output = DynamoDbEventResponse>,
    {
        if self
            .listed_at
            .is_none_or(|at| at.elapsed() >= SHARD_REFRESH)
        {
            self.list_shards().await?;
        }
        let mut round = Round::default();
        let mut outcome = Ok(());
        for i in 0..self.shards.len() {
            if !self.is_due(&self.shards[i]) {
                continue;
            }
            match self.shards[i]
                .read(&self.client, &self.stream_arn, handler)
                .await
            {
                Ok(read) => {
                    round.handed_over += read.handed_over;
                    round.retrying |= read.retrying;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let before = self.shards.len();
        let ended = &mut self.ended;
        self.shards.retain(|shard| {
            if shard.ended {
                ended.insert(shard.id.clone());
            }
            !shard.ended
        });
        if self.shards.len() < before {
            // Their children are due now, not at the next refresh.
            self.listed_at = None;
        }
        outcome.map(|()| round)
    }

    /// A shard is read once its parent is read to its end (or was never seen: trimmed).
    fn is_due(&self, shard: &Shard) -> bool {
        shard
            .parent
            .as_ref()
            .is_none_or(|parent| !self.shards.iter().any(|s| &s.id == parent))
    }

    /// Adds the stream's shards this poller does not know yet, read from the trim horizon.
    async fn list_shards(&mut self) -> Result<(), StreamError> {
        let fail = |source| StreamError::Describe {
            stream: self.stream_arn.clone(),
            source,
        };
        let mut listed = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| fail(boxed(e)))?;
            let description = out
                .stream_description
                .ok_or_else(|| fail(adapter("DescribeStream answered no description")))?;
            listed.extend(description.shards.unwrap_or_default());
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        for shard in listed {
            let Some(id) = shard.shard_id else { continue };
            if self.ended.contains(&id) || self.shards.iter().any(|s| s.id == id) {
                continue;
            }
            self.shards.push(Shard {
                id,
                parent: shard.parent_shard_id,
                iterator: None,
                resume: Resume::TrimHorizon,
                ended: false,
            });
        }
        self.listed_at = Some(Instant::now());
        Ok(())
    }
}

impl Shard {
    /// One GetRecords and, when it brought records, the batch handed to `handler`.
    async fn read<H, F>(
        &mut self,
        client: &Client,
        stream_arn: &str,
        handler: &mut H,
    ) -> Result<Round, StreamError>
    where
        H: FnMut(Event) -> F,
        F: Future<Output = DynamoDbEventResponse>,
    {
        let iterator = match self.iterator.take() {
            Some(iterator) => iterator,
            None => match self.iterator_from_resume(client, stream_arn).await? {
                Some(iterator) => iterator,
                None => return Ok(Round::default()),
            },
        };
        // On an error the iterator is dropped: the next read gets a new one from where the
        // handler left off, which is all an expired one (after 15 minutes) needs.
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .limit(BATCH_SIZE)
            .send()
            .await
            .map_err(|e| StreamError::Records {
                shard: self.id.clone(),
                source: boxed(e),
            })?;
        let records = out.records.unwrap_or_default();
        if records.is_empty() {
            match out.next_shard_iterator {
                Some(next) => self.iterator = Some(next),
                None => self.ended = true,
            }
            return Ok(Round::default());
        }
        let mut event = Event::default();
        for record in records {
            match event::event_record(record, stream_arn) {
                Ok(record) => event.records.push(record),
                Err(source) => {
                    // Read the same batch again: never skip past a record.
                    self.iterator = Some(iterator);
                    return Err(StreamError::Record {
                        shard: self.id.clone(),
                        source,
                    });
                }
            }
        }
        let sequence_numbers: Vec<String> = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone().unwrap_or_default())
            .collect();
        let response = handler(event).await;
        match first_failure(&sequence_numbers, &response).and_then(|i| sequence_numbers.get(i)) {
            Some(failed) => {
                debug!(
                    shard = %self.id,
                    sequence_number = %failed,
                    "batch item failure: the shard is read again from that record"
                );
                self.resume = Resume::At(failed.clone());
                Ok(Round {
                    handed_over: sequence_numbers.len(),
                    retrying: true,
                })
            }
            None => {
                if let Some(last) = sequence_numbers.last() {
                    self.resume = Resume::After(last.clone());
                }
                match out.next_shard_iterator {
                    Some(next) => self.iterator = Some(next),
                    None => self.ended = true,
                }
                Ok(Round {
                    handed_over: sequence_numbers.len(),
                    retrying: false,
                })
            }
        }
    }

    /// A new iterator at `resume`; none when the shard is gone from the stream (trimmed), which
    /// ends it.
    async fn iterator_from_resume(
        &mut self,
        client: &Client,
        stream_arn: &str,
    ) -> Result<Option<String>, StreamError> {
        let request = client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(&self.id);
        let request = match &self.resume {
            Resume::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Resume::At(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence_number),
            Resume::After(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence_number),
        };
        let fail = |source| StreamError::Iterator {
            shard: self.id.clone(),
            source,
        };
        match request.send().await {
            Ok(out) => out
                .shard_iterator
                .map(Some)
                .ok_or_else(|| fail(adapter("GetShardIterator answered no iterator"))),
            Err(e) => match service_code(&e) {
                Some("ResourceNotFoundException") => {
                    warn!(
                        shard = %self.id,
                        "the shard is gone from the stream; reading its children"
                    );
                    self.ended = true;
                    Ok(None)
                }
                Some("TrimmedDataAccessException") => {
                    // The records to resume from are past the stream's 24 hours: read what is
                    // left, as Lambda does when its position has been trimmed.
                    warn!(
                        shard = %self.id,
                        "the shard's position was trimmed; reading on from its trim horizon"
                    );
                    self.resume = Resume::TrimHorizon;
                    Err(fail(boxed(e)))
                }
                _ => Err(fail(boxed(e))),
            },
        }
    }
}

/// The position in the batch from which it is handed over again: that of the first record the
/// response names, or the whole batch when it names a record not in it (as Lambda treats a
/// failure it cannot place); none when the handler took every record.
fn first_failure(sequence_numbers: &[String], response: &DynamoDbEventResponse) -> Option<usize> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| {
            failure
                .item_identifier
                .as_deref()
                .and_then(|id| sequence_numbers.iter().position(|s| s == id))
                .unwrap_or(0)
        })
        .min()
}

fn backoff(setbacks: &mut u32) -> Duration {
    let pause = BACKOFF.saturating_mul(1 << (*setbacks).min(16));
    *setbacks = setbacks.saturating_add(1);
    pause.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    fn failing(ids: &[&str]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for id in ids {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some((*id).to_owned());
            response.batch_item_failures.push(failure);
        }
        response
    }

    fn batch() -> Vec<String> {
        ["101", "102", "103", "104"].map(String::from).to_vec()
    }

    #[test]
    fn a_batch_the_handler_took_is_not_handed_over_again() {
        assert_eq!(
            first_failure(&batch(), &DynamoDbEventResponse::default()),
            None
        );
    }

    #[test]
    fn the_batch_comes_again_from_its_first_failed_record() {
        assert_eq!(first_failure(&batch(), &failing(&["104", "102"])), Some(1));
    }

    #[test]
    fn a_failure_the_batch_does_not_hold_hands_the_whole_batch_over_again() {
        assert_eq!(first_failure(&batch(), &failing(&["103", "999"])), Some(0));
        assert_eq!(first_failure(&batch(), &failing(&[""])), Some(0));
        let mut none = failing(&[]);
        none.batch_item_failures
            .push(DynamoDbBatchItemFailure::default());
        assert_eq!(first_failure(&batch(), &none), Some(0));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling() {
        let mut setbacks = 0;
        let pauses: Vec<_> = (0..8).map(|_| backoff(&mut setbacks)).collect();
        assert_eq!(pauses[0], BACKOFF);
        assert_eq!(pauses[1], BACKOFF * 2);
        assert_eq!(pauses[7], MAX_BACKOFF);
        let mut many = u32::MAX;
        assert_eq!(backoff(&mut many), MAX_BACKOFF);
    }
}
