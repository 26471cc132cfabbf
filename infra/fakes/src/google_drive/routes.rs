//! How the fake Drive answers: routing, paging, JSON shapes and error answers.

use super::*;

// --- answers ---

pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Google's error body.
pub(super) fn error(
    code: u16,
    reason: &str,
    message: &str,
    status: &str,
    domain: &str,
) -> FakeResponse {
    FakeResponse::json(
        code,
        &json!({"error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status,
        }}),
    )
}

pub(super) fn unauthenticated() -> FakeResponse {
    FakeResponse::json(
        401,
        &json!({"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access \
                        token, login cookie or other valid authentication credential. See \
                        https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{
                "message": "Invalid Credentials",
                "domain": "global",
                "reason": "authError",
                "location": "Authorization",
                "locationType": "header",
            }],
            "status": "UNAUTHENTICATED",
        }}),
    )
    .with_header(
        "www-authenticate",
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
    )
}

pub(super) fn invalid_parameter(name: &str) -> FakeResponse {
    FakeResponse::json(
        400,
        &json!({"error": {
            "code": 400,
            "message": format!("Invalid Value"),
            "errors": [{
                "message": "Invalid Value",
                "domain": "global",
                "reason": "invalid",
                "location": name,
                "locationType": "parameter",
            }],
        }}),
    )
}

pub(super) fn not_found(id: &str) -> FakeResponse {
    let message = format!("File not found: {id}.");
    error(404, "notFound", &message, "NOT_FOUND", "global")
}

pub(super) fn rate_limited(kind: RateLimit, retry_after_secs: Option<u64>) -> FakeResponse {
    let response = match kind {
        RateLimit::UserRateLimit => error(
            403,
            "userRateLimitExceeded",
            "User rate limit exceeded.",
            "PERMISSION_DENIED",
            "usageLimits",
        ),
        RateLimit::TooManyRequests => error(
            429,
            "rateLimitExceeded",
            "Rate limit exceeded.",
            "RESOURCE_EXHAUSTED",
            "usageLimits",
        ),
    };
    match retry_after_secs {
        Some(secs) => response.with_header("retry-after", secs),
        None => response,
    }
}

/// Google's error body for an armed refusal: the status's name, and the domain Google gives
/// the reason (`usageLimits` for limits and quotas).
pub(super) fn refused(code: u16, reason: &str) -> FakeResponse {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let limit = reason.contains("Limit") || reason.contains("quota");
    let domain = if limit { "usageLimits" } else { "global" };
    let message = format!("The request was refused ({reason}).");
    error(code, reason, &message, status, domain)
}

pub(super) fn answer(
    workspace: &Mutex<Workspace>,
    shared: &Mutex<Shared>,
    request: &FakeRequest,
) -> FakeResponse {
    let mut shared = shared.lock().expect("shared lock");
    shared.log.push(Logged {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
    });
    shared.answers += 1;
    let authorized = !shared.revoked && request.bearer() == Some(shared.valid_token.as_str());
    if !authorized {
        return unauthenticated();
    }
    let due = shared
        .faults
        .iter()
        .position(|a| request.path.ends_with(&a.path_suffix));
    if let Some(index) = due {
        let armed = &mut shared.faults[index];
        if armed.skip == 0 {
            let fault = shared.faults.remove(index).fault;
            return match fault {
                Fault::RateLimited {
                    kind,
                    retry_after_secs,
                } => rate_limited(kind, retry_after_secs),
                Fault::Refused { status, reason } => refused(status, &reason),
                Fault::Malformed => FakeResponse::text(
                    200,
                    "text/html; charset=utf-8",
                    "<html><body>Sign in to continue</body></html>",
                ),
                Fault::MalformedJson(body) => FakeResponse::json(200, &body),
            };
        }
        armed.skip -= 1;
    }
    if request.method != "GET" {
        return error(
            405,
            "methodNotAllowed",
            "Method not allowed",
            "INVALID_ARGUMENT",
            "global",
        );
    }
    let workspace = workspace.lock().expect("workspace lock");
    let serial = shared.answers;
    let Some(rest) = request.path.strip_prefix("/drive/v3/") else {
        return error(404, "notFound", "Not Found", "NOT_FOUND", "global");
    };
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["about"] => about(),
        ["files"] => list_files(&workspace, request, serial),
        ["files", id] => get_file(&workspace, request, id, serial),
        ["files", id, "export"] => export(&workspace, request, id),
        ["drives"] => list_drives(&workspace, request),
        ["changes", "startPageToken"] => FakeResponse::json(
            200,
            &json!({"kind": "drive#startPageToken", "startPageToken": workspace.next_change.to_string()}),
        ),
        ["changes"] => list_changes(&workspace, request, serial),
        _ => error(404, "notFound", "Not Found", "NOT_FOUND", "global"),
    }
}

