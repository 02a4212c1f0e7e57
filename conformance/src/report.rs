//! The report: a scenario table on the terminal, and `conformance.md` and
//! `conformance.json` in the output folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::compare::{ScenarioResult, Verdict};
use crate::deviations::{Deviation, Kind};

/// Everything a run found.
#[derive(Serialize)]
pub struct Report<'a> {
    /// When (unix seconds).
    pub unix_seconds: u64,
    /// The CPython compared with: version and executable.
    pub cpython: Option<(String, String)>,
    /// Why CPython was not compared, if it was not.
    pub cpython_skipped: Option<String>,
    /// Open differences fail the run too.
    pub strict: bool,
    /// Scenario by scenario.
    pub scenarios: Vec<ScenarioResult>,
    /// The deviation file's entries.
    pub deviations: &'a [Deviation],
}

/// Counts for the summary.
#[derive(Default, Serialize)]
pub struct Summary {
    /// Scenarios per topic.
    pub topics: BTreeMap<String, usize>,
    /// Scenarios per verdict label (ids left out).
    pub verdicts: BTreeMap<String, usize>,
    /// Failing scenarios.
    pub failing: Vec<String>,
    /// Notes that ask for an edit (a fixed open entry).
    pub notes: Vec<String>,
}

fn kind_label(v: &Verdict) -> &'static str {
    match v {
        Verdict::Same => "same",
        Verdict::CpythonSkipped => "CPython skipped",
        Verdict::Deliberate(_) => "deliberate deviation",
        Verdict::Open(_) => "DIFFERENT (open)",
        Verdict::Different => "DIFFERENT",
        Verdict::Fail => "FAIL",
    }
}

