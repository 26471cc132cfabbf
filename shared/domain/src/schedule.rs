//! Sync schedules: a 5-field UTC cron expression and its next run.

use crate::catalog::SourceSpec;
use crate::error::FieldError;
use crate::ids::ConnectionId;
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::time::Duration;

/// The scheduler's index (and the sweep's) is spread over this many buckets, so that no index
/// partition takes more than a 64th of the claims' writes (at 1,000 write units a second per
/// partition, 64,000 claims a second) and a minute's claims split into shards of whole buckets.
/// Raising it is safe: every bucket below it is still read, and a claim moves its connection
/// to its new bucket.
pub const BUCKETS: u8 = 64;

/// The bucket of a connection: stable, derived from its id.
pub fn bucket_of(id: ConnectionId) -> u8 {
    (id.as_uuid().as_u128() % u128::from(BUCKETS)) as u8
}

/// A part of a minute's due schedules, handed to another invocation when one cannot claim them
/// all in time: the buckets `from..until`, the first from `position` (where an earlier
/// invocation stopped in it) when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleShard {
    pub from: u8,
    pub until: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl ScheduleShard {
    /// Every bucket, from the start: what the minute's first invocation takes on.
    pub fn all() -> Self {
        Self {
            from: 0,
            until: BUCKETS,
            position: None,
        }
    }

    /// The buckets `from..until` split into shards of at most `size` buckets.
    pub fn split(from: u8, until: u8, size: u8) -> Vec<Self> {
        let size = size.max(1);
        (from..until)
            .step_by(usize::from(size))
            .map(|start| Self {
                from: start,
                until: start.saturating_add(size).min(until),
                position: None,
            })
            .collect()
    }
}

/// The shortest schedule interval of a source without incremental sync (every run is full).
pub const MIN_FULL_INTERVAL: Duration = Duration::from_secs(3600);
/// The shortest schedule interval of a source with incremental sync.
pub const MIN_INCREMENTAL_INTERVAL: Duration = Duration::from_secs(300);
/// How far ahead the interval check follows a schedule: a year or this many runs.
const INTERVAL_CHECK_RUNS: usize = 20_000;

