//! `xinterp-lab compare A B`: each measured quantity of run B against the same one of run A,
//! as the ratio B / A of their medians with a 95% bootstrap interval, and a flag where the
//! change is beyond noise (the interval excludes 1 and the change exceeds a threshold).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::render::escape;
use crate::results::{Results, Verdict};
use crate::stats::{ratio_interval, with_interval};

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
    /// Median in run B.
    pub b: f64,
    /// B / A.
    pub ratio: f64,
    /// Lower end of the ratio's 95% interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Where the interval lies against 1.
    pub verdict: Verdict,
    /// Whether the change is beyond noise.
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

/// Compares run `b` against run `a`; changes within `noise` (a share, e.g. 0.05) are not
/// flagged even when their interval excludes 1.
pub fn compare(a_path: &Path, a: &Results, b_path: &Path, b: &Results, noise: f64) -> Comparison {
    let mut changes = Vec::new();
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
                let changed =
                    verdict != Verdict::Inconclusive && (lo > 1.0 + noise || hi < 1.0 - noise);
                changes.push(Change {
                    experiment: ea.name.clone(),
                    row: ra.label.clone(),
                    metric: ma.name.clone(),
                    unit: ma.unit.clone(),
                    a: ma.sample.median,
                    b: mb.sample.median,
                    ratio,
                    ci_low: lo,
                    ci_high: hi,
                    verdict,
                    changed,
                });
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
    Comparison {
        a: a_path.display().to_string(),
        b: b_path.display().to_string(),
        a_run: describe(a),
        b_run: describe(b),
        noise,
        changes,
        unmatched,
        warnings,
    }
}

impl Change {
    /// `1.03x (95% CI 0.98 to 1.09x)` and what it means.
    pub fn show(&self) -> String {
        let mut text = with_interval(self.ratio, self.ci_low, self.ci_high, "x");
        text.push_str(match (self.changed, self.verdict) {
            (true, Verdict::Above) => "  CHANGED: higher in B",
            (true, Verdict::Below) => "  CHANGED: lower in B",
            (false, Verdict::Inconclusive) => "  same within noise",
            _ => "  within the noise threshold",
        });
        text
    }
}

impl Comparison {
    /// Rows flagged as changed.
    pub fn flagged(&self) -> usize {
        self.changes.iter().filter(|c| c.changed).count()
    }

    /// Prints the comparison on stdout.
    pub fn print(&self) {
        println!("compare: B / A, per measured quantity (median ratio, 95% bootstrap CI)");
        println!("  A: {} ({})", self.a, self.a_run);
        println!("  B: {} ({})", self.b, self.b_run);
        for w in &self.warnings {
            println!("  warning: {w}");
        }
        let mut last = "";
        for c in &self.changes {
            if c.experiment != last {
                println!("\n== {}", c.experiment);
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
        println!(
            "\n{} of {} quantities changed beyond noise (interval excludes 1 and the change \
             exceeds {:.0}%); {} agree within their intervals.",
            self.flagged(),
            self.changes.len(),
            self.noise * 100.0,
            self.changes
                .iter()
                .filter(|c| c.verdict == Verdict::Inconclusive)
                .count()
        );
    }

    /// The comparison as an HTML page.
    pub fn html(&self) -> String {
        let mut h = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>xinterp \
             lab: compare</title><style>body{{font-family:sans-serif;max-width:1100px;\
             margin:2em auto;background:#fff;color:#111}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
             td:first-child,td:nth-child(2){{text-align:left}}tr.chg{{background:#fde2e1}}\
             </style></head><body>\n<h1>xinterp lab: B against A</h1>\n<p>A: <code>{}</code> \
             ({})<br>B: <code>{}</code> ({})</p>\n<p id=\"summary\">{} of {} quantities \
             changed beyond noise (their 95% interval of B / A excludes 1 and the change \
             exceeds {:.0}%).</p>\n",
            escape(&self.a),
            escape(&self.a_run),
            escape(&self.b),
            escape(&self.b_run),
            self.flagged(),
            self.changes.len(),
            self.noise * 100.0
        );
        for w in &self.warnings {
            let _ = writeln!(h, "<p><b>Warning:</b> {}</p>", escape(w));
        }
        h.push_str(
            "<table><tr><th>experiment</th><th>row / metric</th><th>A</th><th>B</th>\
             <th>B / A (95% CI)</th></tr>\n",
        );
        for c in &self.changes {
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{} / {}</td><td>{:.4} {}</td><td>{:.4} {}</td>\
                 <td>{}</td></tr>",
                if c.changed { " class=\"chg\"" } else { "" },
                escape(&c.experiment),
                escape(&c.row),
                escape(&c.metric),
                c.a,
                escape(&c.unit),
                c.b,
                escape(&c.unit),
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

    /// Writes `compare.json`, `compare.csv` and `compare.html` into `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let json = dir.join("compare.json");
        fs::write(
            &json,
            serde_json::to_string_pretty(self).map_err(io::Error::other)? + "\n",
        )?;
        let mut csv = String::from(
            "experiment,row,metric,unit,a_median,b_median,ratio,ci_low,ci_high,verdict,changed\n",
        );
        for c in &self.changes {
            let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{:?},{}",
                q(&c.experiment),
                q(&c.row),
                q(&c.metric),
                q(&c.unit),
                c.a,
                c.b,
                c.ratio,
                c.ci_low,
                c.ci_high,
                c.verdict,
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