impl Report<'_> {
    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut sum = Summary::default();
        for s in &self.scenarios {
            *sum.topics.entry(s.topic.clone()).or_default() += 1;
            *sum.verdicts
                .entry(kind_label(&s.verdict).into())
                .or_default() += 1;
            if s.verdict.fails(self.strict) {
                sum.failing.push(s.name.clone());
            }
            for step in &s.steps {
                for note in &step.notes {
                    if note.contains("looks fixed") {
                        sum.notes
                            .push(format!("{} step {}: {note}", s.name, step.n));
                    }
                }
            }
        }
        sum
    }

    fn cpython_line(&self) -> String {
        match (&self.cpython, &self.cpython_skipped) {
            (Some((version, exe)), _) => format!("CPython {version} ({exe})"),
            (None, Some(why)) => format!("CPython comparison skipped: {why}"),
            (None, None) => "CPython comparison skipped".into(),
        }
    }

    fn summary_lines(&self) -> Vec<String> {
        let sum = self.summary();
        let topics: Vec<String> = sum.topics.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let verdicts: Vec<String> = sum
            .verdicts
            .iter()
            .map(|(v, n)| format!("{n} {v}"))
            .collect();
        let mut lines = vec![
            format!(
                "{} scenarios ({}), {} steps",
                self.scenarios.len(),
                topics.join(", "),
                self.scenarios.iter().map(|s| s.steps.len()).sum::<usize>()
            ),
            format!("verdicts: {}", verdicts.join(", ")),
        ];
        let mut open: Vec<String> = Vec::new();
        for s in &self.scenarios {
            if let Verdict::Open(ids) = &s.verdict {
                open.extend(
                    ids.iter()
                        .filter(|id| !open.contains(id))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        if !open.is_empty() {
            lines.push(format!(
                "open differences (not on purpose, reported, awaiting fixes; listed under [[open]] in deviations.toml{}): {}",
                if self.strict { "; failing: --strict" } else { "; --strict makes them fail" },
                open.join(", ")
            ));
        }
        if sum.failing.is_empty() {
            lines.push("result: pass".into());
        } else {
            lines.push(format!("result: FAIL ({})", sum.failing.join(", ")));
        }
        lines.extend(sum.notes);
        lines
    }

    /// The terminal form: the scenario table, then the summary.
    pub fn terminal(&self) -> String {
        let mut rows = vec![[
            "scenario".to_string(),
            "CPython".to_string(),
            "xinterp".to_string(),
            "verdict".to_string(),
        ]];
        for s in &self.scenarios {
            let key = s.key_step();
            let cpython = match &key.cpython {
                Some(c) => format!("#{} {c}", key.n),
                None => "-".into(),
            };
            rows.push([
                s.name.clone(),
                cpython,
                format!("#{} {}", key.n, key.xinterp),
                s.verdict.label(),
            ]);
        }
        let limits = [60, 30, 30, 60];
        let cut = |text: &str, max: usize| -> String {
            if text.chars().count() <= max {
                text.to_string()
            } else {
                let mut t: String = text.chars().take(max - 1).collect();
                t.push('~');
                t
            }
        };
        let widths: Vec<usize> = (0..4)
            .map(|c| {
                rows.iter()
                    .map(|r| cut(&r[c], limits[c]).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = (0..4)
                .map(|c| format!("{:<w$}", cut(&row[c], limits[c]), w = widths[c]))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            if i == 0 {
                let _ = writeln!(
                    out,
                    "{}",
                    widths
                        .iter()
                        .map(|w| "-".repeat(*w))
                        .collect::<Vec<_>>()
                        .join("  ")
                );
            }
        }
        out.push('\n');
        for s in self.scenarios.iter().filter(|s| s.verdict.fails(true)) {
            for step in s.steps.iter().filter(|st| st.verdict.fails(true)) {
                let _ = writeln!(
                    out,
                    "{} step {} ({}): {} -- {}",
                    s.name,
                    step.n,
                    step.step,
                    step.verdict.label(),
                    step.notes.join("; ")
                );
            }
        }
        let _ = writeln!(out, "{}", self.cpython_line());
        for line in self.summary_lines() {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// `conformance.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# MemChannel conformance: xinterp against CPython\n");
        let _ = writeln!(
            md,
            "Each scenario of `conformance/scenarios/` ran on xinterp (checked against the \
             outcome each step expects) and on {}. Deviations are explained by \
             `conformance/deviations.toml`.\n",
            self.cpython_line()
        );
        for line in self.summary_lines() {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md, "\n## Scenarios\n");
        let _ = writeln!(md, "| scenario | topic | CPython | xinterp | verdict |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for s in &self.scenarios {
            let key = s.key_step();
            let _ = writeln!(
                md,
                "| [{}](#{}) | {} | {} | {} | {} |",
                s.name,
                s.name,
                s.topic,
                cell(&key.cpython.as_ref().map(|c| format!("#{} {c}", key.n))),
                cell(&Some(format!("#{} {}", key.n, key.xinterp))),
                s.verdict.label()
            );
        }
        let _ = writeln!(md, "\n## Deviations\n");
        for d in self.deviations {
            let kind = match d.kind {
                Kind::Deliberate => "deliberate",
                Kind::Open => "open: not on purpose, reported, awaiting a fix",
            };
            let _ = writeln!(md, "### {} ({kind})\n", d.id);
            let _ = writeln!(md, "{}\n", d.title);
            let _ = writeln!(md, "{}\n", d.reason.trim());
            if let Some(m) = &d.mission {
                let _ = writeln!(md, "Asked for by: {m}\n");
            }
            if let Some(a) = &d.against {
                let _ = writeln!(md, "Against: {a}\n");
            }
            if let Some(f) = &d.fix {
                let _ = writeln!(md, "Fix: {f}\n");
            }
            for s in &d.shown_by {
                let _ = writeln!(
                    md,
                    "- shown by [{}](#{}) step {}: CPython `{}`",
                    s.scenario, s.scenario, s.step, s.cpython
                );
            }
            for name in &d.see {
                let _ = writeln!(
                    md,
                    "- see [{name}](#{name}) (xinterp's behaviour; CPython 3.13 agrees)"
                );
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Steps, scenario by scenario\n");
        for s in &self.scenarios {
            let _ = writeln!(md, "### {}\n", s.name);
            let _ = writeln!(
                md,
                "`{}`, topic {}: {} Verdict: **{}**.\n",
                s.file,
                s.topic,
                s.about,
                s.verdict.label()
            );
            if let Some(crash) = &s.cpython_crash {
                let _ = writeln!(md, "CPython crashed: {crash}.\n");
            }
            if let Some(error) = &s.cpython_runner_error {
                let _ = writeln!(md, "The CPython runner failed:\n\n```\n{error}\n```\n");
            }
            let _ = writeln!(md, "| # | step | expected | CPython | xinterp | verdict |");
            let _ = writeln!(md, "|---|---|---|---|---|---|");
            for st in &s.steps {
                let mut step = st.step.clone();
                if let Some(remark) = &st.remark {
                    step = format!("{step} ({remark})");
                }
                let mut verdict = st.verdict.label();
                if !st.notes.is_empty() {
                    verdict = format!("{verdict}: {}", st.notes.join("; "));
                }
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    st.n,
                    esc(&step),
                    cell(&Some(st.expected.clone())),
                    cell(&st.cpython),
                    cell(&Some(st.xinterp.clone())),
                    esc(&verdict)
                );
            }
            md.push('\n');
        }
        md
    }

    /// Writes `conformance.md` and `conformance.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let md = dir.join("conformance.md");
        std::fs::write(&md, self.markdown()).map_err(|e| format!("{}: {e}", md.display()))?;
        let json = dir.join("conformance.json");
        let value = serde_json::json!({
            "report": self,
            "summary": self.summary(),
        });
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        std::fs::write(&json, text).map_err(|e| format!("{}: {e}", json.display()))
    }
}

fn esc(text: &str) -> String {
    text.replace('|', "\\|")
}

fn cell(outcome: &Option<String>) -> String {
    match outcome {
        Some(o) => format!("`{}`", o.replace('|', "\\|")),
        None => "-".into(),
    }
}
