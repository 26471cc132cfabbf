//! How the fake Notion answers: routing, paging, JSON shapes and error answers.

use super::*;

// --- answers ---

pub(super) fn at_minute(m: i64) -> DateTime<Utc> {
    let base: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    base + Duration::minutes(m)
}

pub(super) fn minute(m: i64) -> String {
    at_minute(m).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(super) fn request_id(served: u64) -> String {
    format!("9c4e2a10-0000-4000-8000-{served:012x}")
}

pub(super) fn error(status: u16, code: &str, message: &str, served: u64) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({
            "object": "error",
            "status": status,
            "code": code,
            "message": message,
            "request_id": request_id(served),
        }),
    )
}

pub(super) fn rich_text(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    json!([{
        "type": "text",
        "text": {"content": text, "link": null},
        "annotations": {"bold": false, "italic": false, "strikethrough": false,
                        "underline": false, "code": false, "color": "default"},
        "plain_text": text,
        "href": null,
    }])
}

pub(super) fn user(id: &str) -> Value {
    json!({"object": "user", "id": id})
}

pub(super) const OWNER: &str = "1d2c3b4a-0000-4000-8000-00000000000a";
pub(super) const BOT: &str = "1d2c3b4a-0000-4000-8000-00000000000b";

pub(super) fn notion_url(title: &str, id: &str) -> String {
    let slug: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("https://www.notion.so/{slug}-{}", id.replace('-', ""))
}

pub(super) fn item_json(item: &Item, served: u64) -> Value {
    let parent = match &item.parent {
        Parent::Workspace => json!({"type": "workspace", "workspace": true}),
        Parent::Database(id) => json!({"type": "database_id", "database_id": id}),
        Parent::Page(id) => json!({"type": "page_id", "page_id": id}),
        Parent::Block(id) => json!({"type": "block_id", "block_id": id}),
    };
    let common = json!({
        "id": item.id,
        "created_time": minute(item.created),
        "last_edited_time": minute(item.edited),
        "created_by": user(OWNER),
        "last_edited_by": user(OWNER),
        "cover": null,
        "icon": null,
        "parent": parent,
        "archived": item.trashed,
        "in_trash": item.trashed,
        "url": notion_url(&item.title, &item.id),
        "public_url": null,
    });
    let mut value = common;
    match (item.object, &item.parent) {
        (Object::Database, _) => {
            value["object"] = json!("database");
            value["title"] = rich_text(&item.title);
            value["description"] = json!([]);
            value["is_inline"] = json!(false);
            value["properties"] = json!({
                "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
                "Status": {"id": "s%7Cq%3E", "name": "Status", "type": "select", "select": {"options": [
                    {"id": "1", "name": "Not started", "color": "default"},
                    {"id": "2", "name": "In progress", "color": "blue"},
                    {"id": "3", "name": "Done", "color": "green"},
                ]}},
                "Attachments": {"id": "f%3Ab", "name": "Attachments", "type": "files", "files": {}},
                "Last edited": {"id": "l%3De", "name": "Last edited", "type": "last_edited_time",
                                "last_edited_time": {}},
            });
        }
        (Object::Page, Parent::Database(_)) => {
            value["object"] = json!("page");
            let files: Vec<Value> = item
                .attachment
                .iter()
                .map(|name| {
                    // Notion-hosted files: a signed URL that expires an hour after each read.
                    json!({"name": name, "type": "file", "file": {
                        "url": format!(
                            "https://prod-files-secure.s3.us-west-2.amazonaws.com/{}/{name}?X-Amz-Signature={served:016x}",
                            item.id
                        ),
                        "expiry_time": minute(item.edited + 60 + served as i64),
                    }})
                })
                .collect();
            value["properties"] = json!({
                "Name": {"id": "title", "type": "title", "title": rich_text(&item.title)},
                "Status": {"id": "s%7Cq%3E", "type": "select", "select": item.status.as_ref().map(|s| json!({
                    "id": s.len().to_string(), "name": s, "color": "default"}))},
                "Attachments": {"id": "f%3Ab", "type": "files", "files": files},
                "Last edited": {"id": "l%3De", "type": "last_edited_time",
                                "last_edited_time": minute(item.edited)},
            });
        }
        (Object::Page, Parent::Workspace | Parent::Page(_) | Parent::Block(_)) => {
            value["object"] = json!("page");
            value["properties"] = json!({
                "title": {"id": "title", "type": "title", "title": rich_text(&item.title)},
            });
        }
    }
    value
}

