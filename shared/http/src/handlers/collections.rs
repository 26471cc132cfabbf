//! `POST/GET /collections`, `GET/DELETE /collections/{readable_id}`.

use super::HandlerResult;
use crate::app::App;
use crate::paging::{page_request, paged};
use crate::problem::Problem;
use crate::request::{json_body, query};
use crate::response::json;
use domain::collection::{Collection, CreateCollectionInput};
use domain::ids::OrganizationId;
use domain::usecases::collections as usecase;
use http::StatusCode;
use lambda_http::Request;

fn problem(request_id: &str) -> impl Fn(domain::DomainError) -> Problem + '_ {
    move |e| Problem::from_domain(e, request_id)
}

#[utoipa::path(post, path = "/collections", tag = "collections",
    request_body = domain::collection::CreateCollectionInput,
    responses(
        (status = 201, description = "Created", body = Collection),
        (status = 409, description = "The readable_id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, input): (_, CreateCollectionInput) = json_body(req, request_id)?;
    let created = usecase::create_collection(&app.platform, org, input)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::CREATED, &created, request_id))
}

#[utoipa::path(get, path = "/collections/{readable_id}", tag = "collections",
    params(("readable_id" = String, Path, description = "The collection's readable id")),
    responses(
        (status = 200, body = Collection),
        (status = 404, description = "Unknown collection", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let found = usecase::get_collection(&app.platform, org, id)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}

#[utoipa::path(get, path = "/collections", tag = "collections",
    params(crate::paging::PageParams),
    responses(
        (status = 200, description = "One page; `Link: <...>; rel=\"next\"` when more follow", body = Vec<Collection>),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let page = page_request(&query(req), request_id)?;
    let found = usecase::list_collections(&app.platform, org, &page)
        .await
        .map_err(problem(request_id))?;
    Ok(paged(
        &found.items,
        found.next_cursor.as_deref(),
        "/collections",
        &[],
        page.limit,
        request_id,
    ))
}

#[utoipa::path(delete, path = "/collections/{readable_id}", tag = "collections",
    params(("readable_id" = String, Path, description = "The collection's readable id")),
    responses(
        (status = 200, description = "Deleted; answers the collection", body = Collection),
        (status = 404, description = "Unknown collection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Source connections still belong to it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let deleted = usecase::delete_collection(&app.platform, org, id)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &deleted, request_id))
}
