//! How the fake Linear answers: GraphQL routing, cursor paging, rate limits and errors.

use super::*;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One item of a list, ready to filter, order and page.
pub(super) struct Row {
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) archived: bool,
    /// A deactivated user: listed only with `includeDisabled: true`.
    pub(super) disabled: bool,
    pub(super) id: String,
    pub(super) node: Value,
}

impl Row {
    /// Lists are ordered by `createdAt` (Linear's default), ties by id.
    pub(super) fn position(&self) -> (i64, String) {
        (self.created_at.timestamp_millis(), self.id.clone())
    }
}

/// An opaque cursor naming a position in the order, so a page still follows the one before
/// after the item it ended on was removed.
pub(super) fn encode_cursor(row: &Row) -> String {
    let (ms, id) = row.position();
    base64::engine::general_purpose::STANDARD.encode(format!("{ms}:{id}"))
}

pub(super) fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let text = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let (ms, id) = std::str::from_utf8(&text).ok()?.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

pub(super) fn answer(state: &State, request: &FakeRequest) -> FakeResponse {
    let count = {
        let mut requests = state.requests.lock().expect("requests lock");
        *requests += 1;
        *requests
    };
    let remaining = HOURLY_REQUESTS.saturating_sub(count);
    let reset_ms = Utc::now().timestamp_millis() + 3_600_000;
    let respond = |response: FakeResponse| with_rate_limit(response, remaining, reset_ms);

    if request.method != "POST" || request.path != "/graphql" {
        return respond(FakeResponse::text(404, "text/plain", "Cannot GET"));
    }
    if !authenticated(state, request) {
        return respond(error(
            400,
            "Authentication required, not authenticated",
            "AUTHENTICATION_ERROR",
            "authentication error",
            "You need to authenticate to access this operation.",
        ));
    }
    let body = request.json();
    let Some(field) = body
        .get("query")
        .and_then(Value::as_str)
        .and_then(root_field)
    else {
        return respond(error(
            400,
            "Syntax Error: Unexpected <EOF>.",
            "GRAPHQL_PARSE_FAILED",
            "graphql error",
            "The query could not be parsed.",
        ));
    };
    let variables = body
        .get("variables")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if field == "viewer" {
        if let Some(wait_secs) = state.viewer_limited.lock().expect("viewer lock").take() {
            return rate_limited(wait_secs);
        }
        let workspace = state.workspace.lock().expect("workspace lock");
        let viewer = workspace
            .users
            .first()
            .map(|u| json!({"id": u.id, "name": u.name, "email": u.email}));
        return respond(FakeResponse::json(
            200,
            &json!({"data": {"viewer": viewer}}),
        ));
    }

    state.asked.lock().expect("asked lock").push(Asked {
        field: field.clone(),
        after: variables
            .get("after")
            .and_then(Value::as_str)
            .map(str::to_owned),
        updated_after: variables
            .get("filter")
            .and_then(|f| f.pointer("/updatedAt/gt"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        include_archived: variables
            .get("includeArchived")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    });
    if let Some(trouble) = due_trouble(state) {
        return match trouble {
            Trouble::RateLimited { wait_secs } => rate_limited(wait_secs),
            Trouble::Malformed => respond(FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                format!(r#"{{"data":{{"{field}":{{"nodes":[{{"id":"#),
            )),
        };
    }
    let workspace = state.workspace.lock().expect("workspace lock");
    match list(&workspace, &field, &variables) {
        Ok(data) => respond(FakeResponse::json(200, &json!({"data": {field: data}}))),
        Err(message) => respond(error(
            400,
            &message,
            "INVALID_INPUT",
            "invalid input",
            &message,
        )),
    }
}

/// `RATELIMITED`, the requests budget spent until `wait_secs` from now.
pub(super) fn rate_limited(wait_secs: u64) -> FakeResponse {
    let reset = Utc::now().timestamp_millis() + (wait_secs * 1000) as i64;
    with_rate_limit(
        error(
            400,
            "Rate limit exceeded",
            "RATELIMITED",
            "ratelimited",
            "You have exceeded the API rate limit, please try again later.",
        ),
        0,
        reset,
    )
}

/// A personal API key is the whole `Authorization` value; `Bearer <token>` is how OAuth
/// tokens go, and Linear refuses a personal key sent that way.
pub(super) fn authenticated(state: &State, request: &FakeRequest) -> bool {
    let Some(valid) = state.valid_key.lock().expect("key lock").clone() else {
        return false;
    };
    let oauth = state.oauth_tokens.lock().expect("tokens lock");
    if request
        .bearer()
        .is_some_and(|token| oauth.iter().any(|t| t == token))
    {
        return true;
    }
    let Some(sent) = request.header("authorization").map(str::trim) else {
        return false;
    };
    if sent == valid {
        return true;
    }
    match request.bearer() {
        Some(token) => token == valid && !valid.starts_with("lin_api_"),
        None => false,
    }
}

/// Counts a list answer against the armed trouble; answers it when it is due (once).
pub(super) fn due_trouble(state: &State) -> Option<Trouble> {
    let mut armed = state.trouble.lock().expect("trouble lock");
    match armed.as_mut() {
        Some((0, trouble)) => {
            let trouble = *trouble;
            *armed = None;
            Some(trouble)
        }
        Some((left, _)) => {
            *left -= 1;
            None
        }
        None => None,
    }
}

/// The first field of the operation's selection set: `query Issues($first: Int!) { issues(`
/// answers `issues`.
pub(super) fn root_field(query: &str) -> Option<String> {
    let (_, selection) = query.split_once('{')?;
    let name: String = selection
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// One page of a list, as a Relay connection.
pub(super) fn list(
    workspace: &Workspace,
    field: &str,
    variables: &Map<String, Value>,
) -> Result<Value, String> {
    let Some(mut rows) = workspace.rows(field) else {
        return Err(format!("Cannot query field \"{field}\" on type \"Query\"."));
    };
    let first = match variables.get("first") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(n) => match n.as_u64() {
            Some(n @ 1..=250) => n as usize,
            _ => return Err(format!("first must be between 1 and {MAX_PAGE}")),
        },
    };
    let include_archived = variables
        .get("includeArchived")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let updated_after = match variables
        .get("filter")
        .and_then(|f| f.pointer("/updatedAt/gt"))
    {
        None | Some(Value::Null) => None,
        Some(gt) => Some(
            gt.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or("filter.updatedAt.gt must be a DateTime")?,
        ),
    };
    let after = match variables.get("after") {
        None | Some(Value::Null) => None,
        Some(cursor) => Some(
            cursor
                .as_str()
                .and_then(decode_cursor)
                .ok_or("after is not a valid cursor")?,
        ),
    };
    let include_disabled = variables
        .get("includeDisabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    rows.retain(|r| (include_archived || !r.archived) && (include_disabled || !r.disabled));
    if let Some(since) = updated_after {
        rows.retain(|r| r.updated_at > since);
    }
    rows.sort_by_key(Row::position);
    if let Some(after) = after {
        rows.retain(|r| r.position() > after);
    }
    let has_next = rows.len() > first;
    rows.truncate(first);
    let end_cursor = rows.last().map(encode_cursor);
    let start_cursor = rows.first().map(encode_cursor);
    Ok(json!({
        "nodes": rows.into_iter().map(|r| r.node).collect::<Vec<_>>(),
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": after_given(variables),
            "startCursor": start_cursor,
            "endCursor": end_cursor,
        },
    }))
}

pub(super) fn after_given(variables: &Map<String, Value>) -> bool {
    variables.get("after").is_some_and(|a| !a.is_null())
}

/// Linear's error body: `errors[]` with `extensions` (`code`, `type`, `statusCode`,
/// `userError`, `userPresentableMessage`) and no `data`.
pub(super) fn error(
    status: u16,
    message: &str,
    code: &str,
    kind: &str,
    user_message: &str,
) -> FakeResponse {
    let status_code = match code {
        "AUTHENTICATION_ERROR" => 401,
        "RATELIMITED" => 429,
        _ => status,
    };
    FakeResponse::json(
        status,
        &json!({"errors": [{
            "message": message,
            "extensions": {
                "code": code,
                "type": kind,
                "statusCode": status_code,
                "userError": true,
                "userPresentableMessage": user_message,
            },
        }]}),
    )
}

/// The requests budget headers every answer carries (resets in UTC epoch milliseconds).
pub(super) fn with_rate_limit(
    response: FakeResponse,
    remaining: u64,
    reset_ms: i64,
) -> FakeResponse {
    response
        .with_header("x-ratelimit-requests-limit", HOURLY_REQUESTS)
        .with_header("x-ratelimit-requests-remaining", remaining)
        .with_header("x-ratelimit-requests-reset", reset_ms)
}
