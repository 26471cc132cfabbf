//! The fault interceptor lives with the local stack (the soak benchmark uses it too).

pub use local_stack::faults::{Call, Faults, Kind};
