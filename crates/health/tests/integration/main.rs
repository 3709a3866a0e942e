//! Integration tests of the health checker over real sockets and processes.

// Test helpers outside #[test] functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod alertmanager;
mod badge;
mod browser;
mod browser_maint;
mod fixtures;
mod history;
mod leader;
mod maintenance;
mod probe;
mod probe_types;
mod pushed;
mod pushgateway;
mod rollup;
mod run;
mod serve;
mod support;
mod tools;
