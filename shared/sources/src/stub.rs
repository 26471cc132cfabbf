//! `stub`: a synthetic source with no network, for demos, load tests and benchmarks.
//!
//! A sync yields `entity_count` entities, deterministic from `seed`: every 25th (index 0, 25,
//! 50, ...) a `stub_container`, the others `stub_item`s that name their container, in pages of
//! 100. `revision` changes a fixed subset: revision step `k` changes the entities whose index
//! ends in the digit `k % 10` (every 10th entity), so raising `revision` by one updates exactly
//! 10% of them. With `incremental: true` a run after a completed one yields only what changed
//! since (new indexes and the revised subset), and never anything that was removed.
//! `fail_after: N` with `fail_with` (`auth`, `rate_limit`, `server_error`) fails the stream once
//! N entities were yielded: a rejected key, a 2-second rate limit (once: the resumed run goes
//! on), or an upstream failure.

use crate::source::Source;
use async_trait::async_trait;
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, FieldSpec, FieldType, SourceSpec};
use domain::entity::Entity;
use domain::ports::CheckError;
use domain::stream::{EntityPage, EntityStream, StreamError, StreamRequest};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Entities per page.
pub const STUB_PAGE_SIZE: usize = 100;
/// How long a `fail_with: rate_limit` asks to wait.
pub const STUB_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);
/// Every this many entities is a container.
const CONTAINER_EVERY: u32 = 25;

/// The synthetic source: `entity_count` deterministic entities from `seed`; its credential check
/// accepts any non-empty `api_key`.
#[derive(Debug, Clone)]
pub struct StubSource {
    spec: SourceSpec,
}

impl StubSource {
    pub const SHORT_NAME: &'static str = "stub";

    pub fn new() -> Self {
        Self { spec: spec() }
    }
}

impl Default for StubSource {
    fn default() -> Self {
        Self::new()
    }
}

/// A failure the stub injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubFailure {
    Auth,
    RateLimit,
    ServerError,
}

/// The stub's config with its defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubConfig {
    pub entity_count: u32,
    pub seed: u32,
    pub revision: u32,
    pub incremental: bool,
    /// Fail with this once `fail_after` entities were yielded.
    pub fail: Option<(u32, StubFailure)>,
    /// Entities per page, at most [`STUB_PAGE_SIZE`].
    pub page_size: u32,
}

impl StubConfig {
    pub const DEFAULT_ENTITY_COUNT: u32 = 100;
    pub const MAX_ENTITY_COUNT: u32 = 1_000_000;
    pub const DEFAULT_SEED: u32 = 0;
    pub const MAX_SEED: u32 = i32::MAX as u32;
    pub const MAX_REVISION: u32 = 1_000_000;