/// A 5-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl CronSchedule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "must be a 5-field cron expression (minute hour day month weekday), got {} fields",
                fields.len()
            ));
        }
        let text = fields.join(" ");
        let cron = croner::Cron::from_str(&text).map_err(|e| format!("invalid cron: {e}"))?;
        // A pattern that can never fire (31 February) is as useless as a malformed one.
        let probe = Utc::now();
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err("cron expression never fires".into());
        }
        Ok(Self { text, cron })
    }

    /// Daily at the given instant's hour and minute, UTC.
    pub fn daily_at(at: DateTime<Utc>) -> Self {
        Self::parse(&format!("{} {} * * *", at.minute(), at.hour()))
            .expect("a daily pattern is always valid")
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Cron fires on whole minutes; croner carries the sub-second part of `after` along.
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .and_then(|next| next.with_nanosecond(0))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether any two consecutive runs, from `from` over the next year (or the next
    /// 20,000 runs), come closer than `min`. Answers the first such gap.
    pub fn gap_shorter_than(&self, min: Duration, from: DateTime<Utc>) -> Option<Duration> {
        let min = chrono::Duration::from_std(min).ok()?;
        let horizon = from + chrono::Duration::days(366);
        let mut previous = self.next_after(from)?;
        for _ in 0..INTERVAL_CHECK_RUNS {
            let next = self.next_after(previous)?;
            if next - previous < min {
                return (next - previous).to_std().ok();
            }
            if next > horizon {
                return None;
            }
            previous = next;
        }
        None
    }
}

/// The schedule's runs must be far enough apart for the source: 422 on `schedule.cron` with
/// the reason otherwise.
pub fn check_interval(
    spec: &SourceSpec,
    schedule: &ScheduleDetails,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    let Some(text) = schedule.cron.as_deref() else {
        return Ok(());
    };
    let Ok(cron) = CronSchedule::parse(text) else {
        return Ok(());
    };
    let (min, kind) = if spec.supports_incremental {
        (MIN_INCREMENTAL_INTERVAL, "with incremental sync")
    } else {
        (
            MIN_FULL_INTERVAL,
            "without incremental sync (every run is a full sync)",
        )
    };
    match cron.gap_shorter_than(min, now) {
        None => Ok(()),
        Some(gap) => Err(FieldError::new(
            "schedule.cron",
            format!(
                "runs {} apart; {} is a source {kind}: at least {} between runs",
                describe(gap),
                spec.short_name,
                describe(min)
            ),
        )),
    }
}

/// How a duration reads in a message: "5 minutes", "1 hour".
pub fn describe(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let unit = |n: u64, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    match (minutes / 60, minutes % 60) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

/// The schedule part of a connection, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleDetails {
    pub cron: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub continuous: bool,
    pub cursor_field: Option<String>,
}

impl ScheduleDetails {
    /// `schedule` omitted or `null`: daily at the creation hour:minute UTC. `{"cron": null}`: none.
    pub fn parse(schedule: Option<&Value>, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let fields = match schedule {
            None | Some(Value::Null) => {
                return Ok(ScheduleDetails::from_cron(
                    &CronSchedule::daily_at(now),
                    now,
                ))
            }
            Some(Value::Object(fields)) => fields,
            Some(_) => return Err(vec![FieldError::new("schedule", "must be an object")]),
        };
        let mut errors = Vec::new();
        for key in fields.keys() {
            if !["cron", "continuous", "cursor_field"].contains(&key.as_str()) {
                errors.push(FieldError::new(format!("schedule.{key}"), "unknown field"));
            }
        }
        let mut details = match fields.get("cron") {
            None | Some(Value::Null) => ScheduleDetails::none(),
            Some(Value::String(s)) => match CronSchedule::parse(s) {
                Ok(cron) => ScheduleDetails::from_cron(&cron, now),
                Err(m) => {
                    errors.push(FieldError::new("schedule.cron", m));
                    ScheduleDetails::none()
                }
            },
            Some(_) => {
                errors.push(FieldError::new("schedule.cron", "must be a string or null"));
                ScheduleDetails::none()
            }
        };
        match fields.get("continuous") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => details.continuous = *b,
            Some(_) => errors.push(FieldError::new(
                "schedule.continuous",
                "must be true or false",
            )),
        }
        match fields.get("cursor_field") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => {
                details.cursor_field = Some(s.clone())
            }
            Some(_) => errors.push(FieldError::new(
                "schedule.cursor_field",
                "must be a non-empty string of at most 255 characters",
            )),
        }
        if errors.is_empty() {
            Ok(details)
        } else {
            Err(errors)
        }
    }

    pub fn none() -> Self {
        Self {
            cron: None,
            next_run: None,
            continuous: false,
            cursor_field: None,
        }
    }

    pub fn from_cron(cron: &CronSchedule, now: DateTime<Utc>) -> Self {
        Self {
            cron: Some(cron.as_str().to_owned()),
            next_run: cron.next_after(now),
            continuous: false,
            cursor_field: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn accepts_five_fields_only() {
        assert!(CronSchedule::parse("0 * * * *").is_ok());
        assert!(CronSchedule::parse("*/15 2-4 1,15 * MON-FRI").is_ok());
        assert!(CronSchedule::parse("0 * * *").is_err());
        assert!(CronSchedule::parse("0 0 * * * *").is_err());
        assert!(CronSchedule::parse("61 * * * *").is_err());
        assert!(CronSchedule::parse("0 24 * * *").is_err());
        assert!(CronSchedule::parse("hello world how are you").is_err());
        assert!(CronSchedule::parse("").is_err());
    }

    #[test]
    fn daily_default_runs_next_day_at_creation_time() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 7, 31).unwrap();
        let cron = CronSchedule::daily_at(now);
        assert_eq!(cron.as_str(), "7 14 * * *");
        let next = cron.next_after(now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 26, 14, 7, 0).unwrap());
    }

    #[test]
    fn next_run_is_on_the_whole_minute() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 58, 47).unwrap()
            + chrono::Duration::microseconds(893_729);
        let next = CronSchedule::daily_at(now).next_after(now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 26, 14, 58, 0).unwrap());
    }

    #[test]
    fn finds_the_shortest_gap_between_runs() {
        let from = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
        let hour = Duration::from_secs(3600);
        let gap = |p: &str, min| CronSchedule::parse(p).unwrap().gap_shorter_than(min, from);
        assert_eq!(gap("*/5 * * * *", hour), Some(Duration::from_secs(300)));
        assert_eq!(gap("0 * * * *", hour), None);
        assert_eq!(gap("*/5 * * * *", MIN_INCREMENTAL_INTERVAL), None);
        assert_eq!(
            gap("*/4 * * * *", MIN_INCREMENTAL_INTERVAL),
            Some(Duration::from_secs(240))
        );
        // Two runs 30 minutes apart once a day, however rarely the day comes.
        assert_eq!(gap("0,30 9 * * 1", hour), Some(Duration::from_secs(1800)));
        // Across midnight: 23:30 and 00:00 the next day.
        assert_eq!(gap("30 23 * * *", hour), None);
        assert_eq!(
            gap("0,30 0,23 * * *", hour),
            Some(Duration::from_secs(1800))
        );
        // The last day of a month and the first of the next: 1 hour apart only then.
        assert_eq!(gap("30 23 31 * *", hour), None);
        assert_eq!(
            gap("0 0,23 1,31 * *", Duration::from_secs(7200)),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(describe(MIN_INCREMENTAL_INTERVAL), "5 minutes");
        assert_eq!(describe(MIN_FULL_INTERVAL), "1 hour");
        assert_eq!(describe(Duration::from_secs(5400)), "1 hour 30 minutes");
    }

    #[test]
    fn buckets_spread_and_stay_in_range() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3000 {
            let b = bucket_of(ConnectionId::new());
            assert!(b < BUCKETS);
            seen.insert(b);
        }
        assert_eq!(seen.len(), usize::from(BUCKETS));
    }

    #[test]
    fn shards_cover_every_bucket_once() {
        let shards = ScheduleShard::split(3, BUCKETS, 8);
        let covered: Vec<u8> = shards.iter().flat_map(|s| s.from..s.until).collect();
        assert_eq!(covered, (3..BUCKETS).collect::<Vec<_>>());
        assert!(shards.iter().all(|s| s.until - s.from <= 8));
        assert!(ScheduleShard::split(5, 5, 8).is_empty());
        let json = serde_json::to_value(ScheduleShard::all()).unwrap();
        assert_eq!(json, serde_json::json!({"from": 0, "until": BUCKETS}));
    }

    #[test]
    fn next_run_is_strictly_after() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
        let cron = CronSchedule::parse("0 * * * *").unwrap();
        assert_eq!(
            cron.next_after(now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap()
        );
    }
}