pub(super) fn block_json(
    block: &StoredBlock,
    parent_id: &str,
    is_page: bool,
    item: &Item,
) -> Value {
    let parent = if is_page {
        json!({"type": "page_id", "page_id": parent_id})
    } else {
        json!({"type": "block_id", "block_id": parent_id})
    };
    let mut body = match block.kind {
        "child_page" => json!({"title": block.text}),
        "unsupported" => json!({}),
        _ => json!({"rich_text": rich_text(&block.text), "color": "default"}),
    };
    if block.kind == "to_do" {
        body["checked"] = json!(block.checked);
    }
    json!({
        "object": "block",
        "id": block.id,
        "parent": parent,
        "created_time": minute(item.created),
        "last_edited_time": minute(item.edited),
        "created_by": user(OWNER),
        "last_edited_by": user(OWNER),
        "has_children": block.has_children,
        "archived": false,
        "in_trash": false,
        "type": block.kind,
        block.kind: body,
    })
}

/// Notion's list object over `all`, from the item whose id is `start_cursor`.
pub(super) fn list(
    all: Vec<(String, Value)>,
    start_cursor: Option<&str>,
    page_size: usize,
    kind: &str,
    served: u64,
) -> FakeResponse {
    let start = match start_cursor {
        None => 0,
        Some(cursor) => match all.iter().position(|(id, _)| id == cursor) {
            Some(i) => i,
            None => {
                return error(
                    400,
                    "validation_error",
                    "body failed validation: body.start_cursor should be a valid cursor.",
                    served,
                )
            }
        },
    };
    let end = (start + page_size).min(all.len());
    let next_cursor = all.get(end).map(|(id, _)| id.clone());
    let results: Vec<Value> = all[start..end].iter().map(|(_, v)| v.clone()).collect();
    let mut body = json!({
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor.is_some(),
        "type": kind,
        "request_id": request_id(served),
    });
    body[kind] = json!({});
    FakeResponse::json(200, &body)
}

/// `page_size` as Notion validates it: 1 to 100, 100 when absent.
pub(super) fn page_size(value: Option<&Value>, served: u64) -> Result<usize, FakeResponse> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(MAX_PAGE_SIZE);
    };
    match value.as_u64() {
        Some(n) if (1..=MAX_PAGE_SIZE as u64).contains(&n) => Ok(n as usize),
        _ => Err(error(
            400,
            "validation_error",
            "body failed validation: body.page_size should be a number between 1 and 100.",
            served,
        )),
    }
}

