//! The uptime windows read from the rollups (one list: the status API, the page and badges
//! use the same set) and what each reports: counts, uptime, latency percentiles and the
//! error budget left against the target's SLO.

use serde::Serialize;

use super::sketch::Percentiles;
use crate::slo::Slo;

/// A window's length, in whole hours or whole UTC days (today included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The current hour and the hours before it.
    Hours(i64),
    /// Today (UTC) and the days before it.
    Days(i64),
}

/// Every window, shortest first: `24h` from hourly rollups, the rest from daily ones.
pub const WINDOWS: [(&str, Span); 5] = [
    ("24h", Span::Hours(24)),
    ("7d", Span::Days(7)),
    ("30d", Span::Days(30)),
    ("90d", Span::Days(90)),
    ("365d", Span::Days(365)),
];

/// One window of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowStats {
    /// Results in the window.
    pub count: u64,
    /// Failed results (degraded ones are not failures).
    pub failures: u64,
    /// Degraded results: passed after a retry, or before the target's first success.
    pub degraded: u64,
    /// (count − failures) / count; null without results.
    pub uptime: Option<f64>,
    /// Latency percentiles of the results that did not fail (seconds); null without any.
    pub latency: Option<Percentiles>,
    /// Mean latency of the results that did not fail (seconds).
    pub latency_mean: Option<f64>,
    /// Error budget against the target's SLO; absent without an SLO or results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// The error budget of one window: failures the SLO allows and the share still left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Budget {
    /// Failures the SLO allows in this window: (1 − slo) × count.
    pub allowed_failures: f64,
    /// 1 − failures / allowed (1: untouched, 0: spent, negative: overspent).
    pub remaining: f64,
}

// === impl WindowStats ===

impl WindowStats {
    /// Fills in uptime, mean and budget from the counts.
    pub(super) fn finish(mut self, latency_sum: f64, slo: Option<Slo>) -> Self {
        let answered = self.count - self.failures;
        if self.count > 0 {
            self.uptime = Some(answered as f64 / self.count as f64);
        }
        if answered > 0 {
            self.latency_mean = Some(latency_sum / answered as f64);
        }
        if let (Some(slo), true) = (slo, self.count > 0) {
            let allowed = (1.0 - slo.ratio()) * self.count as f64;
            // `allowed` is above 0: the ratio is below 1 and there are results.
            let remaining = 1.0 - self.failures as f64 / allowed;
            self.budget = Some(Budget {
                allowed_failures: allowed,
                remaining,
            });
        }
        self
    }
}