    /// Reads a config that already passed the spec's validation; absent (or out-of-range,
    /// which validation rules out) values take their defaults.
    pub fn from_config(config: &Map<String, Value>) -> Self {
        let read = |name: &str, max: u32, default: u32| {
            config
                .get(name)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= max)
                .unwrap_or(default)
        };
        Self {
            entity_count: read(
                "entity_count",
                Self::MAX_ENTITY_COUNT,
                Self::DEFAULT_ENTITY_COUNT,
            )
            .max(1),
            seed: read("seed", Self::MAX_SEED, Self::DEFAULT_SEED),
            revision: read("revision", Self::MAX_REVISION, 0),
            page_size: read("page_size", STUB_PAGE_SIZE as u32, STUB_PAGE_SIZE as u32).max(1),
            incremental: config
                .get("incremental")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            fail: config
                .get("fail_with")
                .and_then(Value::as_str)
                .and_then(|f| match f {
                    "auth" => Some(StubFailure::Auth),
                    "rate_limit" => Some(StubFailure::RateLimit),
                    "server_error" => Some(StubFailure::ServerError),
                    _ => None,
                })
                .map(|f| (read("fail_after", Self::MAX_ENTITY_COUNT, 0), f)),
        }
    }

    /// How many revision steps up to `revision` changed entity `index`.
    pub fn version(index: u32, revision: u32) -> u32 {
        let digit = index % 10;
        let first = if digit == 0 { 10 } else { digit };
        if revision < first {
            0
        } else {
            (revision - first) / 10 + 1
        }
    }

    /// Entity `index` at `revision`.
    pub fn entity(&self, index: u32, revision: u32) -> Entity {
        let version = Self::version(index, revision);
        let container = index - index % CONTAINER_EVERY;
        let mut rng = Rng::new(self.seed, index, version);
        let words: Vec<&str> = (0..24).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let updated_at: DateTime<Utc> =
            base + TimeDelta::seconds(i64::from(index)) + TimeDelta::days(i64::from(version));
        if index % CONTAINER_EVERY == 0 {
            Entity {
                entity_type: "stub_container".into(),
                entity_id: format!("{index:07}"),
                title: format!("Container {index}: {} {}", words[0], words[1]),
                updated_at: Some(updated_at),
                payload: json!({
                    "index": index,
                    "version": version,
                    "description": words.join(" "),
                    "items": CONTAINER_EVERY - 1,
                }),
            }
        } else {
            Entity {
                entity_type: "stub_item".into(),
                entity_id: format!("{index:07}"),
                title: format!("Item {index}: {} {} {}", words[0], words[1], words[2]),
                updated_at: Some(updated_at),
                payload: json!({
                    "index": index,
                    "version": version,
                    "container_id": format!("{container:07}"),
                    "body": words.join(" "),
                    "score": rng.below(1000),
                    "tags": [words[3], words[4]],
                }),
            }
        }
    }
}

const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber", "cobalt", "ember", "frost",
    "granite", "harbor",
];

/// A small deterministic generator (xorshift64*), seeded per entity and version.
struct Rng(u64);

