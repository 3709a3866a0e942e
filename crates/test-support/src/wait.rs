//! Polling with a deadline: until a condition holds, or until a probe yields a value; a
//! timeout fails the test naming what it waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const PAUSE: Duration = Duration::from_millis(25);

/// Polls `cond` until it holds; panics after `timeout` naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(PAUSE);
    }
}

/// [`wait_until`] without blocking the async runtime.
pub async fn wait_until_async(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(PAUSE).await;
    }
}

/// Runs `probe` every `pause` until it yields a value; panics after `timeout` naming `what`.
pub async fn poll_async<T, F, Fut>(
    what: &str,
    timeout: Duration,
    pause: Duration,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "timed out after 50ms waiting for never")]
    fn a_timeout_names_what_it_waited_for() {
        wait_until("never", Duration::from_millis(50), || false);
    }

    #[tokio::test]
    async fn poll_returns_the_first_value() {
        let mut n = 0;
        let got = poll_async("three", Duration::from_secs(5), Duration::ZERO, || {
            n += 1;
            let v = (n == 3).then_some(n);
            async move { v }
        })
        .await;
        assert_eq!(got, 3);
    }
}
