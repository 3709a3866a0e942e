//! logship integration tests: real files, a real S3 API server (moto) and a cuttable TCP proxy
//! on loopback, and a real shipper process that is SIGKILLed.

// Test helpers outside #[test] functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

mod crash;
mod outage;
mod shipper;
mod sink;
mod support;
