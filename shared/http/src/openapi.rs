//! The OpenAPI document, generated from the handlers' annotations and the domain's types, and
//! served at `GET /openapi.json`.

use crate::handlers::{
    auth_providers, changes, collections, connections, health, jobs, oauth, sources, webhooks,
};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Source connections API",
        description = "Connect SaaS sources to collections, keep their credentials safe, and sync them. \
            Errors are RFC 9457 problem details (application/problem+json) with a string `detail`.",
    ),
    paths(
        health::get,
        sources::list,
        sources::get,
        collections::create,
        collections::list,
        collections::get,
        collections::delete,
        connections::create,
        connections::list,
        connections::list_in_collection,
        connections::get,
        connections::update,
        connections::delete,
        jobs::run,
        jobs::list,
        jobs::get,
        jobs::cancel,
        jobs::entities,
        changes::changes,
        oauth::reinitiate,
        oauth::callback,
        auth_providers::create,
        auth_providers::list,
        auth_providers::get,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::recover,
        webhooks::list_messages,
        webhooks::get_message,
    ),
    modifiers(&ApiKeyAuth, &BodyLimit),
    security(("api_key" = [])),
)]
struct ApiDoc;

/// Every route but `/health` and `/openapi.json` takes an `x-api-key` header, and answers 401
/// without a valid one.
struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        let unauthorized = problem_response("Missing, unknown or revoked API key");
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/health" || path == "/oauth/callback" {
                continue;
            }
            for operation in operations(item) {
                operation
                    .responses
                    .responses
                    .insert("401".to_owned(), unauthorized.clone().into());
            }
        }
    }
}

/// Every operation that takes a body answers 413 past `request::MAX_BODY`, before reading it,
/// and 415 when its Content-Type is not JSON.
struct BodyLimit;

impl Modify for BodyLimit {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let too_large = problem_response(&format!(
            "The body is larger than {} KiB",
            crate::request::MAX_BODY / 1024
        ));
        let not_json = problem_response("The body is not `application/json`");
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item).filter(|operation| operation.request_body.is_some()) {
                let responses = &mut operation.responses.responses;
                responses.insert("413".to_owned(), too_large.clone().into());
                responses.insert("415".to_owned(), not_json.clone().into());
            }
        }
    }
}

/// The operations of a path.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.put,
    ]
    .into_iter()
    .flatten()
}

/// A response whose body is a `Problem`.
fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::problem::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The document as JSON, built once per process.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

/// The document as checked in at the repository root (`openapi.json`): pretty, with a final
/// newline.
pub fn pretty_document() -> String {
    let value: serde_json::Value =
        serde_json::from_str(document()).expect("the OpenAPI document is JSON");
    let mut text = serde_json::to_string_pretty(&value).expect("JSON serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openapi.json` is what the code generates; `make openapi` rewrites it.
    #[test]
    fn the_checked_in_document_is_what_the_code_generates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
        let generated = pretty_document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("write openapi.json");
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "openapi.json differs from what the code generates: run `make openapi` and commit it"
        );
    }

    #[test]
    fn the_document_lists_every_route_with_its_schemas() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        for path in [
            "/health",
            "/sources",
            "/sources/{short_name}",
            "/collections",
            "/collections/{readable_id}",
            "/source-connections",
            "/source-connections/{id}",
            "/source-connections/{id}/jobs",
            "/source-connections/{id}/jobs/{job_id}",
            "/source-connections/{id}/run",
            "/source-connections/{id}/jobs/{job_id}/cancel",
            "/source-connections/{id}/entities",
            "/source-connections/{id}/changes",
            "/source-connections/{id}/reinitiate-oauth",
            "/oauth/callback",
            "/auth-providers/connections",
            "/auth-providers/connections/{readable_id}",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
        let schemas = &doc["components"]["schemas"];
        for name in [
            "SourceConnection",
            "SourceConnectionListItem",
            "CreateConnectionInput",
            "Problem",
            "SourceView",
            "Collection",
            "Job",
            "EntityRecord",
            "ChangesPage",
            "EntityChange",
            "ProviderConnection",
            "CreateProviderConnectionInput",
        ] {
            assert!(schemas[name].is_object(), "{name}");
        }
        let connection = &schemas["SourceConnection"]["properties"];
        for field in [
            "id",
            "organization_id",
            "auth",
            "schedule",
            "sync",
            "entities",
            "federated_search",
        ] {
            assert!(connection[field].is_object(), "SourceConnection.{field}");
        }
        assert_eq!(
            doc["paths"]["/health"]["get"]["security"],
            serde_json::json!([])
        );
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
        assert!(doc["paths"]["/sources"]["get"]["responses"]["401"].is_object());
        assert!(doc["paths"]["/health"]["get"]["responses"]["401"].is_null());
        for (path, method) in [
            ("/collections", "post"),
            ("/source-connections", "post"),
            ("/source-connections/{id}", "patch"),
            ("/auth-providers/connections", "post"),
        ] {
            assert!(
                doc["paths"][path][method]["responses"]["413"].is_object(),
                "{method} {path} documents its body limit"
            );
        }
        assert!(doc["paths"]["/collections"]["get"]["responses"]["413"].is_null());
        assert!(doc["paths"]["/oauth/callback"]["get"]["responses"]["401"].is_null());
        assert_eq!(
            doc["paths"]["/oauth/callback"]["get"]["security"],
            serde_json::json!([])
        );
        let create = &schemas["CreateConnectionInput"];
        let required: Vec<&str> = create["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(required.contains(&"short_name") && required.contains(&"readable_collection_id"));
    }
}
