//! Test fixtures shared by ferrostack's crates (used only as a dev-dependency).
//!
//! - [`free_port`] / [`free_port_range`]: loopback ports to hand to a server.
//! - [`wait_until`] / [`wait_until_async`] / [`poll_async`]: polling with a deadline.
//! - [`Proc`]: a spawned binary on a free port, waited ready, signalled, its output captured.
//! - [`tool`]: an external tool (moto_server, chromium, ...), skipped locally when missing and
//!   a failure under `CI=true`.
//! - [`upstream::Upstream`]: a scripted upstream HTTP server that records Authorization.
//! - [`faultfs::FaultMount`]: a directory whose disk fails on command (EIO/ENOSPC via FUSE, root).
//! - [`loopfs::LoopFs`]: a real small ext4 filesystem on a loop device (root), for ENOSPC.
//! - [`http1::get_status`]: a blocking HTTP/1.1 GET on std only, for readiness polls.

// A fixture that cannot do its job fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod faultfs;
pub mod http1;
pub mod loopfs;
mod ports;
mod process;
mod tools;
pub mod upstream;
mod wait;

pub use ports::{free_port, free_port_range};
pub use process::{Proc, json_lines};
pub use tools::{tool, tool_any, unavailable};
pub use wait::{poll_async, wait_until, wait_until_async};
