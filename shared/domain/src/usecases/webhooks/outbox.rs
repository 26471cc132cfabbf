//! The outbox: the events a change reports, written by the change's own transaction, and only
//! for an organization with subscriptions (none is the common case, and costs nothing).

use crate::collection::Collection;
use crate::connection::SourceConnection;
use crate::ids::OrganizationId;
use crate::job::Job;
use crate::names::ReadableId;
use crate::usecases::Platform;
use crate::webhooks::Event;
use tracing::warn;

/// Whether an organization's changes record events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outbox {
    recording: bool,
}

impl Outbox {
    /// Records when the organization has subscriptions. When that cannot be read, it records:
    /// an event nobody wants is dropped at dispatch, a missing one would be lost for good.
    pub(crate) async fn of(platform: &Platform, org: OrganizationId) -> Self {
        let recording = match platform.webhooks.has_subscriptions(org).await {
            Ok(present) => present,
            Err(e) => {
                warn!(error = %e, "could not tell whether the organization has webhook subscriptions; recording its events");
                true
            }
        };
        Self { recording }
    }

    /// An organization's outbox when whether it has subscriptions is already known.
    pub(crate) fn known(recording: bool) -> Self {
        Self { recording }
    }

    pub(crate) fn recording(self) -> bool {
        self.recording
    }

    /// `event()` when recording, else nothing.
    pub(crate) fn record(self, event: impl FnOnce() -> Event) -> Vec<Event> {
        if self.recording {
            vec![event()]
        } else {
            Vec::new()
        }
    }
}

/// What a job's events say of its connection and collection.
pub(crate) struct JobContext {
    platform: Platform,
    connection: SourceConnection,
    collection_name: String,
}

impl JobContext {
    /// Reads the collection's name; `None` when not recording.
    pub(crate) async fn of(
        platform: &Platform,
        outbox: Outbox,
        connection: &SourceConnection,
    ) -> Option<Self> {
        if !outbox.recording() {
            return None;
        }
        Some(Self {
            platform: platform.clone(),
            collection_name: collection_name(platform, connection).await,
            connection: connection.clone(),
        })
    }

    /// The event of the job as it now stands.
    pub(crate) fn event(&self, job: &Job) -> Event {
        Event::sync(
            job,
            &self.connection,
            &self.collection_name,
            self.platform.clock.now(),
        )
    }
}

/// The events of a job as it now stands, for a store write that decides the job's new state
/// itself (a claim, a cancel); nothing without a context.
pub(crate) fn job_events(
    context: Option<&JobContext>,
) -> impl Fn(&Job) -> Vec<Event> + Send + Sync + '_ {
    move |job| context.map(|c| vec![c.event(job)]).unwrap_or_default()
}

/// The name of the connection's collection (its readable id when it cannot be read: events
/// must not fail a change).
pub(crate) async fn collection_name(platform: &Platform, connection: &SourceConnection) -> String {
    let readable = &connection.readable_collection_id;
    let Ok(id) = ReadableId::parse(readable) else {
        return readable.clone();
    };
    match platform
        .store
        .get_collection(connection.organization_id, &id)
        .await
    {
        Ok(Some(Collection { name, .. })) => name.as_str().to_owned(),
        Ok(None) => readable.clone(),
        Err(e) => {
            warn!(error = %e, "could not read the collection's name for an event");
            readable.clone()
        }
    }
}
