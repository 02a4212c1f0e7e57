//! The seventh question's answer, written from this run's rows and ratios, with the
//! crossovers (which mode costs less as lookups grow) and sizes it quotes.

use crate::results::{Experiment, MISSING};

use super::handover::Mode;
use super::rows::Rows;
use super::{grouped, Tier};

/// Which of modes `a` and `b` costs less in all (the hand-over plus `k` receivers' lookups,
/// all receivers at once), as the number of lookups per receiver grows: from the medians
/// of hand-over time (ns) and lookups per second (millions, all receivers together).
/// `same_rate`: the run could not tell the two lookup rates apart (their ratio's interval
/// holds 1), so only the hand-over decides.
fn crossover(
    (a, ha, ra): (&str, f64, f64),
    (b, hb, rb): (&str, f64, f64),
    k: usize,
    same_rate: bool,
) -> String {
    let d_hand = ha - hb;
    // ns more per lookup per receiver for `a` than for `b` (all receivers look up at once).
    let d_lookup = if same_rate {
        0.0
    } else {
        k as f64 * 1000.0 * (1.0 / ra - 1.0 / rb)
    };
    let about = |m: f64| {
        let digits = 10f64.powf((m.log10().floor() - 1.0).max(0.0));
        grouped(((m / digits).round() * digits) as usize)
    };
    if d_hand <= 0.0 && d_lookup <= 0.0 {
        format!("{a} costs less than {b} at any number of lookups")
    } else if d_hand >= 0.0 && d_lookup >= 0.0 {
        format!("{b} costs less than {a} at any number of lookups")
    } else if d_hand > 0.0 {
        format!(
            "{b} costs less than {a} up to about {} lookups per receiver, {a} beyond",
            about(d_hand / -d_lookup)
        )
    } else {
        format!(
            "{a} costs less than {b} up to about {} lookups per receiver, {b} beyond",
            about(-d_hand / d_lookup)
        )
    }
}

/// A size given in MiB, to three significant digits, in KiB below 1 MiB.
fn size_text(mib: f64) -> String {
    let three = |v: f64| {
        let decimals = (2 - v.abs().max(1e-9).log10().floor() as i64).clamp(0, 3) as usize;
        format!("{v:.decimals$}")
    };
    if mib.abs() >= 1.0 {
        format!("{} MiB", three(mib))
    } else {
        format!("{} KiB", three(mib * 1024.0))
    }
}

