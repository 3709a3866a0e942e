//! Writes a year of rollups for the benchmark (`bench/health/rollups.sh`): for every target of
//! a targets file, one result a minute for DAYS days up to now, latencies log-normal around a
//! per-target median (2–200 ms), a few failing and degraded hours. Usage:
//! `rollup_gen TARGETS.yaml HISTORY DAYS` writes `HISTORY.rollups` (the history itself stays
//! empty, as after `--history-max-age` dropped the raw results).

use std::error::Error;
use std::path::PathBuf;

use ferrostack_health::rollup::sketch::Sketch;
use ferrostack_health::rollup::store::Store;
use ferrostack_health::rollup::{Counts, Rollups};
use rand::Rng;
use time::{Duration, OffsetDateTime};

/// Distinct hours of latencies per target, reused at random (sampling a year of minutes
/// one by one would only make the generator slower, not the rollups different).
const POOL: usize = 32;
const PER_HOUR: u32 = 60;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, targets, history] = args.as_slice()
        && flag == "--load"
    {
        // Loads the rollups and prints the resident size: what they take in serve.
        let targets = ferrostack_health::load_targets(&PathBuf::from(targets))?;
        let mut rollups = Rollups::new(&targets);
        Store::beside(&PathBuf::from(history)).load(&mut rollups)?;
        let status = std::fs::read_to_string("/proc/self/status")?;
        let rss = status.lines().filter(|l| l.starts_with("Vm"));
        println!("{}", rss.collect::<Vec<_>>().join("; "));
        return Ok(());
    }
    let [targets, history, days] = args.as_slice() else {
        return Err(
            "usage: rollup_gen TARGETS.yaml HISTORY DAYS | --load TARGETS.yaml HISTORY".into(),
        );
    };
    let targets = ferrostack_health::load_targets(&PathBuf::from(targets))?;
    let days: i64 = days.parse()?;
    let mut rollups = Rollups::new(&targets);
    let mut rng = rand::rng();
    let now = OffsetDateTime::now_utc();
    for t in &targets {
        let median = 0.002 * 100f64.powf(rng.random::<f64>());
        let pool: Vec<(Sketch, f64)> = (0..POOL).map(|_| hour(&mut rng, median)).collect();
        for h in (0..days * 24).rev() {
            let (sketch, sum) = &pool[rng.random_range(0..POOL)];
            let failures = u32::from(rng.random_ratio(1, 200)) * rng.random_range(1..4);
            let degraded = u32::from(rng.random_ratio(1, 100));
            let counts = Counts {
                count: PER_HOUR + failures,
                failures,
                degraded,
                latency_sum: *sum,
            };
            rollups.fold_hour(&t.name, now - Duration::hours(h), counts, sketch);
        }
    }
    rollups.pack_closed_days();
    Store::beside(&PathBuf::from(history)).save(&rollups, None)?;
    Ok(())
}

/// An hour of latencies: a sketch and their sum.
fn hour(rng: &mut impl Rng, median: f64) -> (Sketch, f64) {
    let mut sketch = Sketch::default();
    let mut sum = 0.0;
    for _ in 0..PER_HOUR {
        // Box–Muller: a standard normal from two uniforms; σ = 0.3 in log space.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = median * (0.3 * z).exp();
        sketch.add(v);
        sum += v;
    }
    (sketch, sum)
}
