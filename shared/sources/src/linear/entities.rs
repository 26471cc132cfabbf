//! Linear's nodes as entities: teams, users, projects, issues and comments, each keeping the
//! stable fields a user searches for.

use super::kinds::Kind;
use super::NAME;
use chrono::{DateTime, Utc};
use domain::entity::Entity;
use serde_json::{json, Value};

fn text(node: &Value, pointer: &str) -> Option<String> {
    node.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The value at `pointer`, `null` when absent.
fn at(node: &Value, pointer: &str) -> Value {
    node.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn time(node: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let s = node.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `{id, name}` of a referenced user, `null` when there is none.
fn person(node: &Value, pointer: &str) -> Value {
    match node.pointer(pointer) {
        Some(p) if p.is_object() => json!({"id": at(p, "/id"), "name": at(p, "/name")}),
        _ => Value::Null,
    }
}

/// The names at `/<list>/nodes/*/<field>`, sorted: Linear does not promise an order.
fn sorted_names(node: &Value, list: &str, field: &str) -> Vec<String> {
    let mut names: Vec<String> = node
        .pointer(&format!("/{list}/nodes"))
        .and_then(Value::as_array)
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.get(field)?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A node as an entity. Ids are Linear's UUIDs, stable for the item's life.
pub(super) fn to_entity(kind: Kind, node: &Value) -> Result<Entity, String> {
    let id = text(node, "/id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("a node of {NAME}'s {} page has no id", kind.field()))?;
    let updated_at = time(node, "/updatedAt").ok_or_else(|| {
        format!(
            "a node of {NAME}'s {} page has no readable updatedAt",
            kind.field()
        )
    })?;
    let created_at = at(node, "/createdAt");
    let (title, payload) = match kind {
        Kind::Teams => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "key": at(node, "/key"),
                    "name": name,
                    "description": at(node, "/description"),
                    "private": at(node, "/private"),
                    "created_at": created_at,
                }),
            )
        }
        Kind::Users => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "name": name,
                    "display_name": at(node, "/displayName"),
                    "email": at(node, "/email"),
                    "active": at(node, "/active"),
                    "admin": at(node, "/admin"),
                    "url": at(node, "/url"),
                    "created_at": created_at,
                }),
            )
        }
        Kind::Projects => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "name": name,
                    "description": at(node, "/description"),
                    "content": at(node, "/content"),
                    "url": at(node, "/url"),
                    "status": at(node, "/status/name"),
                    "status_type": at(node, "/status/type"),
                    "lead": person(node, "/lead"),
                    "teams": sorted_names(node, "teams", "key"),
                    "start_date": at(node, "/startDate"),
                    "target_date": at(node, "/targetDate"),
                    "created_at": created_at,
                    "completed_at": at(node, "/completedAt"),
                    "canceled_at": at(node, "/canceledAt"),
                }),
            )
        }
        Kind::Issues => {
            let identifier = text(node, "/identifier").unwrap_or_default();
            let title = text(node, "/title").unwrap_or_default();
            (
                format!("{identifier} {title}").trim().to_owned(),
                json!({
                    "id": id,
                    "identifier": identifier,
                    "title": title,
                    "description": at(node, "/description"),
                    "url": at(node, "/url"),
                    "priority": at(node, "/priority"),
                    "priority_label": at(node, "/priorityLabel"),
                    "estimate": at(node, "/estimate"),
                    "due_date": at(node, "/dueDate"),
                    "state": at(node, "/state/name"),
                    "state_type": at(node, "/state/type"),
                    "assignee": match node.pointer("/assignee") {
                        Some(a) if a.is_object() => json!({
                            "id": at(a, "/id"), "name": at(a, "/name"), "email": at(a, "/email"),
                        }),
                        _ => Value::Null,
                    },
                    "creator": person(node, "/creator"),
                    "team": match node.pointer("/team") {
                        Some(t) if t.is_object() => json!({
                            "id": at(t, "/id"), "key": at(t, "/key"), "name": at(t, "/name"),
                        }),
                        _ => Value::Null,
                    },
                    "project": person(node, "/project"),
                    "labels": sorted_names(node, "labels", "name"),
                    "created_at": created_at,
                    "completed_at": at(node, "/completedAt"),
                    "canceled_at": at(node, "/canceledAt"),
                }),
            )
        }
        Kind::Comments => {
            let author = text(node, "/user/name");
            let issue = text(node, "/issue/identifier");
            let title = match (&author, &issue) {
                (Some(a), Some(i)) => format!("Comment by {a} on {i}"),
                (None, Some(i)) => format!("Comment on {i}"),
                (Some(a), None) => format!("Comment by {a}"),
                (None, None) => "Comment".to_owned(),
            };
            (
                title,
                json!({
                    "id": id,
                    "body": at(node, "/body"),
                    "url": at(node, "/url"),
                    "author": person(node, "/user"),
                    // Not the issue's title: renaming the issue does not touch the comment's
                    // updatedAt, so an incremental run would keep a stale copy.
                    "issue": match node.pointer("/issue") {
                        Some(i) if i.is_object() => json!({
                            "id": at(i, "/id"), "identifier": at(i, "/identifier"),
                        }),
                        _ => Value::Null,
                    },
                    "created_at": created_at,
                    "edited_at": at(node, "/editedAt"),
                }),
            )
        }
    };
    Ok(Entity {
        entity_type: kind.entity_type().to_owned(),
        entity_id: id,
        title,
        updated_at: Some(updated_at),
        payload,
    })
}
