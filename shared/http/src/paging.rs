//! `skip`/`limit`/`cursor` query parameters and the `Link: <...>; rel="next"` header.

use crate::problem::Problem;
use domain::page::PageRequest;
use domain::FieldError;
use http::HeaderValue;
use std::collections::HashMap;

/// The paging query parameters, as the OpenAPI document describes them (`page_request` parses).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Items to skip, 0-10000 (after the cursor, when one is given).
    #[param(minimum = 0, maximum = 10000)]
    skip: Option<usize>,
    /// Page size, 1-1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Opaque cursor of the next page, from the previous page's `Link` header.
    #[param(pattern = "^[A-Za-z0-9_-]{0,1024}$")]
    cursor: Option<String>,
}

pub fn page_request(
    query: &HashMap<String, String>,
    request_id: &str,
) -> Result<PageRequest, Problem> {
    let mut errors = Vec::new();
    let mut number = |name: &str, min: usize, max: usize, default: usize| match query.get(name) {
        None => default,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    name,
                    format!("must be an integer between {min} and {max}"),
                ));
                default
            }
        },
    };
    let skip = number("skip", 0, PageRequest::MAX_SKIP, 0);
    let limit = number(
        "limit",
        1,
        PageRequest::MAX_LIMIT,
        PageRequest::DEFAULT_LIMIT,
    );
    let cursor = query.get("cursor").filter(|c| !c.is_empty()).cloned();
    if let Some(c) = &cursor {
        if c.len() > 1024
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
        }
    }
    if errors.is_empty() {
        Ok(PageRequest {
            skip,
            limit,
            cursor,
        })
    } else {
        Err(Problem::invalid(errors, request_id))
    }
}

/// One page as a JSON array, with `Link: <...>; rel="next"` when a next page may follow.
pub fn paged<T: serde::Serialize>(
    items: &[T],
    next_cursor: Option<&str>,
    path: &str,
    filters: &[(&str, &str)],
    limit: usize,
    request_id: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let mut response = crate::response::json(http::StatusCode::OK, &items, request_id);
    if let Some(link) = next_cursor.and_then(|c| next_link(path, filters, limit, c)) {
        response.headers_mut().insert(http::header::LINK, link);
    }
    response
}

/// A relative link to the next page: same path and filters, the new cursor, no skip.
pub fn next_link(
    path: &str,
    filters: &[(&str, &str)],
    limit: usize,
    cursor: &str,
) -> Option<HeaderValue> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters {
        query.append_pair(k, v);
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("cursor", cursor);
    HeaderValue::from_str(&format!("<{path}?{}>; rel=\"next\"", query.finish())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_bounds() {
        let p = page_request(&q(&[]), "r").unwrap();
        assert_eq!((p.skip, p.limit, p.cursor), (0, 100, None));
        assert!(page_request(&q(&[("limit", "1")]), "r").is_ok());
        assert!(page_request(&q(&[("limit", "1000")]), "r").is_ok());
        assert!(page_request(&q(&[("limit", "0")]), "r").is_err());
        assert!(page_request(&q(&[("limit", "1001")]), "r").is_err());
        assert!(page_request(&q(&[("skip", "-1")]), "r").is_err());
        assert!(page_request(&q(&[("skip", "10000")]), "r").is_ok());
        assert!(page_request(&q(&[("skip", "10001")]), "r").is_err());
        assert!(page_request(&q(&[("cursor", "a b")]), "r").is_err());
    }

    #[test]
    fn link_keeps_filters() {
        let link = next_link("/source-connections", &[("collection", "docs")], 10, "abc").unwrap();
        assert_eq!(
            link.to_str().unwrap(),
            "</source-connections?collection=docs&limit=10&cursor=abc>; rel=\"next\""
        );
    }
}
