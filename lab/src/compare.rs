//! `xinterp-lab compare A B`: run B against run A.
//!
//! First the **in-run ratios** (what the report's answers cite): each ratio of run A beside
//! the same ratio of run B, with their 95% intervals. They agree when the two intervals
//! overlap; a ratio is flagged as changed only when the intervals do not overlap **and** it
//! moved by more than the noise threshold. A ratio is measured within one run, its rows
//! interleaved and paired by repetition, so a change of the machine's speed between the runs
//! cancels in it.
//!
//! Then the **absolute quantities** (times, throughputs, ...): B / A of the medians with a
//! 95% interval, flagged likewise only when the two runs' intervals do not overlap
//! and the change exceeds the threshold. A machine that is slower or faster as a whole (a
//! virtual machine's neighbours, its clock) moves every absolute time alike: the summary
//! gives the median change over every time so that such a shift is seen for what it is.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::render::escape;
use crate::results::{Results, Verdict};
use crate::stats::{decimals_for, fixed, median, ns_interval, ratio_interval, with_interval};

/// Reads a run's `results.json` from its folder (or the file itself).
pub fn load(path: &Path) -> Result<Results, String> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let text =
        fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let results: Results = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a results.json of this lab ({}): {e}",
            file.display(),
            crate::results::SCHEMA
        )
    })?;
    if results.schema != crate::results::SCHEMA {
        return Err(format!(
            "{} has schema {}, this lab reads {}",
            file.display(),
            results.schema,
            crate::results::SCHEMA
        ));
    }
    Ok(results)
}

/// One quantity present in both runs.
#[derive(Debug, Serialize)]
pub struct Change {
    /// Experiment name.
    pub experiment: String,
    /// Row label.
    pub row: String,
    /// Metric name.
    pub metric: String,
    /// Unit.
    pub unit: String,
    /// Median in run A.
    pub a: f64,
    /// Run A's 95% interval of its median.
    pub a_ci: (f64, f64),
    /// Median in run B.
    pub b: f64,
    /// Run B's 95% interval of its median.
    pub b_ci: (f64, f64),
    /// Whether the two runs' intervals overlap.
    pub overlap: bool,
    /// B / A.
    pub ratio: f64,
    /// Lower end of the ratio's 95% interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Where the interval lies against 1.
    pub verdict: Verdict,
    /// Whether the change is beyond noise: the runs' intervals do not overlap and B / A is
    /// further from 1 than the noise threshold.
    pub changed: bool,
}

/// One in-run ratio present in both runs.
#[derive(Debug, Serialize)]
pub struct RatioChange {
    /// Experiment name.
    pub experiment: String,
    /// The ratio's label.
    pub label: String,
    /// Run A's ratio and its 95% interval.
    pub a: (f64, f64, f64),
    /// Run B's ratio and its 95% interval.
    pub b: (f64, f64, f64),
    /// B / A of the two ratios.
    pub change: f64,
    /// Whether the two intervals overlap: the runs agree.
    pub agree: bool,
    /// Whether the change is beyond noise: the intervals do not overlap and B / A is further
    /// from 1 than the noise threshold.
    pub changed: bool,
}

/// The comparison of two runs.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Run A's folder.
    pub a: String,
    /// Run B's folder.
    pub b: String,
    /// Run A's start and commit.
    pub a_run: String,
    /// Run B's start and commit.
    pub b_run: String,
    /// The change threshold: a change smaller than this share is not flagged.
    pub noise: f64,
    /// Every in-run ratio in both runs (first: what the answers cite).
    pub ratios: Vec<RatioChange>,
    /// The median of B / A over every time (unit ns) in both runs: how much faster or
    /// slower the machine as a whole ran B (1 when no time was compared).
    pub machine_speed: f64,
    /// Every quantity in both runs.
    pub changes: Vec<Change>,
    /// Quantities in only one run (`A: ...` or `B: ...`).
    pub unmatched: Vec<String>,
    /// Differences in the runs' settings or parameters that make rows incomparable.
    pub warnings: Vec<String>,
}

fn describe(r: &Results) -> String {
    format!(
        "{} commit {}",
        r.run.started_utc,
        r.run
            .git_commit
            .as_deref()
            .map_or("unknown", |c| &c[..c.len().min(12)])
    )
}

fn overlap((a_low, a_high): (f64, f64), (b_low, b_high): (f64, f64)) -> bool {
    a_low <= b_high && b_low <= a_high
}

fn beyond(change: f64, noise: f64) -> bool {
    change > 1.0 + noise || change < 1.0 - noise
}