/// What a request asked for: its cursor and page size (in the body of a `POST`, in the query
/// string of a `GET`) and the search's sort direction.
pub(super) fn asked(request: &FakeRequest) -> Asked {
    let body = request.json();
    let start_cursor = body["start_cursor"]
        .as_str()
        .or(request.query.get("start_cursor").map(String::as_str))
        .map(str::to_owned);
    let page_size = body["page_size"]
        .as_u64()
        .or_else(|| request.query.get("page_size")?.parse().ok());
    Asked {
        method: request.method.clone(),
        path: request.path.clone(),
        start_cursor,
        page_size,
        direction: body
            .pointer("/sort/direction")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// The block whose children a request asks for.
pub(super) fn children_of(request: &FakeRequest) -> Option<&str> {
    request
        .path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
        .filter(|_| request.method == "GET")
}

pub(super) fn answer(state: &State, request: &FakeRequest) -> FakeResponse {
    let delay = {
        let switches = state.switches.lock().expect("switches lock");
        children_of(request).and_then(|block| switches.slow.get(block).copied())
    };
    let response = answer_now(state, request);
    match delay {
        Some(delay) => response.after(delay),
        None => response,
    }
}

pub(super) fn answer_now(state: &State, request: &FakeRequest) -> FakeResponse {
    let (served, glitch, valid_token, refused, cap) = {
        let mut switches = state.switches.lock().expect("switches lock");
        switches.served += 1;
        switches.asked.push(asked(request));
        let refused = children_of(request).and_then(|block| switches.refused.get(block).copied());
        let glitch = match switches.glitch {
            Some((0, glitch)) => {
                switches.glitch = None;
                Some(glitch)
            }
            Some((n, glitch)) => {
                switches.glitch = Some((n - 1, glitch));
                None
            }
            None => None,
        };
        let cap = switches.at_most.unwrap_or(MAX_PAGE_SIZE);
        (
            switches.served,
            glitch,
            switches.valid_token.clone(),
            refused,
            cap,
        )
    };
    match glitch {
        Some(Glitch::RateLimited { retry_after_secs }) => {
            return error(
                429,
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
                served,
            )
            .with_header("retry-after", retry_after_secs)
        }
        Some(Glitch::Unavailable) => {
            return error(
                503,
                "service_unavailable",
                "Notion is unavailable. Please try again later.",
                served,
            )
        }
        Some(Glitch::Malformed) => {
            return FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                r#"{"object":"list","results":[{"object":"page","id":"#,
            )
        }
        Some(Glitch::PathAsId) => {
            let mut response = normal_answer(state, request, served, valid_token, refused, cap);
            if let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) {
                if let Some(first) = body.pointer_mut("/results/0/id") {
                    *first = json!("../../v1/users/me");
                }
                response.body = body.to_string().into_bytes();
            }
            return response;
        }
        None => {}
    }
    normal_answer(state, request, served, valid_token, refused, cap)
}

/// The answer Notion gives, glitches aside.
pub(super) fn normal_answer(
    state: &State,
    request: &FakeRequest,
    served: u64,
    valid_token: Option<String>,
    refused: Option<Refusal>,
    cap: usize,
) -> FakeResponse {
    if request.bearer().is_none() || request.bearer() != valid_token.as_deref() {
        return error(401, "unauthorized", "API token is invalid.", served);
    }
    match request.header("notion-version") {
        Some(NOTION_VERSION) => {}
        Some(other) => {
            let message = format!(
                "Notion-Version header failed validation: Notion-Version header should be a supported version, instead was `{other}`."
            );
            return error(400, "validation_error", &message, served);
        }
        None => {
            return error(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
                served,
            )
        }
    }
    let path = request.path.as_str();
    let route = (request.method.as_str(), path);
    if route == ("GET", "/v1/users/me") {
        return FakeResponse::json(
            200,
            &json!({
                "object": "user",
                "id": BOT,
                "name": "Fake integration",
                "avatar_url": null,
                "type": "bot",
                "bot": {"owner": {"type": "workspace", "workspace": true},
                        "workspace_name": "Fake workspace"},
                "request_id": request_id(served),
            }),
        );
    }
    let workspace = state.workspace.lock().expect("workspace lock");
    if route == ("POST", "/v1/search") {
        return search(&workspace, &request.json(), served, cap);
    }
    if let Some(id) = path
        .strip_prefix("/v1/databases/")
        .and_then(|p| p.strip_suffix("/query"))
    {
        if request.method == "POST" {
            return query(&workspace, id, &request.json(), served, cap);
        }
    }
    if let Some(id) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
    {
        if request.method == "GET" {
            return match refused {
                Some(Refusal::Unsupported) => error(
                    400,
                    "validation_error",
                    "Block type is not supported via the API.",
                    served,
                ),
                Some(Refusal::Restricted) => error(
                    403,
                    "restricted_resource",
                    "API token does not have access to this resource.",
                    served,
                ),
                None => children(&workspace, id, request, served, cap),
            };
        }
    }
    error(400, "invalid_request_url", "Invalid request URL.", served)
}

pub(super) fn body_json(body: &Value, served: u64) -> Result<(), FakeResponse> {
    if body.is_null() || body.is_object() {
        Ok(())
    } else {
        Err(error(
            400,
            "invalid_json",
            "Error parsing JSON body.",
            served,
        ))
    }
}

