//! Drive's JSON as entities: a file (with its text, when it has one) and a shared drive, and
//! what one change of a `changes` page is about.

use chrono::{DateTime, Utc};
use domain::entity::{Entity, EntityKey};
use serde_json::{json, Value};

pub(super) const FILE_TYPE: &str = "google_drive_file";
pub(super) const DRIVE_TYPE: &str = "google_drive_drive";
/// Text files larger than this are synced without their content.
pub(super) const TEXT_FILE_MAX_BYTES: u64 = 1024 * 1024;
/// The most text kept in a payload: an entity must fit a DynamoDB item (400 KB) whole.
pub(super) const CONTENT_LIMIT: usize = 256 * 1024;
pub(super) const GOOGLE_DOC: &str = "application/vnd.google-apps.document";

/// The text a file entity carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Content {
    pub text: Option<String>,
    pub truncated: bool,
}

impl Content {
    pub const NONE: Content = Content {
        text: None,
        truncated: false,
    };
}

/// What one change is about.
pub(super) enum Target<'a> {
    File(&'a Value),
    Drive(&'a Value),
    Gone(EntityKey),
}

/// `None` when the change names nothing.
pub(super) fn change_target(change: &Value) -> Option<Target<'_>> {
    let removed = change.get("removed").and_then(Value::as_bool) == Some(true);
    if change.get("changeType").and_then(Value::as_str) == Some("drive") {
        let id = change.get("driveId").and_then(Value::as_str)?;
        return Some(match change.get("drive").filter(|d| d.is_object()) {
            Some(drive) if !removed => Target::Drive(drive),
            _ => Target::Gone(EntityKey::new(DRIVE_TYPE, id).ok()?),
        });
    }
    let id = change.get("fileId").and_then(Value::as_str)?;
    match change.get("file").filter(|f| f.is_object()) {
        Some(file) if !removed && file.get("trashed").and_then(Value::as_bool) != Some(true) => {
            Some(Target::File(file))
        }
        _ => Some(Target::Gone(EntityKey::new(FILE_TYPE, id).ok()?)),
    }
}

/// Drive sends `size` as an int64 string.
fn file_size(file: &Value) -> Option<u64> {
    match file.get("size")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// How a file's text is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentKind {
    /// A Google Doc, exported as plain text.
    Export,
    /// A small text file, downloaded as it is.
    Download,
}

/// `None` for a file whose text is not synced (folders, binaries, large files).
pub(super) fn content_kind(file: &Value) -> Option<ContentKind> {
    let mime = file.get("mimeType").and_then(Value::as_str).unwrap_or("");
    if mime == GOOGLE_DOC {
        Some(ContentKind::Export)
    } else if mime.starts_with("text/") && file_size(file).is_some_and(|s| s <= TEXT_FILE_MAX_BYTES)
    {
        Some(ContentKind::Download)
    } else {
        None
    }
}

/// At most [`CONTENT_LIMIT`] bytes of text, cut on a character boundary.
pub(super) fn text_content(body: &[u8]) -> Content {
    let truncated = body.len() > CONTENT_LIMIT;
    let mut kept = &body[..body.len().min(CONTENT_LIMIT)];
    if truncated {
        // A cut may split a character: keep what decodes.
        if let Err(e) = std::str::from_utf8(kept) {
            if e.error_len().is_none() {
                kept = &kept[..e.valid_up_to()];
            }
        }
    }
    // Drive's plain-text export of a Doc starts with a byte order mark: not text anyone reads.
    let kept = kept.strip_prefix("\u{feff}".as_bytes()).unwrap_or(kept);
    Content {
        text: Some(String::from_utf8_lossy(kept).into_owned()),
        truncated,
    }
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn person(value: Option<&Value>) -> Value {
    match value {
        Some(p) if p.is_object() => json!({
            "name": p.get("displayName"),
            "email": p.get("emailAddress"),
        }),
        _ => Value::Null,
    }
}

/// `None` when the file has no id.
pub(super) fn file_entity(file: &Value, content: Content) -> Option<Entity> {
    let id = file.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let name = file.get("name").and_then(Value::as_str).unwrap_or("");
    let owners: Vec<Value> = file
        .get("owners")
        .and_then(Value::as_array)
        .map(|o| o.iter().map(|p| person(Some(p))).collect())
        .unwrap_or_default();
    let mime = file.get("mimeType").cloned().unwrap_or(Value::Null);
    let payload = json!({
        "id": id,
        "name": name,
        "mime_type": mime,
        "is_folder": mime == "application/vnd.google-apps.folder",
        "description": file.get("description"),
        "web_view_link": file.get("webViewLink"),
        "created_time": file.get("createdTime"),
        "modified_time": file.get("modifiedTime"),
        "size": file_size(file),
        "md5_checksum": file.get("md5Checksum"),
        "file_extension": file.get("fileExtension"),
        "starred": file.get("starred").and_then(Value::as_bool).unwrap_or(false),
        "parents": file.get("parents").cloned().unwrap_or_else(|| json!([])),
        "drive_id": file.get("driveId"),
        "owners": owners,
        "last_modifying_user": person(file.get("lastModifyingUser")),
        "content": content.text,
        "content_truncated": content.truncated,
    });
    Some(Entity {
        entity_type: FILE_TYPE.into(),
        entity_id: id.to_owned(),
        title: name.to_owned(),
        updated_at: time(file.get("modifiedTime")),
        payload,
    })
}

/// `None` when the drive has no id.
pub(super) fn drive_entity(drive: &Value) -> Option<Entity> {
    let id = drive.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let name = drive.get("name").and_then(Value::as_str).unwrap_or("");
    Some(Entity {
        entity_type: DRIVE_TYPE.into(),
        entity_id: id.to_owned(),
        title: name.to_owned(),
        // Drive tells no modification time for a shared drive.
        updated_at: time(drive.get("createdTime")),
        payload: json!({
            "id": id,
            "name": name,
            "created_time": drive.get("createdTime"),
            "hidden": drive.get("hidden").and_then(Value::as_bool).unwrap_or(false),
        }),
    })
}
