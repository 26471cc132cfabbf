//! Names and identifiers chosen by users. Each parses once at the edge; past it nothing re-checks.

use serde::{Deserialize, Serialize};
use std::fmt;

fn char_len(s: &str) -> usize {
    s.chars().count()
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Display name of a source connection: 4-42 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ConnectionName(String);

impl ConnectionName {
    pub const MIN: usize = 4;
    pub const MAX: usize = 42;

    pub fn parse(s: &str) -> Result<Self, String> {
        let n = char_len(s);
        if !(Self::MIN..=Self::MAX).contains(&n) {
            return Err(format!(
                "must be {}-{} characters (got {n})",
                Self::MIN,
                Self::MAX
            ));
        }
        if s.trim().is_empty() {
            return Err("must not be blank".into());
        }
        if has_control(s) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// `"{Source Name} Connection"`, cut to the maximum length on a character boundary.
    pub fn default_for(source_name: &str) -> Self {
        let full = format!("{source_name} Connection");
        let cut: String = full.chars().take(Self::MAX).collect();
        Self(cut)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-text description of a connection: at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub const MAX: usize = 255;

    pub fn parse(s: &str) -> Result<Self, String> {
        let n = char_len(s);
        if n > Self::MAX {
            return Err(format!(
                "must be at most {} characters (got {n})",
                Self::MAX
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A source type identifier such as `github` or `google_drive`: `^[a-z][a-z0-9_]{1,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ShortName(String);

impl ShortName {
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, String> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok || s.len() < 2 || s.len() > Self::MAX {
            return Err(format!(
                "must be 2-{} characters of a-z, 0-9 and _, starting with a letter",
                Self::MAX
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The readable id of a collection: `^[a-z0-9]+(-[a-z0-9]+)*$`, 3-64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ReadableId(String);

impl ReadableId {
    pub const MIN: usize = 3;
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, String> {
        let shape_ok = !s.is_empty()
            && s.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        if !shape_ok {
            return Err("must match ^[a-z0-9]+(-[a-z0-9]+)*$".into());
        }
        if !(Self::MIN..=Self::MAX).contains(&s.len()) {
            return Err(format!(
                "must be {}-{} characters (got {})",
                Self::MIN,
                Self::MAX,
                s.len()
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// A readable id derived from a collection name: its words lowercased and joined by `-`,
    /// then a random 6-character suffix so that two collections of one name never collide.
    pub fn generate(name: &CollectionName, suffix: &str) -> Self {
        let mut slug = String::new();
        for word in name
            .as_str()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if !slug.is_empty() {
                slug.push('-');
            }
            slug.push_str(&word.to_ascii_lowercase());
        }
        let room = Self::MAX - suffix.len() - 1;
        let mut slug: String = slug.chars().take(room).collect();
        while slug.ends_with('-') {
            slug.pop();
        }
        let id = if slug.is_empty() {
            format!("collection-{suffix}")
        } else {
            format!("{slug}-{suffix}")
        };
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReadableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Display name of a collection: 4-64 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct CollectionName(String);

impl CollectionName {
    pub const MIN: usize = 4;
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, String> {
        let n = char_len(s);
        if !(Self::MIN..=Self::MAX).contains(&n) {
            return Err(format!(
                "must be {}-{} characters (got {n})",
                Self::MIN,
                Self::MAX
            ));
        }
        if s.trim().is_empty() {
            return Err("must not be blank".into());
        }
        if has_control(s) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the browser returns after an OAuth flow: an absolute http(s) URL without credentials
/// or fragment, at most 2048 characters. The organization's allowlist is checked by the OAuth flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct RedirectUrl(String);

impl RedirectUrl {
    pub const MAX: usize = 2048;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        let url = url::Url::parse(s).map_err(|_| "must be an absolute URL".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.host_str().is_none() {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment".into());
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_name_bounds() {
        assert!(ConnectionName::parse("abc").is_err());
        assert!(ConnectionName::parse("abcd").is_ok());
        assert!(ConnectionName::parse(&"x".repeat(42)).is_ok());
        assert!(ConnectionName::parse(&"x".repeat(43)).is_err());
        assert!(ConnectionName::parse("    ").is_err());
        assert!(ConnectionName::parse("ab\ncd").is_err());
        // characters, not bytes
        assert!(ConnectionName::parse(&"é".repeat(42)).is_ok());
    }

    #[test]
    fn default_name_is_source_name_plus_connection() {
        assert_eq!(
            ConnectionName::default_for("GitHub").as_str(),
            "GitHub Connection"
        );
        let long = ConnectionName::default_for(&"L".repeat(60));
        assert_eq!(long.as_str().chars().count(), ConnectionName::MAX);
    }

    #[test]
    fn description_bounds() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(255)).is_ok());
        assert!(Description::parse(&"d".repeat(256)).is_err());
    }

    #[test]
    fn short_name_shape() {
        assert!(ShortName::parse("github").is_ok());
        assert!(ShortName::parse("google_drive").is_ok());
        assert!(ShortName::parse("GitHub").is_err());
        assert!(ShortName::parse("1abc").is_err());
        assert!(ShortName::parse("a").is_err());
        assert!(ShortName::parse(&"a".repeat(64)).is_ok());
        assert!(ShortName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn readable_id_shape_and_bounds() {
        for ok in ["abc", "my-docs", "a1-b2-c3", &"a".repeat(64)] {
            assert!(ReadableId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(65),
            "-abc",
            "abc-",
            "a--b",
            "ABC",
            "a_b",
            "a b",
            "",
        ] {
            assert!(ReadableId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_readable_id_is_valid() {
        let name = CollectionName::parse("My  Finance Docs!").unwrap();
        let id = ReadableId::generate(&name, "x1y2z3");
        assert_eq!(id.as_str(), "my-finance-docs-x1y2z3");
        assert!(ReadableId::parse(id.as_str()).is_ok());

        let symbols = CollectionName::parse("!!!!").unwrap();
        assert!(ReadableId::parse(ReadableId::generate(&symbols, "abcdef").as_str()).is_ok());

        let long = CollectionName::parse(&"word ".repeat(12)).unwrap();
        assert!(ReadableId::parse(ReadableId::generate(&long, "abcdef").as_str()).is_ok());
    }

    #[test]
    fn redirect_url_shape() {
        assert!(RedirectUrl::parse("https://app.example.com/done?x=1").is_ok());
        assert!(RedirectUrl::parse("http://localhost:8080/cb").is_ok());
        assert!(RedirectUrl::parse("/relative").is_err());
        assert!(RedirectUrl::parse("javascript:alert(1)").is_err());
        assert!(RedirectUrl::parse("https://user:pw@example.com/").is_err());
        assert!(RedirectUrl::parse("https://example.com/#frag").is_err());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(RedirectUrl::parse(&long).is_err());
    }

    #[test]
    fn collection_name_bounds() {
        assert!(CollectionName::parse("abc").is_err());
        assert!(CollectionName::parse("abcd").is_ok());
        assert!(CollectionName::parse(&"c".repeat(64)).is_ok());
        assert!(CollectionName::parse(&"c".repeat(65)).is_err());
    }
}