/// Question 7, from this run's figures.
pub(super) fn answer(
    e: &mut Experiment,
    all: &[Rows],
    builds: &[(usize, usize)],
    tiers: &[Tier],
    m: usize,
) {
    let (Some(small), Some(large)) = (tiers.first(), tiers.last()) else {
        return;
    };
    let (l, s) = (large.n, small.n);
    let k4 = large.receivers.iter().copied().max().unwrap_or(1);
    let get = |mode: Mode, n: usize, k: usize| {
        all.iter()
            .copied()
            .find(|r| r.mode == mode && r.n == n && r.k == k)
    };
    let rows = |n: usize, k: usize| {
        Some((
            get(Mode::Copy, n, k)?,
            get(Mode::Proxy, n, k)?,
            get(Mode::Frozen, n, k)?,
        ))
    };
    let (Some((c1, p1, f1)), Some((c4, p4, f4)), Some((cs, ps, fs))) =
        (rows(l, 1), rows(l, k4), rows(s, 1))
    else {
        return;
    };
    let (mv, mvs) = (get(Mode::Moved, l, 1), get(Mode::Moved, s, 1));
    let text = {
        let e = &*e;
        let ho = |r: Rows| e.rows[r.handover].headline().show();
        let lk = |r: Rows| e.rows[r.lookups].headline().show();
        let mem = |r: Rows| {
            e.rows[r.handover]
                .metric("memory the hand-over added")
                .map_or(MISSING.into(), |m| size_text(m.sample.median))
        };
        let med_ho = |r: Rows| e.rows[r.handover].headline().sample.median;
        let med_lk = |r: Rows| e.rows[r.lookups].headline().sample.median;
        let count = |i: usize, name: &str| {
            e.rows[i]
                .counters
                .get(name)
                .map_or(MISSING.into(), |v| match v.as_u64() {
                    Some(n) => grouped(n as usize),
                    None => v.to_string(),
                })
        };
        let ratio_of = |label: String| e.find_ratio(&label);
        let ratio = |label: String| e.show_ratio(&label);
        let same = |label: String| {
            ratio_of(label).is_some_and(|r| r.verdict == crate::results::Verdict::Inconclusive)
        };
        let at = |n: usize, k: usize| format!("N={}, K={k}", grouped(n));
        let versus = |a: (Mode, Rows), b: (Mode, Rows), n: usize, k: usize| {
            let label = match (a.0, b.0) {
                (Mode::Frozen, Mode::Proxy) => "frozen / proxy",
                _ => "frozen / copy",
            };
            crossover(
                (a.0.name(), med_ho(a.1), med_lk(a.1)),
                (b.0.name(), med_ho(b.1), med_lk(b.1)),
                k,
                same(format!("{label}, lookups per second, {}", at(n, k))),
            )
        };
        let dict_mem = builds
            .iter()
            .find(|b| b.0 == l)
            .and_then(|b| e.rows[b.1].metric("memory of the dict"))
            .map_or(MISSING.into(), |m| size_text(m.sample.median));
        let moved_large = mv.map_or(String::new(), |mv| {
            format!(
                "; a move in {} (moved / frozen: {})",
                ho(mv),
                ratio(format!("moved / frozen, hand-over time, {}", at(l, 1)))
            )
        });
        let moved_lookups = mv.map_or(String::new(), |mv| {
            format!("; {} in the moved dict", lk(mv))
        });
        let mut fastest = vec![(Mode::Copy, cs), (Mode::Proxy, ps), (Mode::Frozen, fs)];
        fastest.extend(mvs.map(|r| (Mode::Moved, r)));
        fastest.sort_by(|a, b| med_ho(a.1).total_cmp(&med_ho(b.1)));
        let reps = tiers
            .iter()
            .map(|t| format!("{} at N={} (K in {:?})", t.reps, grouped(t.n), t.receivers))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "Measured by sharing (a dict of N str keys to small ints, built in one interpreter \
             and handed to K others, each receiver on a thread of its own making {m} lookups; \
             repetitions: {reps}; the hand-over runs from the start of freeze, encode or send \
             until the last receiver holds its object). A large read-mostly structure ({}): a \
             proxy is handed over in {}; the frozen dict in {}, a freeze pass over {} objects \
             (frozen / proxy: {}); the deep copy in {}, {} bytes copied (copy / frozen: \
             {}){moved_large}. Lookups per second: {} through the proxy, {} switch each; {} in \
             the frozen dict, read in place (frozen / proxy: {}); {} in the receiver's own copy \
             (frozen / copy: {}){moved_lookups}. Hand-over plus lookups: {}; {}. With K={k4}: \
             the deep copy takes {}, {} bytes copied (copy / frozen: {}), the frozen dict {}; \
             lookups per second, all receivers together: {} through the proxies, which all \
             enter the one sender (proxy K={k4} / K=1: {}), {} in the frozen dict (frozen \
             K={k4} / K=1: {}; frozen / proxy: {}); {}; {}. Memory: the dict itself takes {}; \
             the hand-over adds {} for one deep copy and {} for {k4}, {} for freezing (its \
             components), {} for a proxy{}. A one-shot small hand-off ({}): proxy {}, deep \
             copy {}, frozen {}{} (frozen / proxy: {}); fastest: {}; {} ({} against {} through \
             the proxy). The verdict turns on the lookups per hand-off, on K and on the size, \
             as these crossovers say; and on mutation: a frozen dict is read-only, a proxy \
             keeps it mutable in its sender, a move hands it mutable to one receiver, a copy \
             gives each its own.",
            at(l, 1),
            ho(p1),
            ho(f1),
            count(f1.handover, "objects_frozen"),
            ratio(format!("frozen / proxy, hand-over time, {}", at(l, 1))),
            ho(c1),
            count(c1.handover, "bytes_copied"),
            ratio(format!("copy / frozen, hand-over time, {}", at(l, 1))),
            lk(p1),
            e.rows[p1.lookups]
                .counters
                .get("switches_per_lookup")
                .and_then(|v| v.as_f64())
                .map_or(MISSING.into(), |v| format!("{v}")),
            lk(f1),
            ratio(format!("frozen / proxy, lookups per second, {}", at(l, 1))),
            lk(c1),
            ratio(format!("frozen / copy, lookups per second, {}", at(l, 1))),
            versus((Mode::Frozen, f1), (Mode::Proxy, p1), l, 1),
            versus((Mode::Frozen, f1), (Mode::Copy, c1), l, 1),
            ho(c4),
            count(c4.handover, "bytes_copied"),
            ratio(format!("copy / frozen, hand-over time, {}", at(l, k4))),
            ho(f4),
            lk(p4),
            ratio(format!(
                "proxy, K={k4} / K=1, lookups per second, N={}",
                grouped(l)
            )),
            lk(f4),
            ratio(format!(
                "frozen, K={k4} / K=1, lookups per second, N={}",
                grouped(l)
            )),
            ratio(format!("frozen / proxy, lookups per second, {}", at(l, k4))),
            versus((Mode::Frozen, f4), (Mode::Proxy, p4), l, k4),
            versus((Mode::Frozen, f4), (Mode::Copy, c4), l, k4),
            dict_mem,
            mem(c1),
            mem(c4),
            mem(f1),
            mem(p1),
            mv.map_or(String::new(), |mv| format!(" and {} for a move", mem(mv))),
            at(s, 1),
            ho(ps),
            ho(cs),
            ho(fs),
            mvs.map_or(String::new(), |mv| format!(", moved {}", ho(mv))),
            ratio(format!("frozen / proxy, hand-over time, {}", at(s, 1))),
            fastest[0].0.name(),
            versus((Mode::Frozen, fs), (Mode::Proxy, ps), s, 1),
            lk(fs),
            lk(ps),
        )
    };
    e.answer(7, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossovers_name_the_cheaper_mode_and_where_it_flips() {
        // a: 1 ms more to hand over, 1 µs less per lookup (1 vs 0.5 M/s): from 1,000 on.
        let a = ("a", 2e6, 1.0);
        let b = ("b", 1e6, 0.5);
        assert_eq!(
            crossover(a, b, 1, false),
            "b costs less than a up to about 1,000 lookups per receiver, a beyond"
        );
        assert_eq!(
            crossover(b, a, 1, false),
            "b costs less than a up to about 1,000 lookups per receiver, a beyond"
        );
        assert_eq!(
            crossover(a, b, 1, true),
            "b costs less than a at any number of lookups"
        );
        assert_eq!(
            crossover(("a", 1e6, 1.0), b, 4, false),
            "a costs less than b at any number of lookups"
        );
    }
}
