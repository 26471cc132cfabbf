//! `Debug` for request types that carry credentials: a field that may hold a secret shows only
//! whether it is there.

use std::fmt;

/// Shows `Some(<redacted>)` or `None`, never the value.
pub(crate) struct Redacted<'a, T>(pub &'a Option<T>);

impl<T> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}
