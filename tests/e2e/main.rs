//! End-to-end tests: the HTTP API served by the dev gateway in-process, the AWS adapters against
//! the emulator (moto server), and fake upstream APIs on 127.0.0.1.

mod helpers;

mod adapters;
mod airweave_cli;
mod airweave_sdk;
mod airweave_ts_sdk;
mod auth_provider_clients;
mod auth_providers;
mod aws_calls;
mod change_feed;
mod collections;
mod create_connection;
mod dynamodb_streams;
mod edges;
mod emulator;
mod events;
mod fault_matrix;
mod faults;
mod flow_adapters;
mod fuzz;
mod idempotency;
mod isolation;
mod manage;
mod oauth_flow;
mod oauth_tokens;
mod read_connections;
mod release_profile;
mod runs;
mod schedule_adapters;
mod scheduler;
mod scheduler_scale;
mod secret_hygiene;
mod secret_races;
mod source_github;
mod source_google_drive;
mod source_linear;
mod source_notion;
mod source_slack;
mod sources_catalog;
mod sync;
mod sync_adapters;
mod tenancy;
mod webhook_delivery;
mod webhook_fault_matrix;
mod webhooks;
