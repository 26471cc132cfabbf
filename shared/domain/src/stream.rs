//! The entity stream a source hands the sync worker: pages pulled one at a time, each with the
//! checkpoint to resume from after it (the shape of Singer's STATE messages). The worker owns the
//! loop; a source never sleeps, never writes and never holds a whole workspace in memory.

use crate::auth::AuthenticationRequest;
use crate::entity::{Entity, EntityKey};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;

/// What a run asks of a source.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    /// The connection's credentials, resolved from the vault.
    pub auth: AuthenticationRequest,
    /// The connection's config, validated against the source's schema at create time.
    pub config: Map<String, Value>,
    /// The source's cursor: where the last completed run left off ([`EntityStream::cursor`]),
    /// so this run asks only for what changed since; `None` asks for a full sync.
    pub cursor: Option<Value>,
    /// The source's checkpoint: where an interrupted run of the same job stopped
    /// ([`EntityPage::checkpoint`] of its last processed page); `None` starts at the beginning.
    pub checkpoint: Option<Value>,
    /// How long one [`EntityStream::next_page`] may take, set by the worker (its hand-over
    /// margin allows for this and one upstream call more). A page that makes several upstream
    /// calls starts none once this much time has passed since it began, as long as it has
    /// handed out something (every page moves the run on); a page of one call obeys anyway,
    /// that call being bounded by the client's request timeout.
    pub page_budget: Duration,
}

/// One page of entities and the checkpoint after it.
#[derive(Debug, Clone)]
pub struct EntityPage {
    pub entities: Vec<Entity>,
    /// Entities the source reports gone since the last run (an incremental run of a source
    /// whose API says what was deleted, e.g. Google Drive's changes); the worker deletes those
    /// it has stored. Full runs leave this empty: what they do not yield is gone anyway.
    pub removed: Vec<EntityKey>,
    /// Opaque to the worker; given back as [`StreamRequest::checkpoint`] it continues after this
    /// page, with everything the source needs for its final cursor.
    pub checkpoint: Value,
}

/// Why a stream could not go on. The messages name no secret and no URL with credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The upstream refused the credentials (401, revoked token): the user must re-authenticate.
    #[error("{0}")]
    Rejected(String),
    /// The upstream asked to wait this long before the next call.
    #[error("rate limited for {}s", wait.as_secs())]
    RateLimited { wait: Duration },
    /// The upstream failed (5xx, network, timeout).
    #[error("{0}")]
    Upstream(String),
    /// The upstream answered something that is not a page of its API.
    #[error("{0}")]
    Malformed(String),
    /// The source cannot sync (yet), or not with this configuration.
    #[error("{0}")]
    Unsupported(String),
}

/// A source's entities for one run, pulled page by page.
#[async_trait]
pub trait EntityStream: Send {
    /// The next page, or `None` once the stream has ended.
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError>;

    /// Whether this run yields only what changed since [`StreamRequest::cursor`]: then entities
    /// it does not yield are not gone, and the worker deletes nothing by absence.
    fn incremental(&self) -> bool;

    /// Once the stream has ended: the cursor the next run starts from, or `None` when the
    /// source has no incremental sync (every run is a full one).
    fn cursor(&self) -> Option<Value>;
}
