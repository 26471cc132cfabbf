//! `GET /source-connections/{id}/changes`: the change feed (DESIGN section 13).

use super::HandlerResult;
use crate::app::App;
use crate::problem::Problem;
use crate::request::query;
use crate::response::json;
use chrono::{DateTime, Utc};
use domain::feed::FeedCursor;
use domain::ids::OrganizationId;
use domain::page::PageRequest;
use domain::usecases::changes::{read_changes, ChangeOp, ChangesPage, ChangesRequest, FeedStart};
use domain::FieldError;
use http::StatusCode;
use lambda_http::Request;

#[utoipa::path(get, path = "/source-connections/{id}/changes", tag = "source-connections",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,512}$", description = "The `next_cursor` of the previous read; without it (and without `modified_after`) the feed starts from the first change"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Most changes answered, 1-1000; default 100. A page also ends before its answer would pass 5 MB"),
        ("modified_after" = Option<String>, Query, format = DateTime, description = "Only changes committed after this RFC 3339 time (not with `cursor`); `added` then means added after it"),
        ("filter" = Option<String>, Query, pattern = "^(added|updated|deleted)$", description = "Only changes whose net op is this: `added`, `updated` or `deleted`"),
        ("type" = Option<String>, Query, min_length = 1, max_length = 255, pattern = "^[^#]*$", description = "Only entities of this type"),
    ),
    responses(
        (status = 200, description = "The net change of each entity changed since the cursor, once, with its latest state, in commit order. Changes become visible once settled (see the README's change feed rules)", body = ChangesPage),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor (or `modified_after`) is older than the deletion records' retention: start over with a full listing and a read without a cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameters, or both `cursor` and `modified_after`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn changes(
    app: &App,
    org: OrganizationId,
    id: &str,
    req: &Request,
    request_id: &str,
) -> HandlerResult {
    let request = changes_request(&query(req)).map_err(|e| Problem::invalid(e, request_id))?;
    let page = read_changes(&app.platform, org, id, &request)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &page, request_id))
}

/// The query parameters, parsed; every offending one named.
fn changes_request(
    params: &std::collections::HashMap<String, String>,
) -> Result<ChangesRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let limit = match params.get("limit") {
        None => PageRequest::DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => n,
            _ => {
                let message = format!(
                    "must be an integer between 1 and {}",
                    PageRequest::MAX_LIMIT
                );
                errors.push(FieldError::new("limit", message));
                PageRequest::DEFAULT_LIMIT
            }
        },
    };
    let cursor = match params.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => FeedCursor::parse(raw).map_err(|e| errors.push(e)).ok(),
    };
    let modified_after = match params.get("modified_after").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                errors.push(FieldError::new(
                    "modified_after",
                    "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
                ))
            })
            .ok(),
    };
    if params.contains_key("cursor") && params.contains_key("modified_after") {
        errors.push(FieldError::new(
            "modified_after",
            "cannot be given with cursor: the cursor already says where to go on",
        ));
    }
    let filter = params
        .get("filter")
        .and_then(|raw| ChangeOp::parse(raw).map_err(|e| errors.push(e)).ok());
    if !errors.is_empty() {
        return Err(errors);
    }
    let start = match (cursor, modified_after) {
        (Some(cursor), _) => FeedStart::Cursor(cursor),
        (None, Some(at)) => FeedStart::ModifiedAfter(at),
        (None, None) => FeedStart::Beginning,
    };
    Ok(ChangesRequest {
        start,
        limit,
        filter,
        entity_type: params.get("type").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<ChangesRequest, Vec<FieldError>> {
        let params: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        changes_request(&params)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<String> {
        parse(pairs)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field.to_string())
            .collect()
    }

    #[test]
    fn defaults_read_from_the_beginning_a_hundred_at_a_time() {
        let request = parse(&[]).unwrap();
        assert_eq!(request.start, FeedStart::Beginning);
        assert_eq!(request.limit, 100);
        assert_eq!(request.filter, None);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        assert_eq!(fields(&[("limit", "0")]), ["limit"]);
        assert_eq!(fields(&[("limit", "1001")]), ["limit"]);
        assert_eq!(fields(&[("cursor", "nope")]), ["cursor"]);
        assert_eq!(
            fields(&[("modified_after", "yesterday")]),
            ["modified_after"]
        );
        assert_eq!(fields(&[("filter", "removed")]), ["filter"]);
        let both = [("cursor", "x"), ("modified_after", "2026-01-01T00:00:00Z")];
        assert!(fields(&both).contains(&"modified_after".to_owned()));
    }

    #[test]
    fn modified_after_starts_at_its_time() {
        let request = parse(&[("modified_after", "2026-01-31T12:00:00+01:00")]).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-31T11:00:00Z").unwrap();
        assert_eq!(
            request.start,
            FeedStart::ModifiedAfter(at.with_timezone(&Utc))
        );
    }
}
