//! Statistics over repetitions: medians, confidence intervals for a median and for a ratio
//! of medians, and printing a number to the precision its interval supports.
//!
//! The interval of a median (and of a paired ratio, the median of per-repetition ratios) is
//! distribution-free: order statistics whose 95% coverage follows from the binomial count
//! of values below the median ([`median_interval`]); with 7 repetitions it is their range.
//! A ratio of rows that cannot be paired uses a 95% percentile bootstrap ([`RESAMPLES`]
//! resamples from a fixed seed, so the same repetitions always give the same interval).
//! With one repetition there is no interval: it collapses to the value, and
//! [`Sample::has_interval`] says so.

use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;
/// The confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;
const SEED: u64 = 0x5eed_1ab5;

/// A small deterministic generator (SplitMix64): enough to draw resample indices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }
}

/// The median of `values` (which need not be sorted); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_sorted(&sorted, 0.5)
}

/// The `p` quantile (0 to 1) of sorted values, interpolating linearly between neighbours;
/// NaN when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let at = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let (i, frac) = (at.floor() as usize, at.fract());
            if i + 1 >= n {
                sorted[n - 1]
            } else {
                sorted[i] + (sorted[i + 1] - sorted[i]) * frac
            }
        }
    }
}

fn resampled_median(values: &[f64], rng: &mut Rng, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..values.len()).map(|_| values[rng.below(values.len())]));
    scratch.sort_by(f64::total_cmp);
    percentile_sorted(scratch, 0.5)
}

fn interval_of(mut estimates: Vec<f64>) -> (f64, f64) {
    estimates.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    (
        percentile_sorted(&estimates, tail),
        percentile_sorted(&estimates, 1.0 - tail),
    )
}

/// The distribution-free 95% interval of the median of `values`: the order statistics
/// `x(k)` and `x(n+1-k)` with the largest `k` for which the median lies between them with
/// probability at least 95% (a binomial count of values below the median). It assumes
/// nothing about the distribution, unlike a bootstrap of few repetitions, whose percentile
/// interval is too narrow when values cluster. With fewer than 6 values no such `k` exists,
/// and the interval is the smallest to the largest value (93.75% for 5).
pub fn median_interval(values: &[f64]) -> (f64, f64) {
    if values.len() < 2 {
        let m = median(values);
        return (m, m);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = order_statistic_rank(sorted.len());
    (sorted[k - 1], sorted[sorted.len() - k])
}

/// The largest `k >= 1` with `P(k <= B <= n - k) >= 95%` for `B ~ Binomial(n, 1/2)`, or 1.
fn order_statistic_rank(n: usize) -> usize {
    // P(B <= j) for j = 0..n, by the binomial coefficients.
    let total = 2f64.powi(i32::try_from(n).unwrap_or(i32::MAX));
    let mut below = 0.0; // P(B <= k - 1)
    let mut choose = 1.0; // C(n, k - 1)
    let mut best = 1;
    for k in 1..=n / 2 {
        below += choose / total;
        if 1.0 - 2.0 * below < CONFIDENCE {
            break;
        }
        best = k;
        choose = choose * (n - (k - 1)) as f64 / k as f64;
    }
    best
}

/// The ratio of summed medians `sum(median(num)) / sum(median(den))` and its 95% bootstrap
/// interval, resampling each measurement's repetitions independently (they were measured
/// independently).
pub fn ratio_interval(num: &[&[f64]], den: &[&[f64]]) -> (f64, f64, f64) {
    let point = |parts: &[&[f64]]| parts.iter().map(|v| median(v)).sum::<f64>();
    let value = point(num) / point(den);
    if num.iter().chain(den).all(|v| v.len() < 2) {
        return (value, value, value);
    }
    let mut rng = Rng::new(SEED);
    let mut scratch = Vec::new();
    let mut draw = |parts: &[&[f64]], rng: &mut Rng| {
        parts
            .iter()
            .map(|v| resampled_median(v, rng, &mut scratch))
            .sum::<f64>()
    };
    let estimates = (0..RESAMPLES)
        .map(|_| draw(num, &mut rng) / draw(den, &mut rng))
        .collect();
    let (low, high) = interval_of(estimates);
    (value, low, high)
}

/// The ratio of rows measured in the same rounds, paired by repetition: for every
/// repetition `i`, `sum(num[k][i]) / sum(den[k][i])`; the result is the median of those
/// per-repetition ratios and its distribution-free 95% interval ([`median_interval`]). A slow phase of the machine that
/// hit repetition `i` of every row cancels in its ratio, so the interval holds the noise of
/// the comparison, not the machine's drift. `None` unless every part has the same number of
/// repetitions (at least one).
pub fn paired_ratio_interval(num: &[&[f64]], den: &[&[f64]]) -> Option<(f64, f64, f64)> {
    let n = num.first()?.len();
    if n == 0 || den.is_empty() || num.iter().chain(den).any(|v| v.len() != n) {
        return None;
    }
    let ratios: Vec<f64> = (0..n)
        .map(|i| num.iter().map(|v| v[i]).sum::<f64>() / den.iter().map(|v| v[i]).sum::<f64>())
        .collect();
    let (low, high) = median_interval(&ratios);
    Some((median(&ratios), low, high))
}

/// One measured quantity over repetitions: every repetition, its median, the 95% interval
/// of the median, and the extremes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Median of the repetitions.
    pub median: f64,
    /// Lower end of the 95% interval of the median (order statistics, [`median_interval`]).
    pub ci_low: f64,
    /// Upper end of the 95% interval of the median.
    pub ci_high: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// Every repetition, in the order measured.
    pub reps: Vec<f64>,
}

