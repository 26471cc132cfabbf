//! Deliveries against a fake endpoint on loopback: what is sent, what is kept of the answer,
//! and what is never reached.

mod endpoint;
mod logs;
mod receiver;
mod transport;
