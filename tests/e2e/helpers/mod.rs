//! Test support: a fresh stack per test (own table, queue and secret prefix on the emulator),
//! fake upstream APIs on random ports, and the dev gateway in-process.

#![allow(dead_code)]

pub mod app;
pub mod aws;
pub mod github;
pub mod logs;
pub mod sdk;