impl Sample {
    /// A sample of `reps` (at least one repetition).
    pub fn from_reps(reps: Vec<f64>) -> Self {
        assert!(!reps.is_empty(), "a sample needs at least one repetition");
        let (ci_low, ci_high) = median_interval(&reps);
        Sample {
            median: median(&reps),
            ci_low,
            ci_high,
            min: reps.iter().copied().fold(f64::INFINITY, f64::min),
            max: reps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            reps,
        }
    }

    /// Whether there are enough repetitions (two or more) for an interval.
    pub fn has_interval(&self) -> bool {
        self.reps.len() >= 2
    }

    /// The interval's half width relative to the median (0 when it has none).
    pub fn relative_spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.ci_high - self.ci_low) / 2.0 / self.median.abs()
        }
    }
}

/// Decimals worth printing for a value whose uncertainty is `half_width`: the last digit
/// printed is the first significant digit of the half width (at most `max`).
pub fn decimals_for(half_width: f64, max: usize) -> usize {
    if !(half_width.is_finite()) || half_width <= 0.0 {
        return max;
    }
    let d = -half_width.log10().floor();
    (d.max(0.0) as usize).min(max)
}

/// `value` with `decimals` decimals.
pub fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// A value with its interval, e.g. `1.3x (95% CI 1.1 to 1.6)`, printed to the precision the
/// interval supports; `suffix` follows each number.
pub fn with_interval(value: f64, low: f64, high: f64, suffix: &str) -> String {
    let d = decimals_for((high - low) / 2.0, 6);
    format!(
        "{}{suffix} (95% CI {} to {}{suffix})",
        fixed(value, d),
        fixed(low, d),
        fixed(high, d)
    )
}

/// A duration given in nanoseconds, scaled to ns, µs, ms or s, with `sig` significant digits
/// (at least the integer part).
pub fn human_ns(ns: f64, decimals_in_ns: Option<usize>) -> String {
    let (scale, unit): (f64, &str) = if ns.abs() >= 1e9 {
        (1e9, "s")
    } else if ns.abs() >= 1e6 {
        (1e6, "ms")
    } else if ns.abs() >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    let decimals = match decimals_in_ns {
        Some(d) => {
            // Decimals in ns become more decimals in a larger unit.
            let shift = scale.log10() as i64;
            (d as i64 + shift).clamp(0, 3) as usize
        }
        None => {
            if ns.abs() / scale >= 100.0 {
                0
            } else {
                1
            }
        }
    };
    format!("{:.*} {unit}", decimals, ns / scale)
}

/// A duration in ns with its interval, in one unit, to the precision the interval supports:
/// `43 ns (95% CI 42 to 45 ns)`.
pub fn ns_with_interval(s: &Sample) -> String {
    if !s.has_interval() {
        return format!("{} (one repetition)", human_ns(s.median, None));
    }
    ns_interval(s.median, s.ci_low, s.ci_high)
}

