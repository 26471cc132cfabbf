//! Syncs: `POST /source-connections/{id}/run`, `GET .../jobs`, `GET .../jobs/{job_id}`,
//! `POST .../jobs/{job_id}/cancel` and `GET .../entities`.

use super::HandlerResult;
use crate::app::App;
use crate::paging::{page_request, paged};
use crate::problem::Problem;
use crate::request::{body_bytes, json_body, query};
use crate::response::json;
use domain::entity::EntityRecord;
use domain::ids::OrganizationId;
use domain::job::Job;
use domain::usecases::{jobs, runs};
use domain::FieldError;
use http::StatusCode;
use lambda_http::Request;

/// The optional body of `POST /source-connections/{id}/run`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// Sync everything and delete what the source no longer has.
    pub force_full_sync: Option<bool>,
}

#[utoipa::path(post, path = "/source-connections/{id}/run", tag = "source-connections",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("force_full_sync" = Option<bool>, Query, description = "Sync everything and delete what the source no longer has, even when the source syncs incrementally"),
    ),
    request_body(content = Option<RunInput>, description = "Optional; `force_full_sync` here is the same as in the query (either one asks for a full sync)"),
    responses(
        (status = 202, description = "The job, queued", body = Job),
        (status = 400, description = "The connection waits for authorization or re-authentication", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A job is already pending, running or cancelling, or the connection is paused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "force_full_sync is not true or false, or the body is not a RunInput", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let in_query = match query(req).get("force_full_sync").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            let error = FieldError::new("force_full_sync", "must be true or false");
            return Err(Problem::invalid(vec![error], request_id));
        }
    };
    // Airweave's CLI sends `{"force_full_sync": true}` as the body; an empty or `null` body is
    // none.
    let bytes = body_bytes(req);
    let none = bytes.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| v.is_null());
    let in_body = if none {
        false
    } else {
        let (_, input): (_, RunInput) = json_body(req, request_id)?;
        input.force_full_sync.unwrap_or(false)
    };
    let job = runs::run_connection(&app.platform, org, id, in_query || in_body)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::ACCEPTED, &job, request_id))
}

#[utoipa::path(post, path = "/source-connections/{id}/jobs/{job_id}/cancel", tag = "source-connections",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("job_id" = String, Path, description = "The job id"),
    ),
    responses(
        (status = 200, description = "The job: cancelled when it was pending, cancelling while its run stops between pages", body = Job),
        (status = 404, description = "Unknown connection or job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already ended", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    app: &App,
    org: OrganizationId,
    id: &str,
    job_id: &str,
    request_id: &str,
) -> HandlerResult {
    let job = runs::cancel_job(&app.platform, org, id, job_id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &job, request_id))
}

#[utoipa::path(get, path = "/source-connections/{id}/jobs", tag = "source-connections",
    params(("id" = String, Path, description = "The connection id"), crate::paging::PageParams),
    responses(
        (status = 200, description = "The connection's sync jobs, newest first; `Link: <...>; rel=\"next\"` when more follow", body = Vec<Job>),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let page = page_request(&query(req), request_id)?;
    let found = jobs::list_jobs(&app.platform, org, id, &page)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    let path = format!("/source-connections/{id}/jobs");
    Ok(paged(
        &found.items,
        found.next_cursor.as_deref(),
        &path,
        &[],
        page.limit,
        request_id,
    ))
}

#[utoipa::path(get, path = "/source-connections/{id}/jobs/{job_id}", tag = "source-connections",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("job_id" = String, Path, description = "The job id"),
    ),
    responses(
        (status = 200, description = "The job, with its counts as they stand", body = Job),
        (status = 404, description = "Unknown connection or job", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    app: &App,
    org: OrganizationId,
    id: &str,
    job_id: &str,
    request_id: &str,
) -> HandlerResult {
    let job = jobs::get_job(&app.platform, org, id, job_id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &job, request_id))
}

#[utoipa::path(get, path = "/source-connections/{id}/entities", tag = "source-connections",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("type" = Option<String>, Query, min_length = 1, max_length = 255, pattern = "^[^#]*$", description = "Only entities of this type (one of the source's `output_entity_definitions`; 1-255 bytes, no `#`)"),
        crate::paging::PageParams,
    ),
    responses(
        (status = 200, description = "The connection's synced entities in key order; `Link: <...>; rel=\"next\"` when more follow", body = Vec<EntityRecord>),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging parameters or type", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn entities(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let params = query(req);
    let page = page_request(&params, request_id)?;
    let entity_type = params.get("type").map(String::as_str);
    let found = jobs::list_entities(&app.platform, org, id, entity_type, &page)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    let path = format!("/source-connections/{id}/entities");
    let filters: Vec<(&str, &str)> = entity_type.map(|t| ("type", t)).into_iter().collect();
    Ok(paged(
        &found.items,
        found.next_cursor.as_deref(),
        &path,
        &filters,
        page.limit,
        request_id,
    ))
}
