//! Timing: repeat a measurement, keep every repetition, report the median and the spread.

use std::time::Instant;

use serde::Serialize;

/// Nanoseconds per operation over repetitions of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub median_ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub reps: Vec<f64>,
}

impl Sample {
    pub fn from_reps(mut reps: Vec<f64>) -> Self {
        assert!(!reps.is_empty(), "a sample needs at least one repetition");
        let unsorted = reps.clone();
        reps.sort_by(f64::total_cmp);
        let mid = reps.len() / 2;
        let median_ns = if reps.len() % 2 == 1 {
            reps[mid]
        } else {
            (reps[mid - 1] + reps[mid]) / 2.0
        };
        Sample {
            median_ns,
            min_ns: reps[0],
            max_ns: reps[reps.len() - 1],
            reps: unsorted,
        }
    }
}

/// Runs `body(ops)` once to warm up, then `reps` times, each timed and divided by `ops`.
pub fn per_op(reps: usize, ops: u64, mut body: impl FnMut(u64)) -> Sample {
    body(ops.div_ceil(10));
    let reps = (0..reps)
        .map(|_| {
            let start = Instant::now();
            body(ops);
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    Sample::from_reps(reps)
}

#[cfg(test)]
mod tests {
    use super::Sample;

    #[test]
    fn median_and_spread() {
        let s = Sample::from_reps(vec![5.0, 1.0, 3.0]);
        assert_eq!((s.median_ns, s.min_ns, s.max_ns), (3.0, 1.0, 5.0));
        assert_eq!(Sample::from_reps(vec![4.0, 2.0]).median_ns, 3.0);
        assert_eq!(s.reps, [5.0, 1.0, 3.0]);
    }
}