pub(super) fn about() -> FakeResponse {
    FakeResponse::json(
        200,
        &json!({"user": {
            "kind": "drive#user",
            "displayName": OWNER_NAME,
            "emailAddress": OWNER_EMAIL,
            "permissionId": "00112233445566778899",
            "me": true,
            "photoLink": "https://lh3.googleusercontent.com/a/fake=s64",
        }}),
    )
}

pub(super) fn person() -> Value {
    json!({
        "kind": "drive#user",
        "displayName": OWNER_NAME,
        "emailAddress": OWNER_EMAIL,
        "permissionId": "00112233445566778899",
        "me": true,
    })
}

/// A file as Drive answers it, volatile fields included.
pub(super) fn file_json(file: &File, serial: u64) -> Value {
    let google = file.mime_type.starts_with("application/vnd.google-apps.");
    let link = if file.mime_type == GOOGLE_DOC {
        format!(
            "https://docs.google.com/document/d/{}/edit?usp=drivesdk",
            file.id
        )
    } else if file.mime_type == FOLDER {
        format!("https://drive.google.com/drive/folders/{}", file.id)
    } else {
        format!(
            "https://drive.google.com/file/d/{}/view?usp=drivesdk",
            file.id
        )
    };
    let mut value = json!({
        "kind": "drive#file",
        "id": file.id,
        "name": file.name,
        "mimeType": file.mime_type,
        "starred": false,
        "trashed": file.trashed,
        "parents": file.parents,
        "webViewLink": link,
        "iconLink": format!("https://drive-thirdparty.googleusercontent.com/16/type/{}", file.mime_type),
        "thumbnailLink": format!("https://lh3.googleusercontent.com/drive-storage/{}=s220?sig={serial}", file.id),
        "viewedByMeTime": time(Utc::now()),
        "createdTime": time(file.created),
        "modifiedTime": time(file.modified),
        "version": file.version.to_string(),
        "owners": [person()],
        "lastModifyingUser": person(),
    });
    if let Some(description) = &file.description {
        value["description"] = json!(description);
    }
    if !google {
        let size = file
            .text
            .as_ref()
            .map_or(file.binary_size, |t| t.len() as u64);
        value["size"] = json!(size.to_string());
        if let Some((_, extension)) = file.name.rsplit_once('.') {
            value["fileExtension"] = json!(extension);
        }
    }
    if let Some(drive) = &file.drive_id {
        value["driveId"] = json!(drive);
    }
    value
}

pub(super) fn drive_json(drive: &Drive) -> Value {
    json!({
        "kind": "drive#drive",
        "id": drive.id,
        "name": drive.name,
        "createdTime": time(drive.created),
        "hidden": false,
        "colorRgb": "#4986e7",
    })
}

/// `pageSize` as Drive reads it (default when absent, at most `max`), lowered to the
/// workspace's cap; `None` when it is not a positive number.
pub(super) fn page_size(
    request: &FakeRequest,
    default: usize,
    max: usize,
    cap: usize,
) -> Option<usize> {
    let asked = match request.query.get("pageSize") {
        None => default,
        Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0)?,
    };
    Some(asked.min(max).min(cap.max(1)))
}

/// Offsets as opaque-looking page tokens; any other token is invalid.
pub(super) fn offset_token(prefix: &str, offset: usize) -> String {
    format!("~{prefix}!{offset:x}")
}

