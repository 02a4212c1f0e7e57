//! Intentionally empty: the models live in `tests/`, one file per race.
