//! Prometheus metrics: each role's registry (build info, process and log-event metrics, plus
//! whatever the role registers) and the RED metrics of HTTP requests.

mod http;
mod process;
pub mod push;

pub use http::{HttpMetrics, RouteLabels, StatusLabels};
pub use process::ProcessCollector;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Context;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
    role: &'static str,
}

/// A new registry for the role in `ctx`, holding `ferrostack_build_info{version,role}`, the
/// process metrics and `ferrostack_log_events_total{level}`. Roles register their own
/// metrics into it before serving.
pub fn registry(ctx: &Context) -> Registry {
    let mut registry = Registry::default();
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: crate::VERSION,
            commit: crate::COMMIT,
            role: ctx.role(),
        })
        .set(1);
    registry.register(
        "ferrostack_build_info",
        "Build information of the running role",
        build,
    );
    registry.register(
        "ferrostack_log_events",
        "Log events the role emitted, by level (process-wide events count for every role)",
        ctx.log_events().family(ctx.role()),
    );
    registry.register_collector(Box::new(ProcessCollector));
    if let Some(log_file) = ctx.log_events().log_file_metrics() {
        registry.register_collector(Box::new(SharedCollector(log_file)));
    }
    registry
}

/// A collector shared by the registries of several roles (`up` runs them in one process).
#[derive(Debug)]
struct SharedCollector(std::sync::Arc<dyn prometheus_client::collector::Collector>);

impl prometheus_client::collector::Collector for SharedCollector {
    fn encode(
        &self,
        encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
}

/// Renders a registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}
