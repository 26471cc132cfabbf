//! The change feed's order (DESIGN section 13): every write of an entity, and every deletion's
//! deletion record, carries a [`FeedPosition`] that orders a connection's changes as they were
//! committed, and the jobs record [`FeedMark`]s that say up to where their writes are done.
//!
//! One job writes a connection at a time (the active-job slot), one invocation runs a job at a
//! time (the lease), and each claim of a job counts up: so a position is the job's time-ordered
//! id, the claim, then the invocation's own clock and a sequence number, with no counter item.
//! A later job, a later claim of the same job, or a later write of the same invocation always
//! sorts after.
//!
//! The index the feed reads is eventually consistent, so the feed exposes only positions that
//! are settled: at most the newest mark recorded at least `settle` ago ([`settled_through`]).

use crate::entity::EntityKey;
use crate::error::FieldError;
use crate::ids::JobId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// The change feed's two times, shared by the worker (which writes) and the API (which reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSettings {
    /// How long the feed's index may lag behind a write (`FEED_SETTLE_SECONDS`, default 5): the
    /// feed shows only what was marked done at least this long ago, and a job records its marks
    /// at least this far apart, so the one before its newest is always settled.
    pub settle: std::time::Duration,
    /// How long a deletion's record is kept (`TOMBSTONE_RETENTION_DAYS`, default 30); an
    /// older cursor answers 410.
    pub deletion_retention: std::time::Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            settle: std::time::Duration::from_secs(5),
            deletion_retention: std::time::Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Where a change stands in its connection's commit order: fixed-width hex, so the text sorts
/// as the position does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedPosition {
    job: u128,
    claim: u16,
    millis: u64,
    seq: u16,
}

/// Characters of a position's text.
const POSITION_LEN: usize = 32 + 4 + 12 + 4;
/// A position's millisecond field holds 48 bits.
const MAX_MILLIS: u64 = (1 << 48) - 1;

impl FeedPosition {
    /// Before every position: where an entity written before the feed existed counts as added.
    pub const ORIGIN: Self = Self {
        job: 0,
        claim: 0,
        millis: 0,
        seq: 0,
    };

    /// Sorts before every position of `job` and after every one of an earlier job.
    pub fn before(job: JobId) -> Self {
        Self {
            job: job.as_uuid().as_u128(),
            claim: 0,
            millis: 0,
            seq: 0,
        }
    }

    /// Sorts after every position of `job` and before every one of a later job.
    pub fn after(job: JobId) -> Self {
        Self {
            job: job.as_uuid().as_u128(),
            claim: u16::MAX,
            millis: MAX_MILLIS,
            seq: u16::MAX,
        }
    }

    /// When the write at this position was made (the writer's clock).
    pub fn written_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis as i64).unwrap_or_default()
    }
}

impl fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:032x}{:04x}{:012x}{:04x}",
            self.job, self.claim, self.millis, self.seq
        )
    }
}

impl FromStr for FeedPosition {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != POSITION_LEN || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(());
        }
        let field = |range: std::ops::Range<usize>| u128::from_str_radix(&s[range], 16);
        Ok(Self {
            job: field(0..32).map_err(|_| ())?,
            claim: field(32..36).map_err(|_| ())? as u16,
            millis: field(36..48).map_err(|_| ())? as u64,
            seq: field(48..52).map_err(|_| ())? as u16,
        })
    }
}

/// Hands out one invocation's positions: increasing, even when its clock stands still or steps
/// back.
#[derive(Debug, Clone)]
pub struct Positions {
    job: u128,
    claim: u16,
    millis: u64,
    seq: u16,
    last: Option<FeedPosition>,
}

impl Positions {
    /// The positions of the `claim`-th claim of `job`.
    pub fn new(job: JobId, claim: u16) -> Self {
        Self {
            job: job.as_uuid().as_u128(),
            claim,
            millis: 0,
            seq: 0,
            last: None,
        }
    }

    /// The next position, stamped with `now`.
    pub fn next(&mut self, now: DateTime<Utc>) -> FeedPosition {
        let now = (now.timestamp_millis().max(0) as u64).min(MAX_MILLIS);
        if self.last.is_none() || now > self.millis {
            self.millis = now.max(self.millis);
            self.seq = 0;
        } else if self.seq == u16::MAX {
            self.millis += 1;
            self.seq = 0;
        } else {
            self.seq += 1;
        }
        let position = FeedPosition {
            job: self.job,
            claim: self.claim,
            millis: self.millis,
            seq: self.seq,
        };
        self.last = Some(position);
        position
    }

