//! The experiment's two charts: hand-over time and lookups per second against `N`, a
//! line per mode and `K`.

use crate::plot::{Axis, Chart, Point, Series, Ticks};
use crate::results::Experiment;

use super::handover::Mode;
use super::rows::Rows;
use super::Tier;

/// Pushes the charts: one line per mode and receiver count measured at every size.
pub(super) fn charts(e: &mut Experiment, all: &[Rows], tiers: &[Tier]) {
    // Receiver counts measured at every size.
    let mut ks: Vec<usize> = tiers.first().map_or(Vec::new(), |t| t.receivers.clone());
    ks.retain(|k| tiers.iter().all(|t| t.receivers.contains(k)));
    let series = |e: &Experiment, pick: &dyn Fn(&Rows) -> usize| -> Vec<Series> {
        let mut out = Vec::new();
        for &k in &ks {
            for mode in Mode::ALL.into_iter().filter(|md| md.takes(k)) {
                let points = all
                    .iter()
                    .filter(|r| r.mode == mode && r.k == k)
                    .map(|r| Point::of(r.n as f64, &e.rows[pick(r)].headline().sample))
                    .collect();
                out.push(Series {
                    name: format!("{}, K={k}", mode.name()),
                    points,
                });
            }
        }
        out
    };
    let handover = series(e, &|r| r.handover);
    let lookups = series(e, &|r| r.lookups);
    e.charts.push(Chart::lines(
        "sharing",
        "sharing: time to hand a dict of N entries to K receivers",
        Axis::log("entries N", Ticks::Plain),
        Axis::log("hand-over time", Ticks::Nanos),
        handover,
    ));
    e.charts.push(Chart::lines(
        "sharing-lookups",
        "sharing: lookups per second in the receivers, all together",
        Axis::log("entries N", Ticks::Plain),
        Axis::log("lookups per second (millions)", Ticks::Plain),
        lookups,
    ));
}
