//! Pushing a run's metrics to a Prometheus Pushgateway, for the runs that end before any
//! scrape could reach them (the CronJobs: `healthcheck run`, `webhook audit`). A POST replaces
//! only the metric names pushed, so a gauge the run did not set keeps its last value.

use std::time::Duration;

use prometheus_client::registry::Registry;

/// A push that did not succeed, naming the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("pushgateway {endpoint}: {message}")]
pub struct PushError {
    /// `<url>/metrics/job/<job>`.
    pub endpoint: String,
    /// What went wrong (the whole error chain, or the status and the gateway's answer).
    pub message: String,
}

/// The registry as Prometheus text.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut text, registry);
    text
}

/// POSTs `body` (Prometheus text) to the Pushgateway at `url` under `job`.
pub async fn push(url: &str, job: &str, body: String) -> Result<(), PushError> {
    let endpoint = format!("{}/metrics/job/{job}", url.trim_end_matches('/'));
    let fail = |message: String| PushError {
        endpoint: endpoint.clone(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(crate::error::chain(&e)))?;
    let response = client
        .post(&endpoint)
        .header("content-type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .map_err(|e| fail(crate::error::chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(fail(format!("{status}: {}", text.trim())))
}
