//! RED metrics of HTTP requests, labelled by route template (never the raw path).

use std::hash::{Hash, Hasher};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::Method;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets in seconds; 3 and 4 bracket the services' simulated 3 s of work.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 3.5, 4.0, 5.0, 10.0,
];

/// The route label: the matched template, shared with the router (an `Arc` clone, not a copy
/// per request); `unmatched` when no route matched.
#[derive(Clone, Debug)]
pub(crate) struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The method label: the standard methods by name, anything else as `OTHER`, so that a
/// client cannot create label values at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Labels of `http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

/// Labels of `http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    method: &'static str,
    route: Route,
}

/// `http_requests_total`, `http_request_duration_seconds`, `http_requests_in_flight`.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<StatusLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
}

// === impl HttpMetrics ===

impl HttpMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            in_flight: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            metrics.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            metrics.in_flight.clone(),
        );
        metrics
    }
}

/// One request being measured: counted in flight until dropped (however the request ends),
/// then recorded by [`Measurement::finish`].
pub(crate) struct Measurement {
    metrics: HttpMetrics,
    labels: RouteLabels,
    start: Instant,
}

impl HttpMetrics {
    /// Starts measuring a request to `route` (the template; `None` when none matched).
    pub(crate) fn start(&self, method: &Method, route: Option<MatchedPath>) -> Measurement {
        self.in_flight.inc();
        Measurement {
            metrics: self.clone(),
            labels: RouteLabels {
                method: method_label(method),
                route: Route(route),
            },
            start: Instant::now(),
        }
    }
}

impl Measurement {
    /// Milliseconds since the request started.
    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Records the answer's status and duration.
    pub(crate) fn finish(self, status: u16) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
        let labels = StatusLabels {
            method: self.labels.method,
            route: self.labels.route.clone(),
            status,
        };
        self.metrics.requests.get_or_create(&labels).inc();
    }
}

impl Drop for Measurement {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}
