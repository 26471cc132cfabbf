//! `POST /source-connections` (the create-connection function), `GET /source-connections`
//! and `GET`, `PATCH`, `DELETE /source-connections/{id}`.

use super::HandlerResult;
use crate::app::App;
use crate::paging::{page_request, paged};
use crate::problem::Problem;
use crate::request::{header, json_body, query};
use crate::response::json;
use domain::connection::{SourceConnection, SourceConnectionListItem};
use domain::idempotency::{IdempotencyKey, KeyedRequest};
use domain::ids::OrganizationId;
use domain::usecases::collections::get_collection;
use domain::usecases::connections as read;
use domain::usecases::create_connection::{create_connection, CreateConnectionInput};
use domain::usecases::delete_connection::delete_connection;
use domain::usecases::update_connection::{update_connection, UpdateConnectionInput};
use domain::FieldError;
use http::{header as h, HeaderValue, StatusCode};
use lambda_http::Request;

#[utoipa::path(post, path = "/source-connections", tag = "source-connections",
    request_body = CreateConnectionInput,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Same key and body within 24 h answers the first result")),
    responses(
        (status = 201, description = "Created (or replayed: `idempotent-replayed: true`)", body = SourceConnection),
        (status = 400, description = "A method the source does not support, or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown source or collection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The source rate-limited the credential check", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The source failed during the credential check", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let key = header(req, "idempotency-key")
        .map(|k| {
            IdempotencyKey::parse(k).map_err(|m| {
                Problem::invalid(vec![FieldError::new("Idempotency-Key", m)], request_id)
            })
        })
        .transpose()?;
    let (body, input): (_, CreateConnectionInput) = json_body(req, request_id)?;
    let keyed = key.as_ref().map(|key| KeyedRequest { key, body: &body });
    let created = create_connection(&app.platform, org, input, keyed)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    let mut response = json(StatusCode::CREATED, &created.connection, request_id);
    let location = format!("/source-connections/{}", created.connection.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(h::LOCATION, v);
    }
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/source-connections/{id}", tag = "source-connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, body = SourceConnection),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let found = read::get_connection(&app.platform, org, id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}

#[utoipa::path(patch, path = "/source-connections/{id}", tag = "source-connections",
    params(("id" = String, Path, description = "The connection id")),
    request_body = UpdateConnectionInput,
    responses(
        (status = 200, description = "The whole connection, updated", body = SourceConnection),
        (status = 400, description = "Credentials the source rejected, credentials for a connection without direct authentication, or a state that cannot change", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The connection kept changing; retry", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An empty body, an unknown field, or an invalid value (including a schedule more frequent than the source allows)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The source rate-limited the credential check", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The source failed during the credential check", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, input): (_, UpdateConnectionInput) = json_body(req, request_id)?;
    let updated = update_connection(&app.platform, org, id, input)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &updated, request_id))
}

#[utoipa::path(delete, path = "/source-connections/{id}", tag = "source-connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The connection as it was. Its running job was stopped; its jobs, entities and secret are gone, and its collection no longer counts it", body = SourceConnection),
        (status = 404, description = "Unknown (or already deleted) connection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The connection kept changing while it was being deleted; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let deleted = delete_connection(&app.platform, org, id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &deleted, request_id))
}

#[utoipa::path(get, path = "/source-connections", tag = "source-connections",
    params(
        ("collection" = Option<String>, Query, description = "Only this collection's connections"),
        crate::paging::PageParams,
    ),
    responses(
        (status = 200, description = "One page; `Link: <...>; rel=\"next\"` when more follow", body = Vec<SourceConnectionListItem>),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let params = query(req);
    let collection = params.get("collection").map(String::as_str);
    let filters: Vec<(&str, &str)> = collection.map(|c| ("collection", c)).into_iter().collect();
    one_page(
        app,
        org,
        collection,
        "/source-connections",
        &filters,
        req,
        request_id,
    )
    .await
}

#[utoipa::path(get, path = "/collections/{readable_id}/source-connections", tag = "collections",
    params(
        ("readable_id" = String, Path, description = "The collection's readable id"),
        crate::paging::PageParams,
    ),
    responses(
        (status = 200, description = "One page of the collection's connections; `Link: <...>; rel=\"next\"` when more follow", body = Vec<SourceConnectionListItem>),
        (status = 404, description = "Unknown collection", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_in_collection(
    app: &App,
    org: OrganizationId,
    readable_id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    // An unknown collection is a 404, not an empty list.
    get_collection(&app.platform, org, readable_id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    let path = format!("/collections/{readable_id}/source-connections");
    one_page(app, org, Some(readable_id), &path, &[], req, request_id).await
}

/// One page of the organization's connections, of one collection or all.
async fn one_page(
    app: &App,
    org: OrganizationId,
    collection: Option<&str>,
    path: &str,
    filters: &[(&str, &str)],
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let page = page_request(&query(req), request_id)?;
    let found = read::list_connections(&app.platform, org, collection, &page)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    let items: Vec<SourceConnectionListItem> = found
        .items
        .iter()
        .map(SourceConnectionListItem::from)
        .collect();
    Ok(paged(
        &items,
        found.next_cursor.as_deref(),
        path,
        filters,
        page.limit,
        request_id,
    ))
}