/// Compares run `b` against run `a`: a ratio or quantity is flagged as changed when the two
/// runs' intervals do not overlap and it moved by more than `noise` (a share, e.g. 0.05).
pub fn compare(a_path: &Path, a: &Results, b_path: &Path, b: &Results, noise: f64) -> Comparison {
    let mut changes = Vec::new();
    let mut ratios = Vec::new();
    let mut unmatched = Vec::new();
    let mut warnings = Vec::new();
    if a.settings != b.settings {
        warnings.push(format!(
            "the runs' settings differ: A {} / B {}",
            serde_json::Value::Object(a.settings.clone()),
            serde_json::Value::Object(b.settings.clone())
        ));
    }
    for ea in &a.experiments {
        let Some(eb) = b.experiments.iter().find(|e| e.name == ea.name) else {
            unmatched.push(format!("A only: experiment {}", ea.name));
            continue;
        };
        if ea.params != eb.params {
            warnings.push(format!("{}: parameters differ between the runs", ea.name));
        }
        for ra in &ea.rows {
            let Some(rb) = eb.rows.iter().find(|r| r.label == ra.label) else {
                unmatched.push(format!("A only: {} / {}", ea.name, ra.label));
                continue;
            };
            for ma in &ra.metrics {
                let Some(mb) = rb.metrics.iter().find(|m| m.name == ma.name) else {
                    continue;
                };
                let (ratio, lo, hi) = ratio_interval(&[&mb.sample.reps], &[&ma.sample.reps]);
                let verdict = if lo == hi {
                    Verdict::Inconclusive
                } else {
                    Verdict::of(lo, hi, 1.0)
                };
                let (sa, sb) = (&ma.sample, &mb.sample);
                let (a_ci, b_ci) = ((sa.ci_low, sa.ci_high), (sb.ci_low, sb.ci_high));
                let apart = !overlap(a_ci, b_ci) && sa.has_interval() && sb.has_interval();
                let changed = apart && beyond(ratio, noise);
                changes.push(Change {
                    experiment: ea.name.clone(),
                    row: ra.label.clone(),
                    metric: ma.name.clone(),
                    unit: ma.unit.clone(),
                    a: sa.median,
                    a_ci,
                    b: sb.median,
                    b_ci,
                    overlap: !apart,
                    ratio,
                    ci_low: lo,
                    ci_high: hi,
                    verdict,
                    changed,
                });
            }
        }
        for xa in &ea.ratios {
            let Some(xb) = eb.find_ratio(&xa.label) else {
                unmatched.push(format!("A only: {} / ratio {}", ea.name, xa.label));
                continue;
            };
            let some_interval = |x: &crate::results::Ratio| x.ci_low < x.ci_high;
            let agree = overlap((xa.ci_low, xa.ci_high), (xb.ci_low, xb.ci_high))
                || !(some_interval(xa) && some_interval(xb));
            let change = xb.value / xa.value;
            ratios.push(RatioChange {
                experiment: ea.name.clone(),
                label: xa.label.clone(),
                a: (xa.value, xa.ci_low, xa.ci_high),
                b: (xb.value, xb.ci_low, xb.ci_high),
                change,
                agree,
                changed: !agree && beyond(change, noise),
            });
        }
        for xb in &eb.ratios {
            if ea.find_ratio(&xb.label).is_none() {
                unmatched.push(format!("B only: {} / ratio {}", eb.name, xb.label));
            }
        }
        for rb in &eb.rows {
            if ea.row(&rb.label).is_none() {
                unmatched.push(format!("B only: {} / {}", eb.name, rb.label));
            }
        }
    }
    for eb in &b.experiments {
        if !a.experiments.iter().any(|e| e.name == eb.name) {
            unmatched.push(format!("B only: experiment {}", eb.name));
        }
    }
    let times: Vec<f64> = changes
        .iter()
        .filter(|c| c.unit == "ns" && c.ratio.is_finite())
        .map(|c| c.ratio)
        .collect();
    let machine_speed = if times.is_empty() {
        1.0
    } else {
        median(&times)
    };
    Comparison {
        a: a_path.display().to_string(),
        b: b_path.display().to_string(),
        a_run: describe(a),
        b_run: describe(b),
        noise,
        ratios,
        machine_speed,
        changes,
        unmatched,
        warnings,
    }
}

/// `value unit (95% CI low to high unit)` to the precision the interval supports.
fn value_with_interval(value: f64, (low, high): (f64, f64), unit: &str) -> String {
    if low >= high {
        let d = decimals_for(value.abs() / 1000.0, 3);
        return format!("{} {unit} (no interval)", fixed(value, d));
    }
    match unit {
        "ns" => ns_interval(value, low, high),
        "%" => with_interval(value, low, high, "%"),
        _ => with_interval(value, low, high, &format!(" {unit}")),
    }
}

