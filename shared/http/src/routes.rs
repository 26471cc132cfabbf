//! Routing. Every response, error or not, is built here: handlers never return `Err` to the
//! runtime (that would become a 502 without a body).

use crate::app::App;
use crate::handlers::{
    auth_providers, changes, collections, connections, health, jobs, oauth, sources, webhooks,
};
use crate::problem::Problem;
use crate::request::header;
use domain::ids::OrganizationId;
use domain::tenancy::ApiKeyHash;
use domain::usecases::tenancy::authenticate;
use http::{header as h, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::SecretString;
use std::time::Instant;
use tracing::{info, info_span, Instrument};

/// Which Lambda function is answering: each serves its own routes; the dev gateway serves all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `POST /source-connections`.
    CreateConnection,
    /// `GET /oauth/callback`.
    OAuthCallback,
    /// Everything else.
    Api,
    /// Every route (the dev gateway).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    OpenApi,
    Sources,
    Source,
    Collections,
    Collection,
    Connections,
    Connection,
    CollectionConnections,
    Run,
    Jobs,
    Job,
    CancelJob,
    Entities,
    Changes,
    Reinitiate,
    OAuthCallback,
    ProviderConnections,
    ProviderConnection,
    Subscriptions,
    Subscription,
    Recover,
    Messages,
    Message,
}

impl Route {
    fn find(segments: &[&str]) -> Option<Self> {
        Some(match segments {
            ["health"] => Self::Health,
            ["openapi.json"] => Self::OpenApi,
            ["sources"] => Self::Sources,
            ["sources", _] => Self::Source,
            ["collections"] => Self::Collections,
            ["collections", _] => Self::Collection,
            ["collections", _, "source-connections"] => Self::CollectionConnections,
            ["source-connections"] => Self::Connections,
            ["source-connections", _] => Self::Connection,
            ["source-connections", _, "run"] => Self::Run,
            ["source-connections", _, "jobs"] => Self::Jobs,
            ["source-connections", _, "jobs", _] => Self::Job,
            ["source-connections", _, "jobs", _, "cancel"] => Self::CancelJob,
            ["source-connections", _, "entities"] => Self::Entities,
            ["source-connections", _, "changes"] => Self::Changes,
            ["source-connections", _, "reinitiate-oauth"] => Self::Reinitiate,
            ["oauth", "callback"] => Self::OAuthCallback,
            ["auth-providers", "connections"] => Self::ProviderConnections,
            ["auth-providers", "connections", _] => Self::ProviderConnection,
            ["webhooks", "subscriptions"] => Self::Subscriptions,
            ["webhooks", "subscriptions", _] => Self::Subscription,
            ["webhooks", "subscriptions", _, "recover"] => Self::Recover,
            ["webhooks", "messages"] => Self::Messages,
            ["webhooks", "messages", _] => Self::Message,
            _ => return None,
        })
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Self::Health
            | Self::OpenApi
            | Self::Sources
            | Self::Source
            | Self::Jobs
            | Self::Job
            | Self::Entities
            | Self::Changes
            | Self::OAuthCallback
            | Self::CollectionConnections
            | Self::ProviderConnection
            | Self::Messages
            | Self::Message => &[Method::GET],
            Self::Run | Self::CancelJob | Self::Reinitiate | Self::Recover => &[Method::POST],
            Self::Collections
            | Self::Connections
            | Self::ProviderConnections
            | Self::Subscriptions => &[Method::GET, Method::POST],
            Self::Collection => &[Method::GET, Method::DELETE],
            Self::Connection | Self::Subscription => &[Method::GET, Method::PATCH, Method::DELETE],
        }
    }

    fn served_by(self, method: &Method, function: Function) -> bool {
        let create = self == Self::Connections && method == Method::POST;
        let callback = self == Self::OAuthCallback;
        match function {
            Function::All => true,
            Function::CreateConnection => create,
            Function::OAuthCallback => callback,
            Function::Api => !create && !callback,
        }
    }
}

/// Answers one request. Logs one line per request with its id, method, path and status.
pub async fn handle(app: &App, function: Function, req: Request) -> Response<Body> {
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let response = dispatch(app, function, req, &request_id)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "handled"
        )
    });
    response
}