pub(super) fn search(workspace: &Workspace, body: &Value, served: u64, cap: usize) -> FakeResponse {
    if let Err(e) = body_json(body, served) {
        return e;
    }
    let size = match page_size(body.get("page_size"), served) {
        Ok(size) => size.min(cap),
        Err(e) => return e,
    };
    let query = body["query"].as_str().unwrap_or_default().to_lowercase();
    let object = body.pointer("/filter/value").and_then(Value::as_str);
    let ascending = body.pointer("/sort/direction").and_then(Value::as_str) == Some("ascending");
    let mut items: Vec<&Item> = workspace
        .items
        .iter()
        .filter(|i| i.title.to_lowercase().contains(&query))
        .filter(|i| match object {
            Some("page") => i.object == Object::Page,
            Some("database") => i.object == Object::Database,
            _ => true,
        })
        .collect();
    // Newest edit first (the default here too); creation order breaks ties.
    items.sort_by_key(|i| (std::cmp::Reverse(i.edited), std::cmp::Reverse(i.created)));
    if ascending {
        items.reverse();
    }
    listed(items, body, size, served)
}

pub(super) fn query(
    workspace: &Workspace,
    id: &str,
    body: &Value,
    served: u64,
    cap: usize,
) -> FakeResponse {
    let exists = workspace
        .items
        .iter()
        .any(|i| i.id == id && i.object == Object::Database);
    if !exists {
        let message = format!(
            "Could not find database with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
        );
        return error(404, "object_not_found", &message, served);
    }
    if let Err(e) = body_json(body, served) {
        return e;
    }
    let size = match page_size(body.get("page_size"), served) {
        Ok(size) => size.min(cap),
        Err(e) => return e,
    };
    let parent = Parent::Database(id.to_owned());
    let mut rows: Vec<&Item> = workspace
        .items
        .iter()
        .filter(|i| i.parent == parent)
        .collect();
    // Creation order unless the first sort asks otherwise.
    let sort = body.pointer("/sorts/0");
    let descending = sort.and_then(|s| s["direction"].as_str()) == Some("descending");
    if sort.and_then(|s| s["timestamp"].as_str()) == Some("last_edited_time") {
        rows.sort_by_key(|i| (i.edited, i.created));
    }
    if descending {
        rows.reverse();
    }
    listed(rows, body, size, served)
}

pub(super) fn children(
    workspace: &Workspace,
    id: &str,
    request: &FakeRequest,
    served: u64,
    cap: usize,
) -> FakeResponse {
    let size = match request.query.get("page_size") {
        None => MAX_PAGE_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return error(
                    400,
                    "validation_error",
                    "query failed validation: page_size should be a number between 1 and 100.",
                    served,
                )
            }
        },
    };
    // The page a block belongs to gives its times.
    let owner = |block_id: &str| -> Option<&Item> {
        let mut current = block_id.to_owned();
        for _ in 0..64 {
            if let Some(item) = workspace.items.iter().find(|i| i.id == current) {
                return Some(item);
            }
            let (parent, _) = workspace
                .blocks
                .iter()
                .find(|(_, blocks)| blocks.iter().any(|b| b.id == current))?;
            current = parent.clone();
        }
        None
    };
    let is_page = workspace
        .items
        .iter()
        .any(|i| i.id == id && i.object == Object::Page);
    // Every page has an entry (maybe empty); a database or an unknown id has none.
    let (Some(item), Some(blocks)) = (owner(id), workspace.blocks.get(id)) else {
        let message = format!(
            "Could not find block with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
        );
        return error(404, "object_not_found", &message, served);
    };
    let all = blocks
        .iter()
        .map(|b| (b.id.clone(), block_json(b, id, is_page, item)))
        .collect();
    list(
        all,
        request.query.get("start_cursor").map(String::as_str),
        size.min(cap),
        "block",
        served,
    )
}

/// Items as a list page of `size` from the body's `start_cursor`, as search and queries answer.
fn listed(items: Vec<&Item>, body: &Value, size: usize, served: u64) -> FakeResponse {
    let all = items
        .into_iter()
        .map(|i| (i.id.clone(), item_json(i, served)))
        .collect();
    list(
        all,
        body["start_cursor"].as_str(),
        size,
        "page_or_database",
        served,
    )
}
