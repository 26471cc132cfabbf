//! Entities: what a source yields page by page, how the worker tells a changed one from a kept
//! one (a SHA-256 of canonical JSON), and what the entities endpoint answers.

use crate::feed::FeedPosition;
use crate::ids::JobId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// One item of a source: a repository, an issue, a page, a stub item …
#[derive(Clone, PartialEq)]
pub struct Entity {
    /// The source's entity type, e.g. `github_issue`; never contains `#`.
    pub entity_type: String,
    /// Stable across runs: the same upstream item always has the same id.
    pub entity_id: String,
    pub title: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

/// Payloads can be large; `Debug` shows what identifies the entity.
impl fmt::Debug for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entity")
            .field("entity_type", &self.entity_type)
            .field("entity_id", &self.entity_id)
            .finish_non_exhaustive()
    }
}

impl Entity {
    /// The entity's key, or why it cannot have one (such an entity is counted as failed).
    pub fn key(&self) -> Result<EntityKey, String> {
        EntityKey::new(&self.entity_type, &self.entity_id)
    }

    /// SHA-256 of the canonical JSON of the whole entity (type, id, title, updated_at and
    /// payload; keys sorted, no insignificant whitespace): equal hashes mean nothing changed.
    pub fn content_hash(&self) -> ContentHash {
        let mut hasher = Sha256::new();
        let mut out = HashWriter(&mut hasher);
        out.raw("{\"entity_id\":");
        out.string(&self.entity_id);
        out.raw(",\"payload\":");
        write_canonical(&self.payload, &mut out);
        out.raw(",\"title\":");
        out.string(&self.title);
        out.raw(",\"type\":");
        out.string(&self.entity_type);
        out.raw(",\"updated_at\":");
        match self.updated_at {
            Some(at) => out.string(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => out.raw("null"),
        }
        out.raw("}");
        ContentHash(hasher.finalize().into())
    }
}

/// Feeds canonical JSON straight into the hasher, without building the text.
struct HashWriter<'a>(&'a mut Sha256);

impl HashWriter<'_> {
    fn raw(&mut self, s: &str) {
        self.0.update(s.as_bytes());
    }

    fn string(&mut self, s: &str) {
        // serde_json's string escaping is the canonical one (RFC 8785 escapes the same set).
        let quoted = serde_json::to_string(s).expect("a string always serializes");
        self.raw(&quoted);
    }
}

fn write_canonical(value: &Value, out: &mut HashWriter<'_>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.raw("{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                out.string(key);
                out.raw(":");
                write_canonical(&map[key], out);
            }
            out.raw("}");
        }
        Value::Array(items) => {
            out.raw("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                write_canonical(item, out);
            }
            out.raw("]");
        }
        Value::String(s) => out.string(s),
        other => out.raw(&other.to_string()),
    }
}

/// `<type>#<entity_id>`: the entity's sort key in its connection's partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey(String);

impl EntityKey {
    /// Longest key DynamoDB takes as a sort key is 1024 bytes.
    pub const MAX_LEN: usize = 1024;

    pub fn new(entity_type: &str, entity_id: &str) -> Result<Self, String> {
        if entity_type.is_empty() || entity_type.contains('#') {
            return Err(format!(
                "entity type '{entity_type}' is empty or contains '#'"
            ));
        }
        if entity_id.is_empty() {
            return Err("entity id is empty".into());
        }
        let key = format!("{entity_type}#{entity_id}");
        if key.len() > Self::MAX_LEN {
            return Err(format!("entity key is longer than {} bytes", Self::MAX_LEN));
        }
        Ok(Self(key))
    }

