//! How the stream talks to GitHub: authenticated GETs, `Link` pagination, and what an answer
//! means for the run (a page, a rejected token, a rate limit, a failure).

use super::{is_rate_limit, rate_limit_wait, API_VERSION, REJECTED};
use crate::base_url::BaseUrl;
use crate::upstream::{fetch, Answer, PAGE_BODY_LIMIT};
use chrono::Utc;
use domain::stream::StreamError;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LINK};
use reqwest::StatusCode;

pub(super) const SOURCE_NAME: &str = "GitHub";

/// An authenticated view of one GitHub API root. `Debug` is not derived: it holds the token.
pub(super) struct Api {
    client: reqwest::Client,
    base_url: BaseUrl,
    authorization: HeaderValue,
}

impl Api {
    pub fn new(client: reqwest::Client, base_url: BaseUrl, authorization: HeaderValue) -> Self {
        Self {
            client,
            base_url,
            authorization,
        }
    }

    /// The URL of `path` below the API root, e.g. `repos/o/r/issues`.
    pub fn endpoint(&self, path: &str) -> String {
        self.base_url.endpoint(path)
    }

    /// One GET. `url` is ours or a `Link` GitHub gave, already checked by [`Api::next_link`]:
    /// the token is only ever sent below the configured API root.
    pub async fn get(&self, url: &str) -> Result<Answer, StreamError> {
        if !self.is_below_root(url) {
            return Err(StreamError::Malformed(
                "GitHub pointed to a page outside its API".into(),
            ));
        }
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION);
        fetch(SOURCE_NAME, request, PAGE_BODY_LIMIT).await
    }

    /// The `rel="next"` page of an answer, if it has one below the API root.
    pub fn next_link(&self, headers: &HeaderMap) -> Result<Option<String>, StreamError> {
        match next_link(headers) {
            Some(url) if self.is_below_root(&url) => Ok(Some(url)),
            Some(_) => Err(StreamError::Malformed(
                "GitHub pointed to a next page outside its API".into(),
            )),
            None => Ok(None),
        }
    }

    fn is_below_root(&self, url: &str) -> bool {
        let root = self.base_url.endpoint("");
        url.starts_with(&root)
    }
}

/// The target of `rel="next"` in a `Link` header (RFC 8288), e.g.
/// `<https://api.github.com/repositories/1/issues?page=2>; rel="next", <...>; rel="last"`.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let is_next = params.split(';').any(|param| {
                param.trim().split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
            });
            is_next.then(|| target.to_owned())
        })
}

/// What an answer that is not a success means for the run. `what` names the resource in the
/// message ("the repository octo/hello"); nothing of the answer's body is quoted.
pub(super) fn failure(answer: &Answer, what: &str) -> StreamError {
    let status = answer.status;
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && is_rate_limit(&answer.headers, &answer.body));
    if limited {
        return StreamError::RateLimited {
            wait: rate_limit_wait(&answer.headers, Utc::now()),
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => StreamError::Rejected(REJECTED.into()),
        // GitHub hides what a token may not see behind 403 and 404 alike.
        StatusCode::FORBIDDEN => StreamError::Rejected(format!("token cannot read {what}")),
        s if s.is_redirection() => StreamError::Upstream(format!(
            "GitHub redirected the request for {what} (HTTP {}); was the repository renamed or \
             transferred?",
            s.as_u16()
        )),
        s if s.is_server_error() => {
            StreamError::Upstream(format!("GitHub is unavailable (HTTP {})", s.as_u16()))
        }
        s => StreamError::Upstream(format!("GitHub answered HTTP {} for {what}", s.as_u16())),
    }
}

/// `Ok` for a success, else [`failure`].
pub(super) fn success(answer: &Answer, what: &str) -> Result<(), StreamError> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(failure(answer, what))
    }
}
