//! Integration tests of the health checker over real sockets and processes.

mod probe;
mod support;
