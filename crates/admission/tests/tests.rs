//! Integration tests of the admission webhook: real-shaped reviews over TLS on loopback,
//! certificate reload while serving, hostile bodies, and mutation properties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod bodies;
mod envelope;
mod exceptions;
mod one_verdict;
mod pod_security;
mod properties;
mod reviews;
mod tls;
