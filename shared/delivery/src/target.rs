//! Where a webhook may go: a customer's URL checked against what it resolves to, so that a
//! delivery can connect to exactly the addresses that were checked.

use crate::address::is_public;
use std::net::{IpAddr, SocketAddr};
use url::{Host, Url};

/// What a deployment lets a webhook URL point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Lets a URL use plain http and resolve to any address (loopback, private networks).
    /// For local work only (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`); production leaves it false.
    pub allow_private: bool,
}

/// A URL that passed every rule, with the addresses it resolved to when it was checked. A
/// delivery connects to these addresses and no others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    host: String,
    addrs: Vec<SocketAddr>,
}

impl Target {
    /// The URL as parsed.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL's host as written in it: a name, an IPv4 address, or an IPv6 address in
    /// brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The checked addresses, each with the URL's port (or its scheme's default).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The host to pin to [`addrs`](Self::addrs), when it is a name (an IP host needs no
    /// resolving).
    pub(crate) fn domain(&self) -> Option<&str> {
        match self.url.host() {
            Some(Host::Domain(domain)) => Some(domain),
            _ => None,
        }
    }
}

/// Which rule a webhook URL broke. The message reads after the field's name ("url must use
/// https") and never repeats the URL, so no credentials or query in it reach an answer or a
/// log; a refused address is named, being what the customer needs to fix their DNS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute URL.
    #[error("is not a valid URL")]
    Invalid,
    /// Not https (or, with private targets allowed, not http either).
    #[error("must use https")]
    NotHttps,
    /// A user name or password in the URL: it would be sent along and kept in our records.
    #[error("must not contain credentials")]
    Credentials,
    /// No host to send to.
    #[error("must name a host")]
    NoHost,
    /// The host did not resolve (no such name, or the lookup failed).
    #[error("does not resolve")]
    Unresolved,
    /// The host resolves to, or is, an address that is not public.
    #[error("resolves to a non-public address ({0})")]
    NotPublic(IpAddr),
}

/// Checks a webhook URL and resolves its host, answering the addresses a delivery may connect
/// to. The URL must be https (http only when `policy.allow_private`), carry no user name or
/// password, and name a host; a name is resolved with the URL's port or the scheme's default, a
/// literal IP is taken as it is. Refused when nothing resolves or when any address is not
/// public (unless `policy.allow_private`): a name with one private address among public ones
/// could be steered to it, so one is enough.
pub async fn resolve_target(url: &str, policy: TargetPolicy) -> Result<Target, TargetError> {
    let url = Url::parse(url).map_err(|_| TargetError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => return Err(TargetError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let port = url.port_or_known_default().ok_or(TargetError::Invalid)?;
    let addrs = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(Host::Domain("")) => return Err(TargetError::NoHost),
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(domain)) => resolve(domain, port).await?,
    };
    if !policy.allow_private {
        if let Some(refused) = addrs.iter().find(|addr| !is_public(addr.ip())) {
            return Err(TargetError::NotPublic(refused.ip()));
        }
    }
    let host = url.host_str().ok_or(TargetError::NoHost)?.to_owned();
    Ok(Target { url, host, addrs })
}

async fn resolve(domain: &str, port: u16) -> Result<Vec<SocketAddr>, TargetError> {
    let resolved = tokio::net::lookup_host((domain, port))
        .await
        .map_err(|_| TargetError::Unresolved)?;
    // The resolver answers an address once per socket type; keep its order, without repeats.
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(TargetError::Unresolved);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
    };
    const LOCAL: TargetPolicy = TargetPolicy {
        allow_private: true,
    };

    async fn refusal(url: &str, policy: TargetPolicy) -> TargetError {
        resolve_target(url, policy).await.unwrap_err()
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_private_targets_are_allowed() {
        assert_eq!(
            refusal("http://93.184.215.14/hook", STRICT).await,
            TargetError::NotHttps
        );
        assert_eq!(
            refusal("ftp://93.184.215.14/hook", LOCAL).await,
            TargetError::NotHttps
        );
        assert_eq!(
            refusal("file:///etc/passwd", STRICT).await,
            TargetError::NotHttps
        );
    }

    #[tokio::test]
    async fn loopback_link_local_and_localhost_are_refused() {
        for (url, address) in [
            ("https://127.0.0.1/", "127.0.0.1"),
            ("https://[::1]/", "::1"),
            ("https://169.254.169.254/latest", "169.254.169.254"),
            ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
            ("https://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1"),
            // Other spellings of 127.0.0.1 that URL parsing turns into it.
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
        ] {
            let refused = refusal(url, STRICT).await;
            assert_eq!(
                refused,
                TargetError::NotPublic(address.parse().unwrap()),
                "{url}"
            );
        }
        match refusal("https://localhost/", STRICT).await {
            TargetError::NotPublic(ip) => assert!(ip.is_loopback()),
            other => panic!("localhost answered {other:?}"),
        }
    }

    #[tokio::test]
    async fn credentials_in_the_url_are_refused_and_not_repeated() {
        for url in [
            "https://user:hunter2@93.184.215.14/",
            "https://user@93.184.215.14/",
            "https://:hunter2@93.184.215.14/",
        ] {
            let refused = refusal(url, STRICT).await;
            assert_eq!(refused, TargetError::Credentials, "{url}");
            assert!(!refused.to_string().contains("hunter2"));
        }
    }

    #[tokio::test]
    async fn malformed_urls_are_refused() {
        assert_eq!(refusal("not a url", STRICT).await, TargetError::Invalid);
        assert_eq!(
            refusal("/relative/path", STRICT).await,
            TargetError::Invalid
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_refused() {
        assert_eq!(
            refusal("https://nothing.invalid/", STRICT).await,
            TargetError::Unresolved
        );
    }

    #[tokio::test]
    async fn a_public_literal_address_is_accepted_without_resolving() {
        let target = resolve_target("https://93.184.215.14/hook?x=1", STRICT)
            .await
            .unwrap();
        assert_eq!(target.host(), "93.184.215.14");
        assert_eq!(target.addrs(), ["93.184.215.14:443".parse().unwrap()]);
        assert_eq!(target.domain(), None);
        let target = resolve_target("https://[2606:4700::1]:8443/", STRICT)
            .await
            .unwrap();
        assert_eq!(target.host(), "[2606:4700::1]");
        assert_eq!(target.addrs(), ["[2606:4700::1]:8443".parse().unwrap()]);
    }

    #[tokio::test]
    async fn private_targets_are_allowed_over_http_when_the_policy_says_so() {
        let target = resolve_target("http://127.0.0.1:8080/hook", LOCAL)
            .await
            .unwrap();
        assert_eq!(target.addrs(), ["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(target.url().path(), "/hook");
        let target = resolve_target("http://localhost:9000/", LOCAL)
            .await
            .unwrap();
        assert_eq!(target.domain(), Some("localhost"));
        assert!(target.addrs().iter().all(|addr| addr.port() == 9000));
    }

    #[test]
    fn messages_read_after_the_field_name() {
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(TargetError::NotHttps.to_string(), "must use https");
        assert_eq!(
            TargetError::NotPublic(address).to_string(),
            "resolves to a non-public address (10.0.0.1)"
        );
    }
}
