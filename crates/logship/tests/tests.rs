//! logship integration tests: real files, a real S3 API server (moto), the Azure Blob emulator
//! (Azurite) and a cuttable TCP proxy on loopback, and real shipper processes, one SIGKILLed.

// Test helpers outside #[test] functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backlog;
mod crash;
mod credentials;
mod disk;
#[cfg(feature = "failpoints")]
mod disk_faults;
mod emulators;
#[cfg(feature = "failpoints")]
mod faults;
mod fsck;
#[cfg(feature = "failpoints")]
mod fsck_faults;
#[cfg(feature = "failpoints")]
mod full_disk;
mod manifests;
mod outage;
mod s3_options;
#[cfg(feature = "failpoints")]
mod ship_proc;
mod shipper;
mod sink;
mod source;
mod support;
mod verify;
