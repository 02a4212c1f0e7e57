//! The built-in experiments. Each `run` takes a [`crate::measure::Harness`] (repetitions,
//! scale, progress) and returns an [`crate::results::Experiment`] with its rows, ratios,
//! charts and its answers to the lab's questions.

pub mod channel;
pub mod cpython;
pub mod pool;
pub mod proxy;
pub mod release;
pub mod sharing;
pub mod switch;
pub mod trace;