impl Rng {
    fn new(seed: u32, index: u32, version: u32) -> Self {
        let mixed = (u64::from(seed) << 32 | u64::from(index))
            ^ u64::from(version).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self(mixed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Where the stub's run is: the next index to look at and how many entities it yielded.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    next: u32,
    yielded: u32,
}

/// What a completed run leaves for the next incremental one.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Cursor {
    seed: u32,
    revision: u32,
    entity_count: u32,
}

struct StubStream {
    config: StubConfig,
    /// Set for an incremental run: what the last completed run had seen.
    since: Option<Cursor>,
    position: Checkpoint,
    resumed: bool,
}

#[async_trait]
impl EntityStream for StubStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let config = self.config;
        let mut room = config.page_size;
        if let Some((after, failure)) = config.fail {
            let past = self.position.yielded >= after;
            // A rate limit happens once: the run resumed after it goes on.
            if past && !(failure == StubFailure::RateLimit && self.resumed) {
                return Err(match failure {
                    StubFailure::Auth => {
                        StreamError::Rejected("the stub was told to reject the api_key".into())
                    }
                    StubFailure::RateLimit => StreamError::RateLimited {
                        wait: STUB_RATE_LIMIT_WAIT,
                    },
                    StubFailure::ServerError => StreamError::Upstream(
                        "the stub was told to fail (HTTP 500 Internal Server Error)".into(),
                    ),
                });
            }
            if !past {
                room = room.min(after - self.position.yielded);
            }
        }
        let mut entities = Vec::new();
        while self.position.next < config.entity_count && (entities.len() as u32) < room {
            let index = self.position.next;
            self.position.next += 1;
            let changed = match self.since {
                None => true,
                Some(since) => {
                    index >= since.entity_count
                        || StubConfig::version(index, since.revision)
                            != StubConfig::version(index, config.revision)
                }
            };
            if changed {
                entities.push(config.entity(index, config.revision));
            }
        }
        if entities.is_empty() && self.position.next >= config.entity_count {
            return Ok(None);
        }
        self.position.yielded += entities.len() as u32;
        Ok(Some(EntityPage {
            removed: Vec::new(),
            entities,
            checkpoint: serde_json::to_value(self.position).expect("a position serializes"),
        }))
    }

    fn incremental(&self) -> bool {
        self.since.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        self.config.incremental.then(|| {
            json!(Cursor {
                seed: self.config.seed,
                revision: self.config.revision,
                entity_count: self.config.entity_count,
            })
        })
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: StubSource::SHORT_NAME,
        name: "Stub",
        class_name: "StubSource",
        description: "A synthetic source that generates deterministic entities without any \
                      network access, for demos, load tests and benchmarks.",
        auth_methods: vec![AuthMethod::Direct],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new("api_key", "API Key", FieldType::String)
            .describe("Any non-empty value; the stub source checks nothing upstream.")
            .required()
            .secret()],
        config_fields: vec![
            FieldSpec::new("entity_count", "Entity count", FieldType::Integer)
                .describe("How many entities a sync generates (default 100).")
                .range(1, i64::from(StubConfig::MAX_ENTITY_COUNT)),
            FieldSpec::new("seed", "Seed", FieldType::Integer)
                .describe(
                    "Seed of the generator: the same seed and count give the same entities \
                     (default 0).",
                )
                .range(0, i64::from(StubConfig::MAX_SEED)),
            FieldSpec::new("revision", "Revision", FieldType::Integer)
                .describe(
                    "Content revision (default 0): each step changes every 10th entity, those \
                     whose index ends in the step's last digit.",
                )
                .range(0, i64::from(StubConfig::MAX_REVISION)),
            FieldSpec::new("page_size", "Page size", FieldType::Integer)
                .describe("Entities per page (default and most: 100).")
                .range(1, STUB_PAGE_SIZE as i64),
            FieldSpec::new("incremental", "Incremental", FieldType::Boolean).describe(
                "Sync incrementally after the first run: yield only what changed since the last \
                 completed one (default false: every run is a full sync).",
            ),
            FieldSpec::new("fail_after", "Fail after", FieldType::Integer)
                .describe("With fail_with: fail once this many entities were yielded (default 0).")
                .range(0, i64::from(StubConfig::MAX_ENTITY_COUNT)),
            {
                let mut fail = FieldSpec::new("fail_with", "Fail with", FieldType::String)
                    .describe(
                    "Inject a failure: auth (the key is rejected), rate_limit (wait 2 s, once) or \
                     server_error.",
                );
                fail.enum_values = Some(vec!["auth", "rate_limit", "server_error"]);
                fail
            },
        ],
        supported_auth_providers: vec![],
        entity_types: vec!["stub_container", "stub_item"],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Internal"],
        oauth: None,
    }
}

