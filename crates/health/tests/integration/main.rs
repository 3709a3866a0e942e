//! Integration tests of the health checker over real sockets and processes.

mod history;
mod probe;
mod run;
mod serve;
mod support;
