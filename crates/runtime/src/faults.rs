//! Opt-in fault injection in the manner of podinfo, for canary and alert demos: a random
//! delay, random errors, and a switch (`/fault_injection/{enable,disable,status}`) that makes
//! every API route answer 500. Probes, metrics, version and OpenAPI are never affected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use rand::Rng;
use serde::Serialize;

use crate::ApiError;

/// Fault-injection flags, shared by every HTTP role.
#[derive(clap::Args, Clone, Debug)]
pub struct FaultArgs {
    /// Delay every API request by a random time between --random-delay-min and --random-delay-max.
    #[arg(long, env = "FERROSTACK_RANDOM_DELAY")]
    pub random_delay: bool,
    /// Lower bound of the random delay.
    #[arg(long, env = "FERROSTACK_RANDOM_DELAY_MIN", default_value = "0ms", value_parser = crate::parse_duration)]
    pub random_delay_min: Duration,
    /// Upper bound of the random delay.
    #[arg(long, env = "FERROSTACK_RANDOM_DELAY_MAX", default_value = "500ms", value_parser = crate::parse_duration)]
    pub random_delay_max: Duration,
    /// Answer a random share of API requests with a 500, 502 or 503.
    #[arg(long, env = "FERROSTACK_RANDOM_ERROR")]
    pub random_error: bool,
    /// The share of API requests --random-error fails, between 0 and 1.
    #[arg(long, env = "FERROSTACK_RANDOM_ERROR_RATIO", default_value_t = 0.33)]
    pub random_error_ratio: f64,
    /// Serve POST /fault_injection/enable, POST /fault_injection/disable and
    /// GET /fault_injection/status; while enabled, every API route answers 500.
    #[arg(long, env = "FERROSTACK_FAULT_INJECTION")]
    pub fault_injection: bool,
}

/// Why fault-injection flags are invalid.
#[derive(Debug, thiserror::Error)]
pub enum FaultConfigError {
    /// min above max.
    #[error("--random-delay-min ({min:?}) is above --random-delay-max ({max:?})")]
    DelayRange {
        /// The lower bound given.
        min: Duration,
        /// The upper bound given.
        max: Duration,
    },
    /// Ratio outside 0..=1.
    #[error("--random-error-ratio {0} is not between 0 and 1")]
    Ratio(f64),
}

/// Validated fault injection, with the runtime switch.
#[derive(Clone, Debug)]
pub struct Faults {
    delay: Option<(Duration, Duration)>,
    error_ratio: Option<f64>,
    endpoints: bool,
    enabled: Arc<AtomicBool>,
}

// === impl Faults ===

impl Faults {
    /// Validates the flags.
    pub fn new(args: &FaultArgs) -> Result<Self, FaultConfigError> {
        if args.random_delay_min > args.random_delay_max {
            return Err(FaultConfigError::DelayRange {
                min: args.random_delay_min,
                max: args.random_delay_max,
            });
        }
        if !(0.0..=1.0).contains(&args.random_error_ratio) {
            return Err(FaultConfigError::Ratio(args.random_error_ratio));
        }
        Ok(Self {
            delay: args
                .random_delay
                .then_some((args.random_delay_min, args.random_delay_max)),
            error_ratio: args.random_error.then_some(args.random_error_ratio),
            endpoints: args.fault_injection,
            enabled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether any fault can ever be injected (otherwise the middleware is not installed).
    pub fn active(&self) -> bool {
        self.delay.is_some() || self.error_ratio.is_some() || self.endpoints
    }

    /// The switch routes, when `--fault-injection` is on.
    pub fn routes(&self) -> Option<Router> {
        self.endpoints.then(|| {
            Router::new()
                .route("/fault_injection/enable", axum::routing::post(enable))
                .route("/fault_injection/disable", axum::routing::post(disable))
                .route("/fault_injection/status", axum::routing::get(status))
                .with_state(self.clone())
        })
    }
}

#[derive(Serialize)]
struct SwitchState {
    fault_injection: &'static str,
}

fn state_of(faults: &Faults) -> Json<SwitchState> {
    let on = faults.enabled.load(Ordering::SeqCst);
    Json(SwitchState {
        fault_injection: if on { "enabled" } else { "disabled" },
    })
}

async fn enable(State(faults): State<Faults>) -> impl IntoResponse {
    faults.enabled.store(true, Ordering::SeqCst);
    tracing::warn!("fault injection enabled: every API route now answers 500");
    (StatusCode::ACCEPTED, state_of(&faults))
}

async fn disable(State(faults): State<Faults>) -> impl IntoResponse {
    faults.enabled.store(false, Ordering::SeqCst);
    tracing::warn!("fault injection disabled");
    (StatusCode::ACCEPTED, state_of(&faults))
}

async fn status(State(faults): State<Faults>) -> impl IntoResponse {
    state_of(&faults)
}

/// Middleware applied to a role's API routes only.
pub(crate) async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    if faults.enabled.load(Ordering::SeqCst) {
        return ApiError::internal(
            "fault_injected",
            "fault injection is enabled on this instance",
        )
        .into_response();
    }
    // Draw everything before the await: the thread-local RNG is not Send.
    let (delay, fail) = {
        let mut rng = rand::rng();
        let delay = faults.delay.map(|(min, max)| {
            if max > min {
                rng.random_range(min..=max)
            } else {
                min
            }
        });
        let fail = faults
            .error_ratio
            .is_some_and(|ratio| rng.random_bool(ratio));
        let status = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
        ][rng.random_range(0..3)];
        (delay, fail.then_some(status))
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = fail {
        return ApiError::new(status, "random_error", "injected by --random-error").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverted_delay_bounds_are_refused() {
        let args = FaultArgs {
            random_delay_min: Duration::from_secs(2),
            random_delay_max: Duration::from_secs(1),
            ..crate::args::defaults().unwrap()
        };
        assert!(
            Faults::new(&args)
                .unwrap_err()
                .to_string()
                .contains("--random-delay-min")
        );
    }

    #[test]
    fn a_ratio_above_one_is_refused() {
        let args = FaultArgs {
            random_error_ratio: 1.5,
            ..crate::args::defaults().unwrap()
        };
        assert!(
            Faults::new(&args)
                .unwrap_err()
                .to_string()
                .contains("--random-error-ratio")
        );
    }

    #[test]
    fn nothing_is_active_by_default() {
        assert!(
            !Faults::new(&crate::args::defaults().unwrap())
                .unwrap()
                .active()
        );
    }
}