pub(super) fn read_offset(request: &FakeRequest, prefix: &str) -> Result<usize, FakeResponse> {
    match request.query.get("pageToken") {
        None => Ok(0),
        Some(token) => token
            .strip_prefix(&format!("~{prefix}!"))
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| invalid_parameter("pageToken")),
    }
}

pub(super) fn flag(request: &FakeRequest, name: &str) -> bool {
    request.query.get(name).is_some_and(|v| v == "true")
}

pub(super) fn list_files(
    workspace: &Workspace,
    request: &FakeRequest,
    serial: u64,
) -> FakeResponse {
    let all_drives = flag(request, "includeItemsFromAllDrives");
    let corpora = request.query.get("corpora").map_or("user", String::as_str);
    if !["user", "allDrives", "drive"].contains(&corpora) {
        return invalid_parameter("corpora");
    }
    if corpora != "user" && !all_drives {
        let message = format!(
            "The includeItemsFromAllDrives parameter must be set to true when corpora is \
             {corpora}."
        );
        return error(400, "invalid", &message, "INVALID_ARGUMENT", "global");
    }
    // `corpora=drive` names its shared drive in `driveId` (and only then may one be given).
    let drive = request.query.get("driveId");
    match (corpora, drive) {
        ("drive", None) => {
            let message = "The driveId parameter must be specified if and only if corpora is \
                           set to drive.";
            return error(400, "invalid", message, "INVALID_ARGUMENT", "global");
        }
        ("drive", Some(id)) if !workspace.drives.contains_key(id) => {
            let message = format!("Shared drive not found: {id}");
            return error(404, "notFound", &message, "NOT_FOUND", "global");
        }
        ("drive", Some(_)) if !flag(request, "supportsAllDrives") => {
            return invalid_parameter("supportsAllDrives");
        }
        (_, Some(_)) if corpora != "drive" => return invalid_parameter("driveId"),
        _ => {}
    }
    // The fake understands the one query a sync needs.
    let only_live = match request.query.get("q").map(|q| q.replace(' ', "")) {
        None => false,
        Some(q) if q == "trashed=false" => true,
        Some(_) => return invalid_parameter("q"),
    };
    let Some(size) = page_size(
        request,
        FILES_DEFAULT_PAGE,
        FILES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let offset = match read_offset(request, "f") {
        Ok(offset) => offset,
        Err(response) => return response,
    };
    let visible: Vec<&File> = workspace
        .files
        .values()
        .filter(|f| !(only_live && f.trashed))
        .filter(|f| match corpora {
            // The user's own files and those shared with them; a shared drive's only when
            // shared directly with the user, and only when items of all drives are asked for.
            "user" => f.drive_id.is_none() || (all_drives && f.shared_with_me),
            "drive" => f.drive_id.as_ref() == drive,
            _ => true,
        })
        .collect();
    let page: Vec<Value> = visible
        .iter()
        .skip(offset)
        .take(size)
        .map(|f| file_json(f, serial))
        .collect();
    let mut body = json!({
        "kind": "drive#fileList",
        "incompleteSearch": workspace.incomplete_search,
        "files": page,
    });
    if offset + size < visible.len() {
        body["nextPageToken"] = json!(offset_token("f", offset + size));
    }
    FakeResponse::json(200, &body)
}

pub(super) fn get_file(
    workspace: &Workspace,
    request: &FakeRequest,
    id: &str,
    serial: u64,
) -> FakeResponse {
    let Some(file) = workspace.files.get(id) else {
        return not_found(id);
    };
    if file.drive_id.is_some() && !flag(request, "supportsAllDrives") {
        return not_found(id);
    }
    if request.query.get("alt").map(String::as_str) != Some("media") {
        return FakeResponse::json(200, &file_json(file, serial));
    }
    if file.mime_type.starts_with("application/vnd.google-apps.") {
        return error(
            403,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
            "PERMISSION_DENIED",
            "global",
        );
    }
    match &file.text {
        Some(text) => FakeResponse::text(200, &file.mime_type, text.clone()),
        None => FakeResponse::text(
            200,
            &file.mime_type,
            vec![0u8; file.binary_size.min(64) as usize],
        ),
    }
}

pub(super) fn export(workspace: &Workspace, request: &FakeRequest, id: &str) -> FakeResponse {
    let Some(file) = workspace.files.get(id) else {
        return not_found(id);
    };
    if file.mime_type != GOOGLE_DOC {
        return error(
            403,
            "fileNotExportable",
            "Export only supports Docs Editors files.",
            "PERMISSION_DENIED",
            "global",
        );
    }
    match request.query.get("mimeType").map(String::as_str) {
        // Drive's plain-text export starts with a byte order mark.
        Some("text/plain") => FakeResponse::text(
            200,
            "text/plain",
            format!("\u{feff}{}", file.text.as_deref().unwrap_or_default()),
        ),
        _ => invalid_parameter("mimeType"),
    }
}

pub(super) fn list_drives(workspace: &Workspace, request: &FakeRequest) -> FakeResponse {
    let Some(size) = page_size(
        request,
        DRIVES_DEFAULT_PAGE,
        DRIVES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let offset = match read_offset(request, "d") {
        Ok(offset) => offset,
        Err(response) => return response,
    };
    let page: Vec<Value> = workspace
        .drives
        .values()
        .skip(offset)
        .take(size)
        .map(drive_json)
        .collect();
    let mut body = json!({"kind": "drive#driveList", "drives": page});
    if offset + size < workspace.drives.len() {
        body["nextPageToken"] = json!(offset_token("d", offset + size));
    }
    FakeResponse::json(200, &body)
}

pub(super) fn list_changes(
    workspace: &Workspace,
    request: &FakeRequest,
    serial: u64,
) -> FakeResponse {
    let from = match request.query.get("pageToken").map(|t| t.parse::<u64>()) {
        Some(Ok(from)) if from <= workspace.next_change => from,
        Some(_) => return invalid_parameter("pageToken"),
        None => {
            let message = "Required parameter: pageToken";
            return error(400, "required", message, "INVALID_ARGUMENT", "global");
        }
    };
    let Some(size) = page_size(
        request,
        CHANGES_DEFAULT_PAGE,
        CHANGES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let all_drives = flag(request, "includeItemsFromAllDrives");
    let include_removed = request
        .query
        .get("includeRemoved")
        .is_none_or(|v| v == "true");
    let pending: Vec<&(u64, Item)> = workspace
        .changes
        .iter()
        .filter(|(id, _)| *id >= from)
        .collect();
    let mut changes = Vec::new();
    for (_, item) in pending.iter().take(size) {
        let change = match item {
            Item::File(id) => match workspace.files.get(id) {
                Some(file) if file.drive_id.is_some() && !all_drives => continue,
                Some(file) => json!({
                    "kind": "drive#change",
                    "changeType": "file",
                    "time": time(file.modified),
                    "removed": false,
                    "fileId": id,
                    "file": file_json(file, serial),
                }),
                None if include_removed => json!({
                    "kind": "drive#change",
                    "changeType": "file",
                    "time": time(workspace.clock),
                    "removed": true,
                    "fileId": id,
                }),
                None => continue,
            },
            Item::Drive(id) => match workspace.drives.get(id) {
                Some(drive) => json!({
                    "kind": "drive#change",
                    "changeType": "drive",
                    "time": time(workspace.clock),
                    "removed": false,
                    "driveId": id,
                    "drive": drive_json(drive),
                }),
                None => json!({
                    "kind": "drive#change",
                    "changeType": "drive",
                    "time": time(workspace.clock),
                    "removed": true,
                    "driveId": id,
                }),
            },
        };
        changes.push(change);
    }
    let mut body = json!({"kind": "drive#changeList", "changes": changes});
    match pending.get(size) {
        Some((next, _)) => body["nextPageToken"] = json!(next.to_string()),
        None => body["newStartPageToken"] = json!(workspace.next_change.to_string()),
    }
    FakeResponse::json(200, &body)
}
