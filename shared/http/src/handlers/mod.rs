//! One module per resource. Each handler parses at the edge, calls a use case, and answers.

pub mod auth_providers;
pub mod collections;
pub mod connections;
pub mod health;
pub mod jobs;
pub mod oauth;
pub mod sources;

use crate::problem::Problem;
use lambda_http::{Body, Response};

pub type Answer = Result<Response<Body>, Problem>;