impl Change {
    /// `1.03x (95% CI 0.98 to 1.09x)` and what it means.
    pub fn show(&self) -> String {
        let mut text = with_interval(self.ratio, self.ci_low, self.ci_high, "x");
        text.push_str(match (self.changed, self.overlap) {
            (true, _) if self.ratio > 1.0 => "  CHANGED: higher in B",
            (true, _) => "  CHANGED: lower in B",
            (false, true) => "  same within the intervals",
            (false, false) => "  intervals apart, change within the noise threshold",
        });
        text
    }

    /// Run A's median with its interval.
    pub fn show_a(&self) -> String {
        value_with_interval(self.a, self.a_ci, &self.unit)
    }

    /// Run B's median with its interval.
    pub fn show_b(&self) -> String {
        value_with_interval(self.b, self.b_ci, &self.unit)
    }
}

impl RatioChange {
    /// Run A's ratio with its interval.
    pub fn show_a(&self) -> String {
        with_interval(self.a.0, self.a.1, self.a.2, "x")
    }

    /// Run B's ratio with its interval.
    pub fn show_b(&self) -> String {
        with_interval(self.b.0, self.b.1, self.b.2, "x")
    }

    /// What the two runs say together.
    pub fn verdict(&self) -> &'static str {
        match (self.agree, self.changed) {
            (true, _) => "agree",
            (false, true) => "CHANGED",
            (false, false) => "intervals apart, within noise",
        }
    }
}

impl Comparison {
    /// Quantities flagged as changed.
    pub fn flagged(&self) -> usize {
        self.changes.iter().filter(|c| c.changed).count()
    }

    /// In-run ratios whose intervals overlap between the runs.
    pub fn ratios_agreeing(&self) -> usize {
        self.ratios.iter().filter(|r| r.agree).count()
    }

    /// In-run ratios flagged as changed.
    pub fn ratios_changed(&self) -> usize {
        self.ratios.iter().filter(|r| r.changed).count()
    }

    /// The summary of the ratios, in one sentence.
    pub fn ratio_summary(&self) -> String {
        format!(
            "ratios: {} of {} agree (their intervals in A and B overlap); {} changed beyond \
             noise (intervals apart and a change above {:.0}%).",
            self.ratios_agreeing(),
            self.ratios.len(),
            self.ratios_changed(),
            self.noise * 100.0
        )
    }

    /// The summary of the absolute quantities, in one sentence.
    pub fn absolute_summary(&self) -> String {
        let times = self.changes.iter().filter(|c| c.unit == "ns").count();
        let shift = if times == 0 {
            String::new()
        } else if beyond(self.machine_speed, self.noise) {
            format!(
                "absolute times: median change x{:.2} across {times} times: the machine ran \
                 B {} as a whole (its speed changed between the runs; the in-run ratios \
                 cancel that). ",
                self.machine_speed,
                if self.machine_speed > 1.0 {
                    "slower"
                } else {
                    "faster"
                }
            )
        } else {
            format!(
                "absolute times: median change x{:.2} across {times} times (the machine's \
                 speed held). ",
                self.machine_speed
            )
        };
        format!(
            "{shift}{} of {} quantities changed beyond noise (their intervals in A and B do \
             not overlap and the change exceeds {:.0}%).",
            self.flagged(),
            self.changes.len(),
            self.noise * 100.0
        )
    }

    /// Prints the comparison on stdout.
    pub fn print(&self) {
        println!("compare: run B against run A");
        println!("  A: {} ({})", self.a, self.a_run);
        println!("  B: {} ({})", self.b, self.b_run);
        for w in &self.warnings {
            println!("  warning: {w}");
        }
        println!(
            "\n== in-run ratios (what the answers cite; measured within each run, rows \
             interleaved and paired, so the machine's speed cancels): A | B | verdict"
        );
        let mut last = "";
        for r in &self.ratios {
            if r.experiment != last {
                println!("-- {}", r.experiment);
                last = &r.experiment;
            }
            println!(
                "   {:<56} {} | {} | {}",
                r.label,
                r.show_a(),
                r.show_b(),
                r.verdict()
            );
        }
        println!(
            "\n== absolute quantities: B / A of the medians (95% CI); a machine-wide \
             speed change shows here"
        );
        let mut last = "";
        for c in &self.changes {
            if c.experiment != last {
                println!("-- {}", c.experiment);
                last = &c.experiment;
            }
            let what = if c.metric == "time per operation" {
                c.row.clone()
            } else {
                format!("{} / {}", c.row, c.metric)
            };
            println!("   {what:<62} {}", c.show());
        }
        for u in &self.unmatched {
            println!("   not compared: {u}");
        }
        println!("\n{}", self.ratio_summary());
        println!("{}", self.absolute_summary());
    }