/// `median` ns with its interval `low` to `high`, in one unit, to the precision the
/// interval supports: `43 ns (95% CI 42 to 45 ns)`.
pub fn ns_interval(median: f64, low: f64, high: f64) -> String {
    let half = (high - low) / 2.0;
    // Decimals in ns that the interval supports (negative: round to tens, hundreds...).
    let d_ns = if half > 0.0 {
        -half.log10().floor() as i64
    } else {
        3
    };
    let (scale, unit): (f64, &str) = if median.abs() >= 1e9 {
        (1e9, "s")
    } else if median.abs() >= 1e6 {
        (1e6, "ms")
    } else if median.abs() >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    let d = (d_ns + scale.log10() as i64).clamp(0, 3) as usize;
    format!(
        "{:.d$} {unit} (95% CI {:.d$} to {:.d$} {unit})",
        median / scale,
        low / scale,
        high / scale
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 2.0]), 3.0);
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.99), 4.96);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn intervals_hold_the_median_and_tighten_with_less_noise() {
        let noisy: Vec<f64> = (0..21)
            .map(|i| 100.0 + (i * 37 % 21) as f64 * 5.0)
            .collect();
        let quiet: Vec<f64> = (0..21)
            .map(|i| 100.0 + (i * 37 % 21) as f64 * 0.5)
            .collect();
        let s = Sample::from_reps(noisy);
        let q = Sample::from_reps(quiet);
        assert!(s.ci_low <= s.median && s.median <= s.ci_high);
        assert!(q.ci_high - q.ci_low < s.ci_high - s.ci_low);
        // Deterministic: the same repetitions give the same interval.
        assert_eq!(Sample::from_reps(s.reps.clone()), s);
        let one = Sample::from_reps(vec![7.0]);
        assert!(!one.has_interval());
        assert_eq!((one.ci_low, one.ci_high), (7.0, 7.0));
    }

    #[test]
    fn median_intervals_are_order_statistics_with_95_percent_coverage() {
        // n = 7: only the extremes cover 95% (98.4%); n = 20: the 6th and 15th (95.9%).
        assert_eq!(order_statistic_rank(7), 1);
        assert_eq!(order_statistic_rank(20), 6);
        assert_eq!(order_statistic_rank(5), 1, "no k reaches 95%: the extremes");
        let v: Vec<f64> = (1..=7).map(f64::from).rev().collect();
        assert_eq!(median_interval(&v), (1.0, 7.0));
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median_interval(&v), (6.0, 15.0));
    }

    #[test]
    fn ratio_intervals_straddle_one_for_equal_samples() {
        let a: Vec<f64> = (0..9).map(|i| 10.0 + (i % 3) as f64).collect();
        let (v, lo, hi) = ratio_interval(&[&a], &[&a]);
        assert_eq!(v, 1.0);
        assert!(lo < 1.0 && hi > 1.0);
        let b: Vec<f64> = a.iter().map(|x| x * 2.0).collect();
        let (v, lo, hi) = ratio_interval(&[&b], &[&a]);
        assert_eq!(v, 2.0);
        assert!(lo > 1.0 && hi >= 2.0 && lo <= 2.0);
    }

    #[test]
    fn paired_ratios_cancel_drift_common_to_both_rows() {
        // Both rows slow down alike from repetition to repetition (the machine drifts);
        // row b always costs 1.5x row a.
        let drift = [1.0, 1.3, 0.9, 1.8, 1.1, 1.6, 1.2];
        let a: Vec<f64> = drift.iter().map(|d| 100.0 * d).collect();
        let b: Vec<f64> = drift.iter().map(|d| 150.0 * d).collect();
        let (v, lo, hi) = paired_ratio_interval(&[&b], &[&a]).expect("paired");
        assert!((v - 1.5).abs() < 1e-9 && (lo - 1.5).abs() < 1e-9 && (hi - 1.5).abs() < 1e-9);
        // Unpaired, the drift widens the interval.
        let (_, lo, hi) = ratio_interval(&[&b], &[&a]);
        assert!(hi - lo > 0.1, "{lo} {hi}");
        // Different repetition counts cannot be paired.
        assert!(paired_ratio_interval(&[&b[..3]], &[&a]).is_none());
    }

    #[test]
    fn precision_follows_the_interval() {
        assert_eq!(decimals_for(0.22, 4), 1);
        assert_eq!(decimals_for(0.004, 4), 3);
        assert_eq!(decimals_for(30.0, 4), 0);
        assert_eq!(
            with_interval(0.000_41, 0.000_33, 0.000_52, "x"),
            "0.00041x (95% CI 0.00033 to 0.00052x)"
        );
        assert_eq!(
            with_interval(1.1234, 0.9, 1.35, "x"),
            "1.1x (95% CI 0.9 to 1.4x)"
        );
        let s = Sample::from_reps(vec![42.0, 43.3, 44.9, 43.0, 42.5]);
        assert!(
            ns_with_interval(&s).starts_with("43 ns (95% CI 42"),
            "{}",
            ns_with_interval(&s)
        );
        assert_eq!(human_ns(18_979_294.0, None), "19.0 ms");
    }
}
