//! `POST /auth-providers/connections`, `GET /auth-providers/connections` and
//! `GET /auth-providers/connections/{readable_id}`: the organization's Composio and Pipedream
//! accounts. Their credentials are stored in the vault and never answered.

use super::HandlerResult;
use crate::app::App;
use crate::paging::{page_request, paged};
use crate::problem::Problem;
use crate::request::{json_body, query};
use crate::response::json;
use domain::auth_provider::ProviderConnection;
use domain::ids::OrganizationId;
use domain::usecases::auth_providers as usecase;
use domain::usecases::auth_providers::CreateProviderConnectionInput;
use http::StatusCode;
use lambda_http::Request;

#[utoipa::path(post, path = "/auth-providers/connections", tag = "auth-providers",
    request_body = CreateProviderConnectionInput,
    responses(
        (status = 201, description = "Created; the credentials were accepted by the provider", body = ProviderConnection),
        (status = 400, description = "The provider refused the credentials", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The readable id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The provider rate-limited the credential check", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider could not be reached", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, input): (_, CreateProviderConnectionInput) = json_body(req, request_id)?;
    let created = usecase::create_provider_connection(&app.platform, org, input)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::CREATED, &created, request_id))
}

#[utoipa::path(get, path = "/auth-providers/connections", tag = "auth-providers",
    params(crate::paging::PageParams),
    responses(
        (status = 200, description = "One page; `Link: <...>; rel=\"next\"` when more follow", body = Vec<ProviderConnection>),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let page = page_request(&query(req), request_id)?;
    let found = usecase::list_provider_connections(&app.platform, org, &page)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(paged(
        &found.items,
        found.next_cursor.as_deref(),
        "/auth-providers/connections",
        &[],
        page.limit,
        request_id,
    ))
}

#[utoipa::path(get, path = "/auth-providers/connections/{readable_id}", tag = "auth-providers",
    params(("readable_id" = String, Path, description = "The auth provider connection's readable id")),
    responses(
        (status = 200, body = ProviderConnection),
        (status = 404, description = "Unknown auth provider connection", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let found = usecase::get_provider_connection(&app.platform, org, id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}
