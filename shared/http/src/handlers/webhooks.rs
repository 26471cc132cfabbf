//! `/webhooks/subscriptions` and `/webhooks/messages` (Airweave's webhooks API).

use super::HandlerResult;
use crate::app::App;
use crate::paging::{page_request, paged};
use crate::problem::Problem;
use crate::request::{json_body, query, query_values};
use crate::response::json;
use domain::ids::OrganizationId;
use domain::usecases::webhooks::messages::{self, MessageView};
use domain::usecases::webhooks::recover::{self, RecoverRequest, RecoveryView};
use domain::usecases::webhooks::subscriptions::{self, SubscriptionDetail, SubscriptionView};
use domain::webhooks::{NewSubscription, SubscriptionChange};
use domain::FieldError;
use http::StatusCode;
use lambda_http::Request;

fn problem(request_id: &str) -> impl Fn(domain::DomainError) -> Problem + '_ {
    move |e| Problem::from_domain(e, request_id)
}

/// A `true`/`false` query flag; absent is `false`.
fn flag(req: &Request, name: &str, request_id: &str) -> Result<bool, Problem> {
    match query(req)
        .get(name)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(Problem::invalid(
            vec![FieldError::new(name, "must be true or false")],
            request_id,
        )),
    }
}

#[utoipa::path(post, path = "/webhooks/subscriptions", tag = "webhooks",
    request_body = NewSubscription,
    responses(
        (status = 200, description = "Subscribed", body = SubscriptionView),
        (status = 422, description = "A URL that is not https or leads to a non-public address, no or an unknown event type, a short secret", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, input): (_, NewSubscription) = json_body(req, request_id)?;
    let created = subscriptions::create_subscription(&app.platform, org, input)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &created, request_id))
}

#[utoipa::path(get, path = "/webhooks/subscriptions", tag = "webhooks",
    responses((status = 200, description = "Every subscription, oldest first", body = Vec<SubscriptionView>)))]
pub async fn list(app: &App, org: OrganizationId, request_id: &str) -> HandlerResult {
    let found = subscriptions::list_subscriptions(&app.platform, org)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}

#[utoipa::path(get, path = "/webhooks/subscriptions/{id}", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The subscription id"),
        ("include_secret" = Option<bool>, Query, description = "Include the signing secret"),
    ),
    responses(
        (status = 200, body = SubscriptionDetail),
        (status = 404, description = "Unknown subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "include_secret is not true or false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let include_secret = flag(req, "include_secret", request_id)?;
    let found = subscriptions::get_subscription(&app.platform, org, id, include_secret)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}

#[utoipa::path(patch, path = "/webhooks/subscriptions/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The subscription id")),
    request_body = SubscriptionChange,
    responses(
        (status = 200, description = "The subscription as it now stands", body = SubscriptionView),
        (status = 404, description = "Unknown subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, change): (_, SubscriptionChange) = json_body(req, request_id)?;
    let updated = subscriptions::update_subscription(&app.platform, org, id, change)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &updated, request_id))
}

#[utoipa::path(post, path = "/webhooks/subscriptions/{id}/recover", tag = "webhooks",
    params(("id" = String, Path, description = "The subscription id")),
    request_body = RecoverRequest,
    responses(
        (status = 200, description = "Every delivery of the window that did not succeed is queued again, each from its first attempt", body = RecoveryView),
        (status = 404, description = "Unknown subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `since`, or `until` not after it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn recover(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let (_, window): (_, RecoverRequest) = json_body(req, request_id)?;
    let recovered = recover::recover(&app.platform, org, id, &window)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &recovered, request_id))
}

#[utoipa::path(delete, path = "/webhooks/subscriptions/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "The subscription as it was", body = SubscriptionView),
        (status = 404, description = "Unknown subscription", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(app: &App, org: OrganizationId, id: &str, request_id: &str) -> HandlerResult {
    let deleted = subscriptions::delete_subscription(&app.platform, org, id)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &deleted, request_id))
}

#[utoipa::path(get, path = "/webhooks/messages", tag = "webhooks",
    params(
        ("event_types" = Option<Vec<String>>, Query, description = "Only these event types (repeat the parameter)"),
        crate::paging::PageParams,
    ),
    responses(
        (status = 200, description = "One page, newest first; `Link: <...>; rel=\"next\"` when more follow", body = Vec<MessageView>),
        (status = 422, description = "An unknown event type or bad paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_messages(
    app: &App,
    org: OrganizationId,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let page = page_request(&query(req), request_id)?;
    let event_types = query_values(req, "event_types");
    let found = messages::list_messages(&app.platform, org, &event_types, &page)
        .await
        .map_err(problem(request_id))?;
    let filters: Vec<(&str, &str)> = event_types
        .iter()
        .map(|t| ("event_types", t.as_str()))
        .collect();
    Ok(paged(
        &found.items,
        found.next_cursor.as_deref(),
        "/webhooks/messages",
        &filters,
        page.limit,
        request_id,
    ))
}

#[utoipa::path(get, path = "/webhooks/messages/{id}", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The message id (its webhook-id)"),
        ("include_attempts" = Option<bool>, Query, description = "Include every delivery attempt, newest first"),
    ),
    responses(
        (status = 200, body = MessageView),
        (status = 404, description = "Unknown message", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "include_attempts is not true or false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_message(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let include_attempts = flag(req, "include_attempts", request_id)?;
    let found = messages::get_message(&app.platform, org, id, include_attempts)
        .await
        .map_err(problem(request_id))?;
    Ok(json(StatusCode::OK, &found, request_id))
}
