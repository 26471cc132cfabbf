//! The local stack: the emulator's resources (tables, queue), the dev organization and API key,
//! and a dev gateway that serves every route through the same handler code the Lambda
//! functions run; and the fault interceptor of the tests and the soak benchmark.

pub mod faults;
pub mod gateway;
pub mod stack;
