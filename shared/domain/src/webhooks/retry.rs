//! When a failed delivery is tried again: Svix's schedule, or the operator's.

use std::time::Duration;

/// The delay before each attempt of a message to an endpoint: the first is at once, the last
/// failure is final. Svix's schedule by default: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
/// 10 h (eight attempts over about 27.6 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(
            [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// Most attempts a schedule may give.
    pub const MAX_ATTEMPTS: usize = 20;

    /// `WEBHOOK_RETRY_SCHEDULE`: comma-separated seconds, one per attempt, e.g. `0,1,1,1`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{:?} is not a number of seconds", part.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > Self::MAX_ATTEMPTS {
            return Err(format!(
                "must give 1 to {} attempts, comma-separated",
                Self::MAX_ATTEMPTS
            ));
        }
        Ok(Self(delays))
    }

    pub fn attempts(&self) -> u32 {
        self.0.len() as u32
    }

    /// The wait before attempt `attempt` (1 is the first); `None` past the last.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.0.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svix_schedule_by_default_and_the_operators_when_given() {
        let default = RetrySchedule::default();
        assert_eq!(default.attempts(), 8);
        assert_eq!(default.delay_before(1), Some(Duration::ZERO));
        assert_eq!(default.delay_before(2), Some(Duration::from_secs(5)));
        assert_eq!(default.delay_before(8), Some(Duration::from_secs(36_000)));
        assert_eq!(default.delay_before(9), None);
        assert_eq!(default.delay_before(0), None);

        let quick = RetrySchedule::parse("0, 1,1,1").unwrap();
        assert_eq!(quick.attempts(), 4);
        assert_eq!(quick.delay_before(4), Some(Duration::from_secs(1)));
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("0,-1").is_err());
        assert!(RetrySchedule::parse("0,soon").is_err());
    }
}