#[async_trait]
impl Source for StubSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        match auth {
            AuthenticationRequest::Direct(credentials) => match credentials.string("api_key") {
                Some(key) if !key.trim().is_empty() => Ok(()),
                _ => Err(CheckError::Rejected("api_key must not be empty".into())),
            },
            other => Err(CheckError::Rejected(format!(
                "the stub source does not take {} authentication",
                other.method().as_str()
            ))),
        }
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let config = StubConfig::from_config(&request.config);
        let since = request
            .cursor
            .and_then(|v| serde_json::from_value::<Cursor>(v).ok())
            .filter(|since| config.incremental && since.seed == config.seed);
        let (position, resumed) = match request.checkpoint {
            Some(v) => (
                serde_json::from_value(v).map_err(|_| {
                    StreamError::Malformed("the stub's checkpoint is unreadable".into())
                })?,
                true,
            ),
            None => (Checkpoint::default(), false),
        };
        Ok(Box::new(StubStream {
            config,
            since,
            position,
            resumed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::auth::Credentials;
    use domain::catalog::validate_fields;
    use domain::entity::Entity;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    fn config_errors(v: Value) -> Vec<String> {
        validate_fields(&spec().config_fields, &object(v), "config")
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn config_is_optional_and_bounded() {
        assert!(config_errors(json!({})).is_empty());
        assert!(config_errors(json!({"entity_count": 1, "seed": 0})).is_empty());
        assert!(
            config_errors(json!({"entity_count": 1_000_000, "seed": 2_147_483_647})).is_empty()
        );
        assert_eq!(
            config_errors(json!({"entity_count": 0})),
            ["config.entity_count: must be between 1 and 1000000"]
        );
        assert_eq!(
            config_errors(json!({"entity_count": 1_000_001})),
            ["config.entity_count: must be between 1 and 1000000"]
        );
        assert_eq!(
            config_errors(json!({"seed": -1})),
            ["config.seed: must be between 0 and 2147483647"]
        );
        assert_eq!(
            config_errors(json!({"seed": 2_147_483_648_i64})),
            ["config.seed: must be between 0 and 2147483647"]
        );
    }

    #[test]
    fn defaults_apply_to_absent_fields() {
        assert_eq!(
            StubConfig::from_config(&Map::new()),
            StubConfig {
                entity_count: 100,
                seed: 0,
                revision: 0,
                incremental: false,
                fail: None,
                page_size: 100,
            }
        );
        assert_eq!(
            StubConfig::from_config(&object(
                json!({"entity_count": 7, "seed": 42, "revision": 3, "incremental": true, "fail_with": "auth", "page_size": 3})
            )),
            StubConfig {
                entity_count: 7,
                seed: 42,
                revision: 3,
                incremental: true,
                fail: Some((0, StubFailure::Auth)),
                page_size: 3,
            }
        );
    }

    fn request(config: Value, since: Option<Value>, resume: Option<Value>) -> StreamRequest {
        StreamRequest {
            auth: AuthenticationRequest::Direct(Credentials::new(object(json!({"api_key": "k"})))),
            config: object(config),
            cursor: since,
            checkpoint: resume,
            page_budget: crate::testing::PAGE_BUDGET,
        }
    }

    /// Every page of a run: (entities, the checkpoint after each page), or the error it ended on.
    async fn drain(
        request: StreamRequest,
    ) -> (
        Vec<Entity>,
        Vec<Value>,
        Option<StreamError>,
        Box<dyn EntityStream>,
    ) {
        let mut stream = StubSource::new().open_stream(request).unwrap();
        let (mut entities, mut checkpoints) = (Vec::new(), Vec::new());
        loop {
            match stream.next_page().await {
                Ok(Some(page)) => {
                    assert!(page.entities.len() <= STUB_PAGE_SIZE);
                    entities.extend(page.entities);
                    checkpoints.push(page.checkpoint);
                }
                Ok(None) => return (entities, checkpoints, None, stream),
                Err(e) => return (entities, checkpoints, Some(e), stream),
            }
        }
    }

    #[tokio::test]
    async fn a_run_yields_the_same_entities_for_the_same_seed() {
        let (a, pages, _, stream) =
            drain(request(json!({"entity_count": 250, "seed": 9}), None, None)).await;
        let (b, _, _, _) =
            drain(request(json!({"entity_count": 250, "seed": 9}), None, None)).await;
        let (c, _, _, _) = drain(request(
            json!({"entity_count": 250, "seed": 10}),
            None,
            None,
        ))
        .await;
        assert_eq!(a.len(), 250);
        assert_eq!(pages.len(), 3);
        assert_eq!(a, b);
        assert_ne!(a[1].content_hash(), c[1].content_hash());
        assert_eq!(
            a.iter()
                .filter(|e| e.entity_type == "stub_container")
                .count(),
            10
        );
        assert_eq!(a[26].payload["container_id"], "0000025");
        let ids: std::collections::BTreeSet<_> = a.iter().map(|e| e.key().unwrap()).collect();
        assert_eq!(ids.len(), 250, "ids are unique");
        assert!(!stream.incremental());
        assert_eq!(stream.cursor(), None);
    }

    #[tokio::test]
    async fn a_revision_step_changes_exactly_every_tenth_entity() {
        let (before, _, _, _) = drain(request(
            json!({"entity_count": 1000, "revision": 0}),
            None,
            None,
        ))
        .await;
        let (after, _, _, _) = drain(request(
            json!({"entity_count": 1000, "revision": 1}),
            None,
            None,
        ))
        .await;
        let changed: Vec<usize> = (0..1000)
            .filter(|&i| before[i].content_hash() != after[i].content_hash())
            .collect();
        assert_eq!(changed.len(), 100);
        assert!(changed.iter().all(|i| i % 10 == 1));
        let (third, _, _, _) = drain(request(
            json!({"entity_count": 1000, "revision": 3}),
            None,
            None,
        ))
        .await;
        let two_steps: Vec<usize> = (0..1000)
            .filter(|&i| after[i].content_hash() != third[i].content_hash())
            .collect();
        assert_eq!(two_steps.len(), 200);
        assert!(two_steps.iter().all(|i| i % 10 == 2 || i % 10 == 3));
    }

    #[tokio::test]
    async fn a_resumed_run_continues_after_its_checkpoint() {
        let config = json!({"entity_count": 250});
        let (all, checkpoints, _, _) = drain(request(config.clone(), None, None)).await;
        let (rest, _, _, _) = drain(request(config, None, Some(checkpoints[0].clone()))).await;
        assert_eq!(rest, all[100..]);
    }

    #[tokio::test]
    async fn an_incremental_run_yields_only_what_changed_since_the_cursor() {
        let first = json!({"entity_count": 300, "incremental": true});
        let (_, _, _, stream) = drain(request(first, None, None)).await;
        let cursor = stream
            .cursor()
            .expect("an incremental source leaves a cursor");
        let next = json!({"entity_count": 320, "revision": 1, "incremental": true});
        let (changed, _, _, stream) =
            drain(request(next.clone(), Some(cursor.clone()), None)).await;
        assert!(stream.incremental());
        let indexes: Vec<u64> = changed
            .iter()
            .map(|e| e.payload["index"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..320).filter(|i| i % 10 == 1 || *i >= 300).collect();
        assert_eq!(indexes, expected);
        // Fewer entities: nothing is yielded for the removed ones.
        let (none, _, _, _) = drain(request(
            json!({"entity_count": 200, "incremental": true}),
            Some(cursor),
            None,
        ))
        .await;
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn injected_failures_come_after_the_given_count() {
        let (yielded, _, error, _) = drain(request(
            json!({"entity_count": 500, "fail_after": 150, "fail_with": "server_error"}),
            None,
            None,
        ))
        .await;
        assert_eq!(yielded.len(), 150);
        assert!(matches!(error, Some(StreamError::Upstream(_))));

        let (_, _, error, _) = drain(request(json!({"fail_with": "auth"}), None, None)).await;
        assert!(matches!(error, Some(StreamError::Rejected(_))));

        let limited = json!({"entity_count": 300, "fail_after": 120, "fail_with": "rate_limit"});
        let (first, checkpoints, error, _) = drain(request(limited.clone(), None, None)).await;
        assert_eq!(first.len(), 120);
        assert_eq!(
            error,
            Some(StreamError::RateLimited {
                wait: STUB_RATE_LIMIT_WAIT
            })
        );
        let resume = checkpoints.last().cloned();
        let (rest, _, error, _) = drain(request(limited, None, resume)).await;
        assert_eq!((rest.len(), error), (180, None), "the resumed run goes on");
    }

    #[tokio::test]
    async fn any_non_empty_key_passes_without_network() {
        let stub = StubSource::new();
        let auth =
            AuthenticationRequest::Direct(Credentials::new(object(json!({"api_key": "anything"}))));
        assert_eq!(stub.check_credentials(&auth, &Map::new()).await, Ok(()));

        let blank =
            AuthenticationRequest::Direct(Credentials::new(object(json!({"api_key": " "}))));
        assert!(matches!(
            stub.check_credentials(&blank, &Map::new()).await,
            Err(CheckError::Rejected(_))
        ));
        assert!(matches!(
            stub.check_credentials(&AuthenticationRequest::OauthBrowser, &Map::new())
                .await,
            Err(CheckError::Rejected(_))
        ));
    }
}
