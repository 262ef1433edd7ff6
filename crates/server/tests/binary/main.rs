//! The `switchyard` binary end to end, as its own process in front of the mock: hot reload
//! under load, graceful exit, logs.

#![expect(
    clippy::expect_used,
    reason = "test setup and assertions fail loudly by design"
)]

mod admin;
mod logs;
mod reload;
mod shutdown;
mod support;
