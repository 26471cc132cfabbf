//! One module per resource. Each handler parses at the edge, calls a use case, and answers.

pub mod auth_providers;
pub mod changes;
pub mod collections;
pub mod connections;
pub mod health;
pub mod jobs;
pub mod oauth;
pub mod sources;
pub mod webhooks;

use crate::problem::Problem;
use lambda_http::{Body, Response};

/// What a handler returns: a response, or a problem the router turns into problem+json.
pub type HandlerResult = Result<Response<Body>, Problem>;