    /// The comparison as an HTML page.
    pub fn html(&self) -> String {
        let mut h = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>xinterp \
             lab: compare</title><style>body{{font-family:sans-serif;max-width:1200px;\
             margin:2em auto;background:#fff;color:#111}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
             td:first-child,td:nth-child(2){{text-align:left}}tr.chg{{background:#fde2e1}}\
             tr.apart{{background:#fff4d6}}</style></head><body>\n<h1>xinterp lab: B against \
             A</h1>\n<p>A: <code>{}</code> ({})<br>B: <code>{}</code> ({})</p>\n\
             <p id=\"summary\">{}<br>{}</p>\n",
            escape(&self.a),
            escape(&self.a_run),
            escape(&self.b),
            escape(&self.b_run),
            escape(&self.ratio_summary()),
            escape(&self.absolute_summary()),
        );
        for w in &self.warnings {
            let _ = writeln!(h, "<p><b>Warning:</b> {}</p>", escape(w));
        }
        h.push_str(
            "<h2>In-run ratios</h2>\n<p>What the report's answers cite. Each is measured \
             within one run, its rows interleaved and paired by repetition, so a change of \
             the machine's speed between the runs cancels in it. The runs agree on a ratio \
             when its two intervals overlap.</p>\n<table><tr><th>experiment</th>\
             <th>ratio</th><th>A (95% CI)</th><th>B (95% CI)</th><th>B / A</th>\
             <th>verdict</th></tr>\n",
        );
        for r in &self.ratios {
            let class = match (r.agree, r.changed) {
                (true, _) => "",
                (false, true) => " class=\"chg\"",
                (false, false) => " class=\"apart\"",
            };
            let _ = writeln!(
                h,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}x</td>\
                 <td>{}</td></tr>",
                escape(&r.experiment),
                escape(&r.label),
                escape(&r.show_a()),
                escape(&r.show_b()),
                r.change,
                r.verdict()
            );
        }
        h.push_str(
            "</table>\n<h2>Absolute quantities</h2>\n<p>Times and other quantities of each \
             run, with their 95% intervals. A machine that ran one of the runs faster or \
             slower as a whole moves all of them alike (see the median change above).</p>\n\
             <table><tr><th>experiment</th><th>row / metric</th><th>A (95% CI)</th>\
             <th>B (95% CI)</th><th>B / A (95% CI)</th></tr>\n",
        );
        for c in &self.changes {
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if c.changed { " class=\"chg\"" } else { "" },
                escape(&c.experiment),
                escape(&c.row),
                escape(&c.metric),
                escape(&c.show_a()),
                escape(&c.show_b()),
                escape(&c.show())
            );
        }
        h.push_str("</table>\n");
        for u in &self.unmatched {
            let _ = writeln!(h, "<p>Not compared: {}</p>", escape(u));
        }
        h.push_str("</body></html>\n");
        h
    }

    /// Writes `compare.json`, `compare.csv` (one line per quantity and per in-run ratio,
    /// told apart by `kind`) and `compare.html` into `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let json = dir.join("compare.json");
        fs::write(
            &json,
            serde_json::to_string_pretty(self).map_err(io::Error::other)? + "\n",
        )?;
        let mut csv = String::from(
            "kind,experiment,row,metric,unit,a_median,a_ci_low,a_ci_high,b_median,b_ci_low,\
             b_ci_high,ratio,ci_low,ci_high,overlap,changed\n",
        );
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        for r in &self.ratios {
            let _ = writeln!(
                csv,
                "ratio,{},{},{},x,{},{},{},{},{},{},{},,,{},{}",
                q(&r.experiment),
                q(&r.label),
                q("ratio"),
                r.a.0,
                r.a.1,
                r.a.2,
                r.b.0,
                r.b.1,
                r.b.2,
                r.change,
                r.agree,
                r.changed
            );
        }
        for c in &self.changes {
            let _ = writeln!(
                csv,
                "quantity,{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                q(&c.experiment),
                q(&c.row),
                q(&c.metric),
                q(&c.unit),
                c.a,
                c.a_ci.0,
                c.a_ci.1,
                c.b,
                c.b_ci.0,
                c.b_ci.1,
                c.ratio,
                c.ci_low,
                c.ci_high,
                c.overlap,
                c.changed
            );
        }
        let csv_path = dir.join("compare.csv");
        fs::write(&csv_path, csv)?;
        let html = dir.join("compare.html");
        fs::write(&html, self.html())?;
        Ok(vec![json, csv_path, html])
    }
}