    /// The last position handed out.
    pub fn last(&self) -> Option<FeedPosition> {
        self.last
    }
}

/// A job's statement that every write up to `through` was done at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedMark {
    pub through: FeedPosition,
    pub at: DateTime<Utc>,
}

impl fmt::Display for FeedMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.through, self.at.timestamp_millis())
    }
}

impl FromStr for FeedMark {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (through, at) = s.split_once('@').ok_or(())?;
        Ok(Self {
            through: through.parse()?,
            at: DateTime::from_timestamp_millis(at.parse().map_err(|_| ())?).ok_or(())?,
        })
    }
}

/// What the feed needs to know of one of a connection's newest jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMarks {
    pub job: JobId,
    pub created_at: DateTime<Utc>,
    /// When it ended; `None` while it may still write.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its newest mark and the one before (recorded at least `settle` earlier).
    pub marks: Vec<FeedMark>,
}

/// How far the feed may read: every change at or before the position is in the index, and
/// every change after it was committed after `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// `None`: every position (no job can still write one unseen).
    pub through: Option<FeedPosition>,
    pub since: DateTime<Utc>,
}

/// The settled part of the feed, from the connection's newest jobs (newest first; two are
/// enough). A job is created only after the one before it ended, so what came before a job was
/// done when the job was created, and what a job wrote was done when it ended; in between, its
/// marks say. Of all these, the newest that is at least `settle` old counts. `None` when none
/// is (a job created within `settle` of the previous one's end): nothing new is shown yet.
pub fn settled_through(
    jobs: &[JobMarks],
    now: DateTime<Utc>,
    settle: chrono::Duration,
) -> Option<Settled> {
    let horizon = now - settle;
    let Some(newest) = jobs.first() else {
        return Some(Settled {
            through: None,
            since: horizon,
        });
    };
    if newest.ended_at.is_some_and(|at| at <= horizon) {
        return Some(Settled {
            through: None,
            since: horizon,
        });
    }
    let mut candidates = Vec::new();
    for job in jobs {
        candidates.push((FeedPosition::before(job.job), job.created_at));
        candidates.extend(job.marks.iter().map(|m| (m.through, m.at)));
        if let Some(ended) = job.ended_at {
            candidates.push((FeedPosition::after(job.job), ended));
        }
    }
    candidates
        .into_iter()
        .filter(|(_, at)| *at <= horizon)
        .max_by_key(|(position, _)| *position)
        .map(|(through, since)| Settled {
            through: Some(through),
            since,
        })
}

/// Where a reader of the feed stands (its opaque `cursor`): past `after`, and nothing it has
/// not seen was committed before `since`; `seeking` while a `modified_after` read has not yet
/// come to its first change (a read examines at most so many index entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedCursor {
    after: Option<FeedPosition>,
    since: DateTime<Utc>,
    seeking: Option<DateTime<Utc>>,
}

impl FeedCursor {
    const VERSION: &'static str = "c1";

    pub fn new(after: Option<FeedPosition>, since: DateTime<Utc>) -> Self {
        Self {
            after,
            since,
            seeking: None,
        }
    }

    /// The cursor of a `modified_after` read still looking for changes after `at`.
    pub fn seeking(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.seeking = at;
        self
    }

    /// The `modified_after` time still sought, if any.
    pub fn sought(&self) -> Option<DateTime<Utc>> {
        self.seeking
    }

    /// Just after everything `job` wrote, as of its end.
    pub fn after_job(job: JobId, ended_at: DateTime<Utc>) -> Self {
        Self::new(Some(FeedPosition::after(job)), ended_at)
    }

    pub fn after(&self) -> Option<FeedPosition> {
        self.after
    }

    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub fn encode(&self) -> String {
        let after = self.after.map(|p| p.to_string()).unwrap_or_default();
        let mut text = format!(
            "{}.{after}.{}",
            Self::VERSION,
            self.since.timestamp_millis()
        );
        if let Some(at) = self.seeking {
            text.push_str(&format!(".{}", at.timestamp_millis()));
        }
        URL_SAFE_NO_PAD.encode(text)
    }

    /// A cursor this API issued, or a 422 naming `cursor`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("cursor", "is not a cursor this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.split('.');
        let (Some(Self::VERSION), Some(after), Some(since), seeking, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let millis = |text: &str| text.parse().ok().and_then(DateTime::from_timestamp_millis);
        let after = match after {
            "" => None,
            p => Some(p.parse().map_err(|_| invalid())?),
        };
        let since = millis(since).ok_or_else(invalid)?;
        let seeking = match seeking {
            None => None,
            Some(at) => Some(millis(at).ok_or_else(invalid)?),
        };
        Ok(Self {
            after,
            since,
            seeking,
        })
    }
}

