//! Results: percentiles and medians of samples, the units they are printed in, and the one-line
//! percentile report most benchmarks print.

use std::time::Duration;

/// Prints p50/p90/p99 of `samples` on one line; returns the p50.
pub fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at = |p: f64| percentile(&samples, p);
    println!(
        "{name:<58} n={:<5} p50={:>9.1} µs  p90={:>9.1} µs  p99={:>9.1} µs",
        samples.len(),
        us(at(0.5)),
        us(at(0.9)),
        us(at(0.99)),
    );
    at(0.5)
}

/// The `p` percentile (0 to 1, nearest rank) of `sorted`; zero when there are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The median of `v` (the upper one of an even count).
pub fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `d` in microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `bytes` in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
