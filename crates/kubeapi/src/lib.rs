//! Kubernetes API access for the roles that use it (`webhook serve` and `audit` read
//! Namespaces, `healthcheck serve` elects a leader): where the API server is ([`access`]) and
//! leader election through one `coordination.k8s.io/v1` Lease ([`lease`]). No role crate, so
//! roles share it without depending on each other.

pub mod access;
pub mod lease;

pub use access::{ApiAccess, ClientError, client};
