//! The HTTP API, shared by the Lambda functions and the dev gateway: routing, tenancy,
//! request parsing at the edge and RFC 9457 problem responses. Handlers take and return
//! `lambda_http` types, so the gateway runs exactly the code the functions run.

pub mod app;
mod handlers;
pub mod openapi;
mod paging;
pub mod problem;
mod request;
mod response;
pub mod routes;

pub use app::App;
pub use routes::{handle, Function};
pub use wiring::{telemetry, Config};
