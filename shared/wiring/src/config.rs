//! Configuration: environment only, parsed once at cold start. A missing value fails start-up
//! with a message naming it.

use domain::feed::FeedSettings;
use domain::tenancy::RedirectOrigin;
use domain::webhooks::RetrySchedule;
use std::env;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB single table for state (`STATE_TABLE`).
    pub state_table: String,
    /// DynamoDB table for synced entities (`ENTITIES_TABLE`).
    pub entities_table: String,
    /// DynamoDB table of webhook subscriptions and messages (`WEBHOOKS_TABLE`).
    pub webhooks_table: String,
    /// Whether webhooks may go to private and loopback addresses over http
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS`: `true` for local work only; default `false`).
    pub webhook_allow_private_targets: bool,
    /// SQS queue the sync worker consumes (`SYNC_QUEUE_URL`).
    pub sync_queue_url: String,
    /// SQS queue the webhook sender consumes (`WEBHOOK_QUEUE_URL`).
    pub webhook_queue_url: String,
    /// SQS queue of the scheduler's shards (`SCHEDULER_QUEUE_URL`): where a tick hands the due
    /// schedules it cannot claim within its minute. Unset, the rest waits for the next tick.
    pub scheduler_queue_url: Option<String>,
    /// When failed webhook deliveries are tried again (`WEBHOOK_RETRY_SCHEDULE`, comma-separated
    /// seconds, one per attempt; unset: Svix's schedule).
    pub webhook_retry_schedule: RetrySchedule,
    /// Secrets Manager name prefix (`SECRETS_PREFIX`), e.g. `connectors`.
    pub secrets_prefix: String,
    /// Public base URL of the API (`API_BASE_URL`), used for OAuth redirect URIs.
    pub api_base_url: Option<String>,
    /// Where browser flows may return for an organization without its own redirect allowlist
    /// (`DEFAULT_REDIRECT_ORIGINS`, comma-separated origins; empty: nowhere).
    pub default_redirect_origins: Vec<RedirectOrigin>,
    /// Whether tokens imported with `oauth_token` are refreshed with the platform's OAuth app
    /// (`REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP`: `true` or `false`, default `false`).
    pub refresh_imported_tokens_with_platform_app: bool,
    /// The change feed's settle delay (`FEED_SETTLE_SECONDS`, default 5) and how long
    /// deletions' deletion records are kept (`TOMBSTONE_RETENTION_DAYS`, default 30).
    pub feed: FeedSettings,
    /// How long ended jobs are kept, in days (`JOB_RETENTION_DAYS`, 1-3650, default 90).
    pub job_retention_days: u64,
}

impl Config {
    /// `{API_BASE_URL}/oauth/callback`: the exact redirect URI of every browser OAuth flow.
    pub fn oauth_redirect_uri(&self) -> Option<String> {
        self.api_base_url
            .as_deref()
            .map(|base| format!("{}/oauth/callback", base.trim_end_matches('/')))
    }
}

/// Why the configuration could not be read. Never carries a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing or empty environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        Ok(Self {
            state_table: required("STATE_TABLE")?,
            entities_table: required("ENTITIES_TABLE")?,
            webhooks_table: required("WEBHOOKS_TABLE")?,
            webhook_allow_private_targets: flag(&lookup, "WEBHOOK_ALLOW_PRIVATE_TARGETS")?,
            sync_queue_url: required("SYNC_QUEUE_URL")?,
            webhook_queue_url: required("WEBHOOK_QUEUE_URL")?,
            scheduler_queue_url: lookup("SCHEDULER_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            webhook_retry_schedule: match lookup("WEBHOOK_RETRY_SCHEDULE") {
                Some(raw) if !raw.trim().is_empty() => {
                    RetrySchedule::parse(&raw).map_err(|reason| ConfigError::Invalid {
                        name: "WEBHOOK_RETRY_SCHEDULE",
                        reason,
                    })?
                }
                _ => RetrySchedule::default(),
            },
            secrets_prefix: required("SECRETS_PREFIX")?,
            api_base_url: lookup("API_BASE_URL").filter(|v| !v.trim().is_empty()),
            default_redirect_origins: lookup("DEFAULT_REDIRECT_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(RedirectOrigin::parse)
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Invalid {
                    name: "DEFAULT_REDIRECT_ORIGINS",
                    reason,
                })?,
            refresh_imported_tokens_with_platform_app: flag(
                &lookup,
                "REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP",
            )?,
            feed: feed_settings(&lookup)?,
            job_retention_days: job_retention_days(&lookup)?,
        })
    }
}

/// `JOB_RETENTION_DAYS` from the environment (the local stack reads it so too).
pub fn env_job_retention_days() -> Result<u64, ConfigError> {
    job_retention_days(&|name: &str| env::var(name).ok())
}

fn job_retention_days(lookup: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    Ok(whole(lookup, "JOB_RETENTION_DAYS", 1..=3650)?
        .unwrap_or(aws_adapters::DEFAULT_JOB_RETENTION_DAYS))
}

/// The feed's settings from the environment (the local stack reads them so too).
pub fn env_feed_settings() -> Result<FeedSettings, ConfigError> {
    feed_settings(&|name: &str| env::var(name).ok())
}

fn feed_settings(lookup: &impl Fn(&str) -> Option<String>) -> Result<FeedSettings, ConfigError> {
    let defaults = FeedSettings::default();
    let settle = whole(lookup, "FEED_SETTLE_SECONDS", 0..=300)?
        .map_or(defaults.settle, std::time::Duration::from_secs);
    let retention = whole(lookup, "TOMBSTONE_RETENTION_DAYS", 1..=365)?
        .map_or(defaults.deletion_retention, |days| {
            std::time::Duration::from_secs(days * 24 * 3600)
        });
    Ok(FeedSettings {
        settle,
        deletion_retention: retention,
    })
}

/// A whole number within `range`; unset or empty is `None`.
fn whole(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ConfigError::Invalid {
                name,
                reason: format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
        },
    }
}

/// A `true`/`false` environment variable; unset or empty is `false`.
pub fn env_flag(name: &'static str) -> Result<bool, ConfigError> {
    flag(&|name: &str| env::var(name).ok(), name)
}

/// A `true`/`false` variable; unset or empty is `false`.
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ConfigError::Invalid {
            name,
            reason: "must be true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every required variable, with a value.
    const REQUIRED: [(&str, &str); 6] = [
        ("STATE_TABLE", "s"),
        ("ENTITIES_TABLE", "e"),
        ("WEBHOOKS_TABLE", "w"),
        ("SYNC_QUEUE_URL", "q"),
        ("WEBHOOK_QUEUE_URL", "wq"),
        ("SECRETS_PREFIX", "p"),
    ];

    #[test]
    fn default_redirect_origins_are_parsed_once_and_a_bad_one_stops_start_up() {
        let base = REQUIRED;
        let with = |origins: &str| {
            let mut pairs = base.to_vec();
            pairs.push(("DEFAULT_REDIRECT_ORIGINS", origins));
            Config::from_lookup(vars(&pairs))
        };
        let config = with("https://app.example.com, http://localhost:*").unwrap();
        assert_eq!(config.default_redirect_origins.len(), 2);
        assert!(with("").unwrap().default_redirect_origins.is_empty());
        let e = with("https://app.example.com/path").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable DEFAULT_REDIRECT_ORIGINS:"),
            "{e}"
        );
    }
    #[test]
    fn refreshing_imported_tokens_is_off_unless_set_true() {
        let base = REQUIRED;
        let with = |value: Option<&str>| {
            let mut pairs = base.to_vec();
            pairs.extend(value.map(|v| ("REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP", v)));
            Config::from_lookup(vars(&pairs))
        };
        assert!(
            !with(None)
                .unwrap()
                .refresh_imported_tokens_with_platform_app
        );
        assert!(
            !with(Some("false"))
                .unwrap()
                .refresh_imported_tokens_with_platform_app
        );
        assert!(
            with(Some("true"))
                .unwrap()
                .refresh_imported_tokens_with_platform_app
        );
        let e = with(Some("yes")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP:"),
            "{e}"
        );
    }

    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        let all = REQUIRED;
        assert!(Config::from_lookup(vars(&all)).is_ok());
        for skip in 0..all.len() {
            let partial: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, kv)| *kv)
                .collect();
            assert_eq!(
                Config::from_lookup(vars(&partial)).unwrap_err(),
                ConfigError::Missing(all[skip].0)
            );
        }
        let mut blank = all.to_vec();
        blank[0] = ("STATE_TABLE", "  ");
        assert_eq!(
            Config::from_lookup(vars(&blank)).unwrap_err(),
            ConfigError::Missing("STATE_TABLE")
        );
    }

    #[test]
    fn jobs_are_kept_ninety_days_unless_configured() {
        let with = |value: &'static str| {
            let mut all = REQUIRED.to_vec();
            all.push(("JOB_RETENTION_DAYS", value));
            Config::from_lookup(vars(&all))
        };
        assert_eq!(with("").unwrap().job_retention_days, 90);
        assert_eq!(with("7").unwrap().job_retention_days, 7);
        for bad in ["0", "3651", "a week"] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().contains("JOB_RETENTION_DAYS"), "{e}");
        }
    }

    #[test]
    fn the_feed_settings_default_to_five_seconds_and_thirty_days_and_refuse_nonsense() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut all = REQUIRED.to_vec();
            all.extend_from_slice(pairs);
            Config::from_lookup(vars(&all))
        };
        assert_eq!(with(&[]).unwrap().feed, FeedSettings::default());
        let set = with(&[
            ("FEED_SETTLE_SECONDS", "2"),
            ("TOMBSTONE_RETENTION_DAYS", "7"),
        ])
        .unwrap()
        .feed;
        assert_eq!(set.settle, std::time::Duration::from_secs(2));
        assert_eq!(
            set.deletion_retention,
            std::time::Duration::from_secs(7 * 86_400)
        );
        for (name, bad) in [
            ("FEED_SETTLE_SECONDS", "soon"),
            ("FEED_SETTLE_SECONDS", "301"),
            ("TOMBSTONE_RETENTION_DAYS", "0"),
        ] {
            let e = with(&[(name, bad)]).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn the_retry_schedule_is_svixs_unless_the_operator_gives_one() {
        let base = REQUIRED;
        let with = |value: &str| {
            let mut pairs = base.to_vec();
            pairs.push(("WEBHOOK_RETRY_SCHEDULE", value));
            Config::from_lookup(vars(&pairs))
        };
        let default = Config::from_lookup(vars(&base)).unwrap();
        assert_eq!(default.webhook_retry_schedule, RetrySchedule::default());
        assert_eq!(with("").unwrap().webhook_retry_schedule.attempts(), 8);
        assert_eq!(
            with("0,1,1,1").unwrap().webhook_retry_schedule.attempts(),
            4
        );
        let e = with("0,soon").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable WEBHOOK_RETRY_SCHEDULE:"),
            "{e}"
        );
    }
}