/// A deletion, recorded as a deletion record at its position (kept for the retention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub key: EntityKey,
    pub position: FeedPosition,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn positions_sort_by_job_then_claim_then_time_as_text_too() {
        let (old, new) = (JobId::new(), JobId::new());
        let mut first = Positions::new(old, 1);
        let a = first.next(t(10));
        let b = first.next(t(10));
        let c = first.next(t(5)); // the clock stepped back
        let mut second_claim = Positions::new(old, 2);
        let d = second_claim.next(t(1));
        let e = Positions::new(new, 1).next(t(0));
        let ordered = [
            FeedPosition::before(old),
            a,
            b,
            c,
            d,
            FeedPosition::after(old),
            e,
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
            assert!(pair[0].to_string() < pair[1].to_string(), "{pair:?}");
            assert_eq!(pair[1].to_string().parse(), Ok(pair[1]));
        }
        assert_eq!(a.written_at(), t(10));
        assert_eq!(first.last(), Some(c));
        assert!("zz".parse::<FeedPosition>().is_err());
        assert!("g".repeat(POSITION_LEN).parse::<FeedPosition>().is_err());
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let at = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        for after in [None, Some(Positions::new(JobId::new(), 2).next(at))] {
            for seeking in [None, Some(at)] {
                let cursor = FeedCursor::new(after, at).seeking(seeking);
                assert_eq!(FeedCursor::parse(&cursor.encode()), Ok(cursor));
            }
        }
        for forged in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("c1.zz.1"),
            &URL_SAFE_NO_PAD.encode("c2..1"),
            &URL_SAFE_NO_PAD.encode("c1..soon"),
            &URL_SAFE_NO_PAD.encode("c1..1.soon"),
            &URL_SAFE_NO_PAD.encode("c1..1.2.3"),
        ] {
            assert_eq!(
                FeedCursor::parse(forged).unwrap_err().field,
                "cursor",
                "{forged}"
            );
        }
    }

    #[test]
    fn a_mark_round_trips_through_its_text() {
        let mark = FeedMark {
            through: Positions::new(JobId::new(), 3).next(t(7)),
            at: t(9),
        };
        assert_eq!(mark.to_string().parse(), Ok(mark));
        assert!("x@1".parse::<FeedMark>().is_err());
    }

    #[test]
    fn only_marks_older_than_the_settle_delay_count() {
        let settle = Duration::seconds(5);
        let (previous, running) = (JobId::new(), JobId::new());
        let mut positions = Positions::new(running, 1);
        let (early, late) = (positions.next(t(20)), positions.next(t(28)));
        let jobs = |now_marks: Vec<FeedMark>| {
            vec![
                JobMarks {
                    job: running,
                    created_at: t(15),
                    ended_at: None,
                    marks: now_marks,
                },
                JobMarks {
                    job: previous,
                    created_at: t(0),
                    ended_at: Some(t(14)),
                    marks: vec![],
                },
            ]
        };
        let marks = vec![
            FeedMark {
                through: late,
                at: t(29),
            },
            FeedMark {
                through: early,
                at: t(21),
            },
        ];
        let at = |now, marks| settled_through(&jobs(marks), t(now), settle);
        assert_eq!(at(30, marks.clone()).unwrap().through, Some(early));
        assert_eq!(at(30, marks.clone()).unwrap().since, t(21));
        assert_eq!(at(34, marks.clone()).unwrap().through, Some(late));
        // Before any mark: what came before the running job, once that is settled.
        assert_eq!(
            at(20, vec![]).unwrap().through,
            Some(FeedPosition::before(running))
        );
        // The previous job ended too recently: only its own start is settled.
        assert_eq!(
            at(18, vec![]).unwrap().through,
            Some(FeedPosition::before(previous))
        );
        assert_eq!(settled_through(&jobs(vec![])[..1], t(16), settle), None);
        // An ended job, long enough ago: everything.
        let ended = &jobs(vec![])[1..];
        assert_eq!(settled_through(ended, t(19), settle).unwrap().through, None);
        assert_eq!(
            settled_through(ended, t(16), settle).unwrap().through,
            Some(FeedPosition::before(previous))
        );
        assert_eq!(settled_through(&[], t(0), settle).unwrap().through, None);
    }
}
