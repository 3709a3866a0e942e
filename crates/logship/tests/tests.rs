//! logship integration tests: real files, a real S3 API server (moto) and a cuttable TCP proxy
//! on loopback, and a real shipper process that is SIGKILLed.

mod crash;
mod outage;
mod shipper;
mod sink;
mod support;
