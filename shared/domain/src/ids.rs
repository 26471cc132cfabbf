//! Identifiers. Organization, connection and job ids are UUIDs; job ids are UUIDv7 so that their
//! sort keys order jobs by creation time.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant. Every stored item belongs to exactly one.
    OrganizationId
);
uuid_id!(
    /// A source connection.
    ConnectionId
);
uuid_id!(
    /// A sync job; time-ordered (UUIDv7).
    JobId
);

impl OrganizationId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl ConnectionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl JobId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for OrganizationId {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for ConnectionId {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

uuid_id!(
    /// A webhook subscription (an endpoint an organization receives events at).
    SubscriptionId
);
uuid_id!(
    /// A webhook message: one event, delivered to every subscription that wants it; time-ordered
    /// (UUIDv7), so message ids order messages by when their event happened. Receivers see it as
    /// `webhook-id`.
    MessageId
);
uuid_id!(
    /// One delivery attempt of a message to a subscription; time-ordered (UUIDv7).
    AttemptId
);

impl SubscriptionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl MessageId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The smallest id of a message of `instant` or later: message ids from this one on are
    /// messages of that instant or later (the bound of a time window over ids).
    pub fn lowest_at(instant: chrono::DateTime<chrono::Utc>) -> Self {
        let millis = u64::try_from(instant.timestamp_millis()).unwrap_or(0);
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
    }
}

impl AttemptId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for SubscriptionId {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for AttemptId {
    fn default() -> Self {
        Self::new()
    }
}
