//! The services' own metrics: generated log messages, log-file write errors, and calls to the
//! external logs API by outcome.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LevelLabel {
    pub(crate) level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ExternalLabels {
    pub(crate) env: String,
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct ServiceMetrics {
    pub(crate) generated: Family<LevelLabel, Counter>,
    pub(crate) write_errors: Counter,
    pub(crate) external: Family<ExternalLabels, Counter>,
}

impl ServiceMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            generated: Family::default(),
            write_errors: Counter::default(),
            external: Family::default(),
        };
        registry.register(
            "ferrostack_generated_logs",
            "Random log messages written by GET /, by level",
            metrics.generated.clone(),
        );
        registry.register(
            "ferrostack_log_write_errors",
            "Log files GET / failed to write",
            metrics.write_errors.clone(),
        );
        registry.register(
            "ferrostack_external_logs_requests",
            "Calls of GET /download_external_logs by environment and outcome",
            metrics.external.clone(),
        );
        metrics
    }
}
