//! The operator-configured root of an upstream API.

use std::fmt;
use url::{Host, Url};

/// An upstream API root such as `https://api.github.com` or `https://ghe.example.com/api/v3`.
///
/// It comes from operator configuration, never from a user, so plain `http` is allowed, but only
/// on loopback (`localhost`, `127.0.0.0/8`, `::1`): that is how tests reach fake servers, and
/// anything else would send tokens in clear text. No credentials, query or fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// The reason is safe to log: it never repeats the value.
    pub fn parse(s: &str) -> Result<Self, String> {
        let url =
            Url::parse(s.trim()).map_err(|e| format!("must be an absolute http(s) URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(
                    "must use https (plain http is only allowed for localhost, 127.0.0.1 and ::1)"
                        .into(),
                )
            }
            _ => return Err("must be an absolute http(s) URL".into()),
        }
        if url.host().is_none() {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or a fragment".into());
        }
        Ok(Self(url))
    }

    /// The URL of an endpoint below the root, e.g. `endpoint("user")`; keeps a path prefix such
    /// as GitHub Enterprise's `/api/v3`.
    pub fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.0.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        for ok in [
            "https://api.github.com",
            "https://ghe.example.com/api/v3/",
            "http://127.0.0.1:8080",
            "http://127.5.0.1",
            "http://localhost:3000",
            "http://[::1]:9000",
        ] {
            assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.github.com",
            "http://10.0.0.1",
            "ftp://example.com",
            "api.github.com",
            "/user",
            "",
            "https://user:pass@api.github.com",
            "https://api.github.com/?x=1",
            "https://api.github.com/#frag",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_reason_never_repeats_the_value() {
        let err = BaseUrl::parse("https://user:hunter2@api.github.com").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn endpoints_keep_the_path_prefix() {
        let root = BaseUrl::parse("https://api.github.com").unwrap();
        assert_eq!(root.endpoint("user"), "https://api.github.com/user");
        let ghe = BaseUrl::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(ghe.endpoint("/user"), "https://ghe.example.com/api/v3/user");
    }
}
