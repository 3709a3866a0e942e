//! A small mergeable latency sketch: a fixed log-bucketed histogram (the DDSketch mapping with
//! fixed buckets), so any value it returns for a quantile is within [`RELATIVE_ERROR`] of a
//! value of that rank. Sparse while open ([`Sketch`]), packed into a few bytes per bucket
//! once its hour or day is over ([`Packed`]); counts add, so hours merge into days and days
//! into windows exactly.

use serde::{Deserialize, Serialize};

/// Relative error of every quantile estimate (2%).
pub const RELATIVE_ERROR: f64 = 0.02;
/// Bucket `i` holds values in `(MIN · γ^(i-1), MIN · γ^i]`, γ = (1 + α) / (1 − α).
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);
/// Values at or under 1 µs share bucket 0; 1e6 s is bucket ~690, well inside `u16`.
const MIN_SECONDS: f64 = 1e-6;

/// An open sketch: `(bucket, count)` sorted by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    bins: Vec<(u16, u32)>,
}

/// A closed sketch, packed as postcard varints of `(bucket delta, count)`: about 2–3 bytes a
/// bucket instead of 8.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed(Box<[u8]>);

/// Counts per bucket over the whole range, to merge many sketches at once.
#[derive(Debug, Clone)]
pub struct Dense {
    counts: Vec<u64>,
    total: u64,
}

/// p50, p95 and p99 in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

// === impl Sketch ===

impl Sketch {
    /// Counts one value (seconds; negative or NaN counts as 0).
    pub fn add(&mut self, seconds: f64) {
        let b = bucket(seconds);
        match self.bins.binary_search_by_key(&b, |(k, _)| *k) {
            Ok(i) => self.bins[i].1 = self.bins[i].1.saturating_add(1),
            Err(i) => self.bins.insert(i, (b, 1)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for &(b, n) in &other.bins {
            match self.bins.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => self.bins[i].1 = self.bins[i].1.saturating_add(n),
                Err(i) => self.bins.insert(i, (b, n)),
            }
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.bins.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// The packed form.
    pub fn pack(&self) -> Packed {
        let mut prev = 0u16;
        let deltas: Vec<(u16, u32)> = self
            .bins
            .iter()
            .map(|&(b, n)| {
                let d = b - prev;
                prev = b;
                (d, n)
            })
            .collect();
        // Serialising plain integers into a Vec cannot fail.
        Packed(
            postcard::to_allocvec(&deltas)
                .unwrap_or_default()
                .into_boxed_slice(),
        )
    }
}

// === impl Packed ===

impl Packed {
    /// The open form (a corrupt packing, which only a damaged file could hold, is empty).
    pub fn unpack(&self) -> Sketch {
        let deltas: Vec<(u16, u32)> = postcard::from_bytes(&self.0).unwrap_or_default();
        let mut at = 0u16;
        let bins = deltas
            .into_iter()
            .map(|(d, n)| {
                at = at.saturating_add(d);
                (at, n)
            })
            .collect();
        Sketch { bins }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.0.len() <= 1
    }
}

// === impl Dense ===

impl Default for Dense {
    fn default() -> Self {
        Self {
            counts: vec![0; usize::from(bucket(f64::MAX)) + 1],
            total: 0,
        }
    }
}

impl Dense {
    /// Adds every count of `s`.
    pub fn add(&mut self, s: &Sketch) {
        for &(b, n) in &s.bins {
            self.counts[usize::from(b)] += u64::from(n);
            self.total += u64::from(n);
        }
    }

    /// Adds every count of a packed sketch without building its open form.
    pub fn add_packed(&mut self, p: &Packed) {
        let Ok(deltas) = postcard::from_bytes::<Vec<(u16, u32)>>(&p.0) else {
            return;
        };
        let mut at = 0usize;
        for (d, n) in deltas {
            at += usize::from(d);
            if let Some(c) = self.counts.get_mut(at) {
                *c += u64::from(n);
                self.total += u64::from(n);
            }
        }
    }

    /// The value of rank `q · (n − 1)` (None when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.total - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Some(value(i));
            }
        }
        None
    }

    /// p50/p95/p99 (None when empty).
    pub fn percentiles(&self) -> Option<Percentiles> {
        Some(Percentiles {
            p50: self.quantile(0.50)?,
            p95: self.quantile(0.95)?,
            p99: self.quantile(0.99)?,
        })
    }
}

fn bucket(seconds: f64) -> u16 {
    if seconds.is_nan() || seconds <= MIN_SECONDS {
        return 0;
    }
    let i = ((seconds / MIN_SECONDS).ln() / GAMMA.ln()).ceil();
    // Far beyond any timeout; clamping keeps the dense form small.
    i.min(1000.0) as u16
}

/// The bucket's representative: within `RELATIVE_ERROR` of every value in it.
fn value(i: usize) -> f64 {
    if i == 0 {
        return MIN_SECONDS;
    }
    MIN_SECONDS * GAMMA.powi(i as i32) * 2.0 / (GAMMA + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every quantile of a wide, skewed sample is within the stated relative error of the
    /// exact value of that rank.
    #[test]
    fn quantiles_are_within_the_relative_error() {
        let mut values: Vec<f64> = (0..10_000u32)
            .map(|i| 0.0005 * 1.0007f64.powi(i as i32))
            .collect();
        let mut sketch = Sketch::default();
        for v in &values {
            sketch.add(*v);
        }
        values.sort_by(f64::total_cmp);
        let mut dense = Dense::default();
        dense.add_packed(&sketch.pack());
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = values[(q * (values.len() - 1) as f64).floor() as usize];
            let got = dense.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= RELATIVE_ERROR * exact + 1e-12,
                "q{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn merging_adds_counts_and_packing_round_trips() {
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        for i in 0..100 {
            a.add(0.010 + f64::from(i) * 1e-4);
            b.add(0.5 + f64::from(i) * 1e-3);
        }
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.count(), 200);
        assert_eq!(m.pack().unpack(), m);
        let mut dense = Dense::default();
        dense.add(&a);
        dense.add_packed(&b.pack());
        let p = dense.percentiles().unwrap();
        // Rank 99 of 200 is a's largest value, 0.0199; rank 189 is b's 90th, 0.589.
        assert!((p.p50 - 0.0199).abs() <= 0.0199 * RELATIVE_ERROR, "{p:?}");
        assert!((p.p95 - 0.589).abs() <= 0.589 * RELATIVE_ERROR, "{p:?}");
        // A day's worth of similar latencies packs into a few bytes per bucket.
        assert!(m.pack().len() <= 3 * m.bins.len() + 2, "{}", m.pack().len());
        assert_eq!(Dense::default().percentiles(), None);
        assert!(Sketch::default().pack().is_empty());
    }

    #[test]
    fn odd_values_land_in_the_edge_buckets() {
        let mut s = Sketch::default();
        for v in [f64::NAN, -1.0, 0.0, 1e300] {
            s.add(v);
        }
        assert_eq!(s.count(), 4);
        let mut d = Dense::default();
        d.add(&s);
        assert_eq!(d.quantile(0.0), Some(MIN_SECONDS));
    }
}
