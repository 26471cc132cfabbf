//! Sync schedules: a 5-field UTC cron expression and its next run.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

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
    fn next_run_is_strictly_after() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
        let cron = CronSchedule::parse("0 * * * *").unwrap();
        assert_eq!(
            cron.next_after(now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap()
        );
    }
}
