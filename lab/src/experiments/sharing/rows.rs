//! One configuration (a mode, `N` and `K`) measured: its repetitions made, then its
//! hand-over row and its lookups row pushed, their indices kept in [`Rows`].

use crate::measure::Harness;
use crate::results::{Experiment, Metric, Row};
use crate::stats::Sample;

use super::dict::Setup;
use super::handover::{once, Mode, Once};
use super::{grouped, WARM_UP};

/// The indices of one configuration's two rows.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rows {
    pub(super) mode: Mode,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) handover: usize,
    pub(super) lookups: usize,
}

/// Measures one configuration with the `shared` setup (rebuilt every round) or, without
/// one, a setup of its own per repetition; pushes its hand-over row and its lookups row.
pub(super) fn measure(
    e: &mut Experiment,
    h: &Harness,
    mode: Mode,
    (n, k, m, reps): (usize, usize, usize, usize),
    mut shared: Option<&mut Option<Setup>>,
) -> Rows {
    let what = format!("{}, N={}, K={k}", mode.name(), grouped(n));
    let runs = h.repeat_at_most(&what, reps, |rep| match (rep, shared.as_deref_mut()) {
        (None, _) => once(mode, &mut Setup::new(n.min(WARM_UP), k), k, m.min(WARM_UP)),
        (Some(_), Some(setup)) => once(
            mode,
            setup
                .as_mut()
                .expect("the shared dict, built in this round"),
            k,
            m,
        ),
        (Some(_), None) => once(mode, &mut Setup::new(n, k), k, m),
    });
    let sample = |f: &dyn Fn(&Once) -> f64| Sample::from_reps(runs.iter().map(f).collect());
    let last = runs.last().expect("at least one repetition");
    let (ho, lk) = (&last.handover, &last.lookups);
    let per_lookup = |v: u64| (v as f64 / (k * m) as f64 * 1000.0).round() / 1000.0;
    let base = |row: Row| {
        row.param("mode", mode.name())
            .param("entries", n as u64)
            .param("receivers", k as u64)
            .param("lookups_per_receiver", m as u64)
            .param("repetitions", runs.len() as u64)
    };
    let handover = e.push(
        base(Row::with_metrics(
            &format!("{what}: hand-over"),
            vec![
                Metric::new("hand-over time", "ns", sample(&|o| o.handover_ns)),
                Metric::new(
                    "memory the hand-over added",
                    "MiB",
                    sample(&|o| o.added_mib),
                ),
            ],
        ))
        .param("phase", "hand-over")
        .count("switches", ho.switches)
        .count("bytes_copied", ho.bytes_copied)
        .count("objects_allocated", ho.objects_allocated)
        .count("objects_frozen", ho.objects_frozen)
        .count("objects_moved", ho.objects_moved)
        .count("proxies_created", ho.proxies_created),
    );
    let lookups = e.push(
        base(Row::with_metrics(
            &format!("{what}: lookups"),
            vec![Metric::new(
                "lookups per second, all receivers",
                "M/s",
                sample(&|o| o.lookups_mps),
            )],
        ))
        .param("phase", "lookups")
        .count("switches_per_lookup", per_lookup(lk.switches))
        .count("forwarded_calls_per_lookup", per_lookup(lk.forwarded_calls))
        .count(
            "objects_allocated_per_lookup",
            per_lookup(lk.objects_allocated),
        ),
    );
    Rows {
        mode,
        n,
        k,
        handover,
        lookups,
    }
}