    /// A stored sort key; `None` when it is not `<type>#<id>`.
    pub fn parse(key: &str) -> Option<Self> {
        let (entity_type, entity_id) = key.split_once('#')?;
        Self::new(entity_type, entity_id).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn entity_type(&self) -> &str {
        self.0.split_once('#').map_or("", |(t, _)| t)
    }

    pub fn entity_id(&self) -> &str {
        self.0.split_once('#').map_or("", |(_, id)| id)
    }

    /// 128 bits of the key's SHA-256: how a run remembers the keys it saw in 16 bytes each.
    /// Collisions are out of reach (about 1 in 10^26 for a million keys).
    pub fn fingerprint(&self) -> u128 {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(first)
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

/// How a run changed an entity it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Inserted,
    Updated,
}

/// What the store keeps about an entity for change detection. `written_by`/`change` let a run
/// that replays pages after a crash count an entity it already wrote as what it was, not as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntity {
    pub hash: ContentHash,
    pub written_by: Option<JobId>,
    pub change: Option<Change>,
    /// Where the entity was added (the change feed's `added`); `None` when not recorded.
    pub added: Option<FeedPosition>,
}

/// An entity to write, with what the run decided about it and where the write stands in the
/// change feed.
#[derive(Debug, Clone)]
pub struct EntityWrite {
    pub key: EntityKey,
    pub entity: Entity,
    pub hash: ContentHash,
    pub job: JobId,
    pub change: Change,
    /// This write's place in the connection's commit order.
    pub position: FeedPosition,
    /// Where the entity was added: `position` for an insert, the stored one for an update.
    pub added: FeedPosition,
}

/// An entity as `GET /source-connections/{id}/entities` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EntityRecord {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub entity_id: String,
    pub title: String,
    pub updated_at: Option<DateTime<Utc>>,
    /// The entity's JSON payload; a JSON string holding its first bytes when it was too large
    /// to store whole (`payload_truncated`).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// True when the stored payload was cut to fit a DynamoDB item.
    pub payload_truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity(payload: Value) -> Entity {
        Entity {
            entity_type: "stub_item".into(),
            entity_id: "7".into(),
            title: "Seven".into(),
            updated_at: None,
            payload,
        }
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "é"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"é","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(entity(a).content_hash(), entity(b).content_hash());
    }

    #[test]
    fn the_hash_sees_every_field() {
        let base = entity(json!({"a": 1}));
        let hash = base.content_hash();
        let mut changed = vec![
            entity(json!({"a": 2})),
            entity(json!({"a": 1, "b": null})),
            entity(json!({"a": [1]})),
        ];
        for edit in [
            |e: &mut Entity| e.title.push('!'),
            |e: &mut Entity| e.entity_id.push('!'),
            |e: &mut Entity| e.entity_type.push('s'),
            |e: &mut Entity| e.updated_at = Some(Utc::now()),
        ] {
            let mut e = base.clone();
            edit(&mut e);
            changed.push(e);
        }
        for e in changed {
            assert_ne!(e.content_hash(), hash, "{e:?}");
        }
    }

    #[test]
    fn the_canonical_text_is_the_known_digest() {
        // sha256 of {"entity_id":"7","payload":{"a":1},"title":"Seven","type":"stub_item","updated_at":null}
        let expected = Sha256::digest(
            br#"{"entity_id":"7","payload":{"a":1},"title":"Seven","type":"stub_item","updated_at":null}"#,
        );
        assert_eq!(
            entity(json!({"a": 1})).content_hash().to_hex(),
            hex::encode(expected)
        );
    }

    #[test]
    fn keys_split_at_the_first_hash_sign() {
        let key = EntityKey::new("github_issue", "owner/repo#12").unwrap();
        assert_eq!(key.as_str(), "github_issue#owner/repo#12");
        assert_eq!(key.entity_type(), "github_issue");
        assert_eq!(key.entity_id(), "owner/repo#12");
        assert_eq!(EntityKey::parse(key.as_str()), Some(key.clone()));
        assert!(EntityKey::new("bad#type", "1").is_err());
        assert!(EntityKey::new("t", "").is_err());
        assert!(EntityKey::new("t", &"x".repeat(1100)).is_err());
        assert_eq!(EntityKey::parse("no-separator"), None);
        assert_ne!(
            key.fingerprint(),
            EntityKey::new("github_issue", "owner/repo#13")
                .unwrap()
                .fingerprint()
        );
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = entity(json!(1)).content_hash();
        assert_eq!(ContentHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(ContentHash::from_hex("zz"), None);
    }
}
