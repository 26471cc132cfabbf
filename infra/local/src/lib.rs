//! The local stack: the emulator's resources (tables, queue), the dev organization and API key,
//! and a dev gateway that serves every route through the same handler code the Lambda
//! functions run.

pub mod gateway;
pub mod stack;
