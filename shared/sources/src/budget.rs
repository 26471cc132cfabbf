//! The time one `next_page` may take ([`StreamRequest::page_budget`], set by the worker, whose
//! hand-over margin allows for it and one upstream call more). A page that makes several
//! upstream calls counts from its start and starts no call once the budget is spent, as long as
//! it has handed out something, so every page moves the run on. A page of one call needs none
//! of this: the client's request timeout bounds it.
//!
//! [`StreamRequest::page_budget`]: domain::stream::StreamRequest::page_budget

use std::time::{Duration, Instant};

/// One page's budget, counted from when the page began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageBudget {
    budget: Duration,
    started: Instant,
}

impl PageBudget {
    /// The budget of a page that begins now.
    pub fn start(budget: Duration) -> Self {
        Self {
            budget,
            started: Instant::now(),
        }
    }

    /// Whether the page has used its time: it starts no more upstream calls.
    pub fn spent(&self) -> bool {
        self.started.elapsed() >= self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_once_its_time_has_passed() {
        assert!(PageBudget::start(Duration::ZERO).spent());
        assert!(!PageBudget::start(Duration::from_secs(3600)).spent());
        let short = PageBudget::start(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(25));
        assert!(short.spent());
    }
}
