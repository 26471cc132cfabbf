//! Notion's JSON as entities: ids, titles, rich text and properties, a page's blocks flattened
//! to text, and the page, row and database entities.

use chrono::{DateTime, Utc};
use domain::entity::Entity;
use domain::stream::StreamError;
use serde_json::{json, Map, Value};

/// Text kept of one page's content; the rest is cut with `content_truncated`.
const MAX_CONTENT_CHARS: usize = 100_000;

/// A Notion id as the API writes it (a UUID, with or without dashes). Ids from answers go into
/// request paths, so nothing else is let through.
pub(super) fn is_notion_id(s: &str) -> bool {
    let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
    hex == 32 && s.len() <= 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub(super) fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

/// The concatenated `plain_text` of a rich text array.
fn rich_text(value: &Value) -> String {
    value
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("plain_text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn last_edited(item: &Value) -> Option<DateTime<Utc>> {
    let text = item.get("last_edited_time")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn is_trashed(item: &Value) -> bool {
    let flag = |name| item.get(name).and_then(Value::as_bool) == Some(true);
    flag("archived") || flag("in_trash")
}

fn parent_database(item: &Value) -> Option<&str> {
    let parent = item.get("parent")?;
    (parent.get("type")?.as_str()? == "database_id")
        .then(|| parent.get("database_id")?.as_str())
        .flatten()
}

/// `{"type": "page_id", "id": "..."}`; a workspace parent has no id.
fn parent(item: &Value) -> Value {
    let Some(kind) = item.pointer("/parent/type").and_then(Value::as_str) else {
        return Value::Null;
    };
    match item.pointer(&format!("/parent/{kind}")) {
        Some(Value::String(id)) => json!({"type": kind, "id": id}),
        _ => json!({"type": kind}),
    }
}

/// A page property as a plain value a user searches for. Dropped: the `created_*`/`last_edited_*`
/// kinds (the entity says when it changed), buttons and verification, formulas and rollups
/// (computed at read time), and the URLs of files Notion hosts, which are signed and change on
/// every read.
fn property_value(property: &Value) -> Option<Value> {
    let kind = property.get("type")?.as_str()?;
    let value = property.get(kind)?;
    let names = |items: &Value, field: &str| -> Value {
        items
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.get(field).and_then(Value::as_str))
                    .map(|s| Value::String(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let plain = match kind {
        "title" | "rich_text" => Value::String(rich_text(value)),
        "number" | "checkbox" | "url" | "email" | "phone_number" => value.clone(),
        "select" | "status" => value.get("name").cloned().unwrap_or(Value::Null),
        "multi_select" => names(value, "name"),
        "relation" => names(value, "id"),
        "files" => names(value, "name"),
        "people" => Value::Array(
            value
                .as_array()
                .map(|people| {
                    people
                        .iter()
                        .filter_map(|p| p.get("name").or_else(|| p.get("id")).cloned())
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "date" if value.is_object() => json!({"start": value["start"], "end": value["end"]}),
        // `formula` and `rollup` values are computed when the page is read (a formula using
        // `now()` differs on every read): kept, they would make a row "updated" on every run.
        // What they derive from is in the other properties.
        "unique_id" => {
            let number = value.get("number")?.as_i64()?;
            match value.get("prefix").and_then(Value::as_str) {
                Some(prefix) => Value::String(format!("{prefix}-{number}")),
                None => json!(number),
            }
        }
        _ => return None,
    };
    (!plain.is_null()).then_some(plain)
}

fn properties(item: &Value) -> Map<String, Value> {
    item.get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), property_value(p)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A page's title: its `title` property.
fn page_title(item: &Value) -> String {
    let title = item
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|props| {
            props
                .values()
                .find(|p| p.get("type").and_then(Value::as_str) == Some("title"))
        })
        .map(|p| rich_text(&p["title"]))
        .unwrap_or_default();
    if title.trim().is_empty() {
        "Untitled".to_owned()
    } else {
        title
    }
}

/// The text a page's blocks hold, flattened.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Content {
    pub text: String,
    pub truncated: bool,
}

impl Content {
    pub fn push_line(&mut self, depth: usize, line: &str) {
        if self.truncated {
            return;
        }
        let indent = "  ".repeat(depth);
        if self.text.len() + indent.len() + line.len() + 1 > MAX_CONTENT_CHARS {
            self.truncated = true;
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&indent);
        self.text.push_str(line);
    }
}

/// One block as a line of text, or `None` for a block with no text (a divider, an empty
/// paragraph). Hosted files give their caption only: their URLs are signed and change per read.
pub(super) fn block_line(block: &Value) -> Option<String> {
    let kind = block.get("type")?.as_str()?;
    let body = block.get(kind)?;
    let text = rich_text(&body["rich_text"]);
    let caption = rich_text(&body["caption"]);
    let line = match kind {
        "heading_1" => format!("# {text}"),
        "heading_2" => format!("## {text}"),
        "heading_3" => format!("### {text}"),
        "bulleted_list_item" => format!("- {text}"),
        "numbered_list_item" => format!("1. {text}"),
        "quote" => format!("> {text}"),
        "to_do" => {
            let mark = if body["checked"] == true { "x" } else { " " };
            format!("[{mark}] {text}")
        }
        "child_page" | "child_database" => body["title"].as_str().unwrap_or_default().to_owned(),
        "equation" => body["expression"].as_str().unwrap_or_default().to_owned(),
        "table_row" => body["cells"]
            .as_array()
            .map(|cells| cells.iter().map(rich_text).collect::<Vec<_>>().join(" | "))
            .unwrap_or_default(),
        "bookmark" | "embed" | "link_preview" => {
            let url = body["url"].as_str().unwrap_or_default();
            [url, caption.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        }
        "image" | "file" | "pdf" | "video" | "audio" => {
            let external = body
                .pointer("/external/url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = body["name"].as_str().unwrap_or_default();
            [name, external, caption.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => text,
    };
    let line = line.trim_end();
    let bare = matches!(line, "" | "#" | "##" | "###" | "-" | "1." | ">");
    (!bare).then(|| line.to_owned())
}

/// Whether a block's children belong to this page's text: child pages and databases are
/// entities of their own, and the children of a block the API does not support cannot be read
/// (Notion answers them with an error).
pub(super) fn descends(block: &Value) -> bool {
    block.get("has_children").and_then(Value::as_bool) == Some(true)
        && !matches!(
            block.get("type").and_then(Value::as_str),
            Some("child_page" | "child_database" | "unsupported")
        )
}

/// What a listing means to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Page,
    Row,
    Database,
}

impl Kind {
    pub fn entity_type(self) -> &'static str {
        match self {
            Kind::Page => "notion_page",
            Kind::Row => "notion_database_row",
            Kind::Database => "notion_database",
        }
    }

    pub fn of(item: &Value) -> Option<Kind> {
        match item.get("object")?.as_str()? {
            "database" => Some(Kind::Database),
            "page" if parent_database(item).is_some() => Some(Kind::Row),
            "page" => Some(Kind::Page),
            _ => None,
        }
    }
}

pub(super) fn malformed_item(kind: Kind) -> StreamError {
    StreamError::Malformed(format!(
        "Notion answered a {} without a valid id or last_edited_time",
        match kind {
            Kind::Database => "database",
            Kind::Page | Kind::Row => "page",
        }
    ))
}

/// A page or a row, with its content.
pub(super) fn page_entity(
    item: &Value,
    kind: Kind,
    content: Content,
) -> Result<Entity, StreamError> {
    let id = id_of(item)
        .filter(|id| is_notion_id(id))
        .ok_or_else(|| malformed_item(kind))?;
    let updated_at = last_edited(item).ok_or_else(|| malformed_item(kind))?;
    let mut payload = json!({
        "id": id,
        "url": item.get("url"),
        "parent": parent(item),
        "created_time": item.get("created_time"),
        "created_by": item.pointer("/created_by/id"),
        "properties": properties(item),
        "content": content.text,
        "content_truncated": content.truncated,
    });
    if let Some(database) = parent_database(item) {
        payload["database_id"] = json!(database);
    }
    Ok(Entity {
        entity_type: kind.entity_type().into(),
        entity_id: id.to_owned(),
        title: page_title(item),
        updated_at: Some(updated_at),
        payload,
    })
}

pub(super) fn database_entity(item: &Value) -> Result<Entity, StreamError> {
    let kind = Kind::Database;
    let id = id_of(item)
        .filter(|id| is_notion_id(id))
        .ok_or_else(|| malformed_item(kind))?;
    let updated_at = last_edited(item).ok_or_else(|| malformed_item(kind))?;
    // The schema as name -> type: select options carry colours and ids nobody searches for.
    let schema: Map<String, Value> = item
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.get("type")?.clone())))
                .collect()
        })
        .unwrap_or_default();
    let title = rich_text(&item["title"]);
    Ok(Entity {
        entity_type: kind.entity_type().into(),
        entity_id: id.to_owned(),
        title: if title.trim().is_empty() {
            "Untitled database".into()
        } else {
            title
        },
        updated_at: Some(updated_at),
        payload: json!({
            "id": id,
            "url": item.get("url"),
            "parent": parent(item),
            "created_time": item.get("created_time"),
            "created_by": item.pointer("/created_by/id"),
            "description": rich_text(&item["description"]),
            "is_inline": item.get("is_inline"),
            "properties": schema,
        }),
    })
}
