//! `GET /sources`, `GET /sources/{short_name}` in the shape of Airweave's `Source` model.

use super::HandlerResult;
use crate::app::App;
use crate::problem::Problem;
use crate::response::json;
use domain::catalog::{FieldSpec, SourceSpec};
use http::StatusCode;
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Fields<'a> {
    fields: &'a [FieldSpec],
}

/// When this catalog was released: every entry's `created_at` and `modified_at` (the catalog is
/// code, so its entries change only with a release).
const CATALOG_RELEASED: &str = "2026-11-26T00:00:00Z";

/// A stable id per source: the UUID v5 of its short name in the URL namespace of its path.
fn source_id(short_name: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("/sources/{short_name}").as_bytes(),
    )
}

/// A source type, in the shape of Airweave's `Source` model (both SDKs: the TypeScript one also
/// needs `id`, `created_at`, `modified_at` and reads `output_entity_definition_ids`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceView<'a> {
    id: uuid::Uuid,
    created_at: &'static str,
    modified_at: &'static str,
    name: &'a str,
    short_name: &'a str,
    class_name: &'a str,
    description: &'a str,
    auth_methods: Vec<&'static str>,
    oauth_type: Option<&'a str>,
    requires_byoc: bool,
    auth_config_class: Option<&'a str>,
    config_class: Option<&'a str>,
    auth_fields: Fields<'a>,
    config_fields: Fields<'a>,
    supported_auth_providers: &'a [&'static str],
    output_entity_definitions: &'a [&'static str],
    output_entity_definition_ids: &'a [&'static str],
    supports_incremental: bool,
    labels: &'a [&'static str],
    supports_continuous: bool,
    federated_search: bool,
}

impl<'a> From<&'a SourceSpec> for SourceView<'a> {
    fn from(s: &'a SourceSpec) -> Self {
        Self {
            id: source_id(s.short_name),
            created_at: CATALOG_RELEASED,
            modified_at: CATALOG_RELEASED,
            name: s.name,
            short_name: s.short_name,
            class_name: s.class_name,
            description: s.description,
            auth_methods: s.auth_methods.iter().map(|m| m.as_str()).collect(),
            oauth_type: s.oauth.as_ref().map(|o| o.oauth_type()),
            requires_byoc: s.requires_byoc,
            auth_config_class: None,
            config_class: None,
            auth_fields: Fields {
                fields: &s.auth_fields,
            },
            config_fields: Fields {
                fields: &s.config_fields,
            },
            supported_auth_providers: &s.supported_auth_providers,
            output_entity_definitions: &s.entity_types,
            output_entity_definition_ids: &s.entity_types,
            supports_incremental: s.supports_incremental,
            labels: &s.labels,
            supports_continuous: s.supports_continuous,
            federated_search: s.federated_search,
        }
    }
}

#[utoipa::path(get, path = "/sources", tag = "sources",
    responses((status = 200, body = Vec<SourceView>)))]
pub fn list(app: &App, request_id: &str) -> HandlerResult {
    let views: Vec<SourceView> = app
        .platform
        .sources
        .specs()
        .into_iter()
        .map(SourceView::from)
        .collect();
    Ok(json(StatusCode::OK, &views, request_id))
}

#[utoipa::path(get, path = "/sources/{short_name}", tag = "sources",
    params(("short_name" = String, Path, description = "Source type identifier")),
    responses(
        (status = 200, body = SourceView),
        (status = 404, description = "Unknown source", body = Problem, content_type = "application/problem+json"),
    ))]
pub fn get(app: &App, short_name: &str, request_id: &str) -> HandlerResult {
    let spec = app.platform.sources.spec(short_name).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("source '{short_name}' not found"),
            request_id,
        )
    })?;
    Ok(json(StatusCode::OK, &SourceView::from(spec), request_id))
}