async fn dispatch(app: &App, function: Function, req: Request, request_id: &str) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let Some(route) = Route::find(&segments)
        .filter(|r| r.served_by(&method, function) || !r.methods().contains(&method))
    else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("no route for {path}"),
            request_id,
        )
        .into_response();
    };
    if !route.methods().contains(&method) {
        let allow: Vec<&str> = route.methods().iter().map(Method::as_str).collect();
        let mut response = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
            request_id,
        )
        .into_response();
        if let Ok(v) = allow.join(", ").parse() {
            response.headers_mut().insert(h::ALLOW, v);
        }
        return response;
    }
    match route {
        Route::Health => return health::get(request_id),
        Route::OpenApi => return openapi(request_id),
        // No API key: the flow's state is the credential.
        Route::OAuthCallback => return oauth::callback(app, &req, request_id).await,
        _ => {}
    }
    let org = match organization(app, &req).await {
        Ok(org) => org,
        Err(e) => return Problem::from_domain(e, request_id).into_response(),
    };
    let result = match (route, &method) {
        (Route::Sources, _) => sources::list(app, request_id),
        (Route::Source, _) => sources::get(app, segments[1], request_id),
        (Route::Collections, &Method::POST) => {
            collections::create(app, org, &req, request_id).await
        }
        (Route::Collections, _) => collections::list(app, org, &req, request_id).await,
        (Route::Collection, &Method::DELETE) => {
            collections::delete(app, org, segments[1], request_id).await
        }
        (Route::Collection, _) => collections::get(app, org, segments[1], request_id).await,
        (Route::CollectionConnections, _) => {
            connections::list_in_collection(app, org, segments[1], &req, request_id).await
        }
        (Route::Connections, &Method::POST) => {
            connections::create(app, org, &req, request_id).await
        }
        (Route::Connections, _) => connections::list(app, org, &req, request_id).await,
        (Route::Connection, &Method::PATCH) => {
            connections::update(app, org, segments[1], &req, request_id).await
        }
        (Route::Connection, &Method::DELETE) => {
            connections::delete(app, org, segments[1], request_id).await
        }
        (Route::Connection, _) => connections::get(app, org, segments[1], request_id).await,
        (Route::Run, _) => jobs::run(app, org, segments[1], &req, request_id).await,
        (Route::CancelJob, _) => jobs::cancel(app, org, segments[1], segments[3], request_id).await,
        (Route::Jobs, _) => jobs::list(app, org, segments[1], &req, request_id).await,
        (Route::Job, _) => jobs::get(app, org, segments[1], segments[3], request_id).await,
        (Route::Entities, _) => jobs::entities(app, org, segments[1], &req, request_id).await,
        (Route::Changes, _) => changes::changes(app, org, segments[1], &req, request_id).await,
        (Route::Reinitiate, _) => oauth::reinitiate(app, org, segments[1], request_id).await,
        (Route::ProviderConnections, &Method::POST) => {
            auth_providers::create(app, org, &req, request_id).await
        }
        (Route::ProviderConnections, _) => auth_providers::list(app, org, &req, request_id).await,
        (Route::ProviderConnection, _) => {
            auth_providers::get(app, org, segments[2], request_id).await
        }
        (Route::Subscriptions, &Method::POST) => webhooks::create(app, org, &req, request_id).await,
        (Route::Subscriptions, _) => webhooks::list(app, org, request_id).await,
        (Route::Subscription, &Method::PATCH) => {
            webhooks::update(app, org, segments[2], &req, request_id).await
        }
        (Route::Subscription, &Method::DELETE) => {
            webhooks::delete(app, org, segments[2], request_id).await
        }
        (Route::Subscription, _) => webhooks::get(app, org, segments[2], &req, request_id).await,
        (Route::Recover, _) => webhooks::recover(app, org, segments[2], &req, request_id).await,
        (Route::Messages, _) => webhooks::list_messages(app, org, &req, request_id).await,
        (Route::Message, _) => webhooks::get_message(app, org, segments[2], &req, request_id).await,
        (Route::Health | Route::OpenApi | Route::OAuthCallback, _) => {
            unreachable!("answered above")
        }
    };
    result.unwrap_or_else(Problem::into_response)
}

/// `GET /openapi.json`: public, like `/health`.
fn openapi(request_id: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(h::CONTENT_TYPE, "application/json")
        .header("x-request-id", request_id)
        .body(Body::Text(crate::openapi::document().to_owned()))
        .expect("valid response")
}

/// The caller's organization from `x-api-key`, cached briefly per warm function.
async fn organization(app: &App, req: &Request) -> Result<OrganizationId, domain::DomainError> {
    let key = header(req, "x-api-key").map(|k| SecretString::from(k.to_owned()));
    if let Some(key) = &key {
        let hash = ApiKeyHash::of(key);
        if let Some(org) = app.cached_organization(&hash) {
            return Ok(org);
        }
        let org = authenticate(&app.platform, Some(key)).await?;
        app.remember_organization(hash, org);
        return Ok(org);
    }
    authenticate(&app.platform, None).await
}
