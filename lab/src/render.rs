//! What a person reads: the terminal tables, a tidy CSV, SVG plots and one self-contained
//! HTML report that opens with the lab's questions, each answered by a named measurement
//! with its interval.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::plot::Chart;
use crate::results::{Experiment, Results, Verdict};

/// The lab's questions, numbered as in the report, with the experiment that answers each.
pub const QUESTIONS: [(u32, &str, &str); 7] = [
    (
        1,
        "Is handing over a view (not its data) cheap, at every size?",
        "channel",
    ),
    (
        2,
        "Can an object proxy be built by passing pointers over the byte channel, end to end?",
        "proxy",
    ),
    (
        3,
        "What does \"switch to the origin on refcount changes\" cost against a plain refcount?",
        "proxy",
    ),
    (
        4,
        "What does identity preservation cost, and what does it save?",
        "proxy",
    ),
    (
        5,
        "Must release be propagated by switching, or can it be deferred, and what does each \
         cost under contention?",
        "release",
    ),
    (
        6,
        "A thread pool whose threads enter any interpreter, against one dedicated background \
         thread per interpreter fed through a channel: throughput and latency for the same work?",
        "pool",
    ),
    (
        7,
        "Proxies or deep immutability: what does each cost, and for which access patterns does \
         each win?",
        "sharing",
    ),
];

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints an experiment's table on stdout, in lines of at most about 120 characters.
pub fn print_table(e: &Experiment) {
    println!("\n== {}: {}", e.name, e.question);
    let params: Vec<String> = e
        .params
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect();
    for line in wrap(&params, 110) {
        println!("   {line}");
    }
    let width = e
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for r in &e.rows {
        let m = r.headline();
        println!(
            "   {:<width$}  {}  n={}",
            r.label,
            m.show(),
            m.sample.reps.len()
        );
        for m in &r.metrics[1..] {
            println!("   {:<width$}    {}: {}", "", m.name, m.show());
        }
        let counters: Vec<String> = r
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        for line in wrap(&counters, 100) {
            println!("   {:<width$}    [{line}]", "");
        }
    }
    for ratio in &e.ratios {
        println!("   ratio  {}: {}", ratio.label, ratio.show());
    }
    for note in &e.notes {
        println!("   note   {note}");
    }
    if let Some(load) = &e.load {
        println!("   load   {}", load.describe());
    }
}

fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.len() + 1 + item.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The fixed columns of `results.csv`; one column per parameter name follows them.
pub const CSV_COLUMNS: [&str; 12] = [
    "experiment",
    "row",
    "metric",
    "unit",
    "median",
    "ci_low",
    "ci_high",
    "min",
    "max",
    "n",
    "busy_machine",
    "started_utc",
];

/// A tidy CSV: one line per measured quantity (row and metric), with the experiment's and
/// the row's parameters as columns (empty where a parameter does not apply).
pub fn csv(results: &Results) -> String {
    let mut param_names: Vec<String> = Vec::new();
    for e in &results.experiments {
        for r in &e.rows {
            for k in e.params.keys().chain(r.params.keys()) {
                if !param_names.contains(k) {
                    param_names.push(k.clone());
                }
            }
        }
    }
    let mut out = CSV_COLUMNS.join(",");
    for p in &param_names {
        out.push(',');
        out.push_str(&csv_field(p));
    }
    out.push('\n');
    for e in &results.experiments {
        let busy = e.load.as_ref().is_some_and(|l| l.busy);
        for r in &e.rows {
            for m in &r.metrics {
                let s = &m.sample;
                let mut line = [
                    csv_field(&e.name),
                    csv_field(&r.label),
                    csv_field(&m.name),
                    csv_field(&m.unit),
                    format!("{}", s.median),
                    format!("{}", s.ci_low),
                    format!("{}", s.ci_high),
                    format!("{}", s.min),
                    format!("{}", s.max),
                    s.reps.len().to_string(),
                    busy.to_string(),
                    results.run.started_utc.clone(),
                ]
                .join(",");
                for p in &param_names {
                    line.push(',');
                    if let Some(v) = r.params.get(p).or_else(|| e.params.get(p)) {
                        line.push_str(&csv_field(&value_text(v)));
                    }
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

/// Every chart of an experiment: its extra charts, then the default dot chart of its rows.
pub fn charts(e: &Experiment) -> Vec<Chart> {
    let mut all = e.charts.clone();
    if !e.rows.is_empty() && !all.iter().any(|c| c.id == e.name) {
        all.push(Chart::of_rows(e));
    }
    all
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;\
color:#111;background:#fff;line-height:1.4}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right;vertical-align:top}td:first-child,th:first-child{text-align:left}\
td.l{text-align:left}.busy{background:#fde2e1;border:1px solid #d62728;padding:.5em}\
.inc{color:#8a5a00}.q{margin-bottom:1em}.params code{background:#f3f3f3;padding:0 3px}\
figure{margin:1em 0}svg{max-width:100%;height:auto}small{color:#555}";

/// The HTML report.
pub fn html(results: &Results, svgs: &[(String, String)]) -> String {
    let run = &results.run;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>xinterp lab report</title><style>{STYLE}</style></head><body>\n\
         <h1>xinterp lab report</h1>\n"
    );
    let settings: Vec<String> = results
        .settings
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect();
    let _ =
        writeln!(
        h,
        "<p id=\"provenance\">Run started {} (UTC), finished {}. Commit {}{}; {}; lab {}{}.<br>\
         {}, {} CPU(s), {} / {}; host {}.<br>Command: <code>{}</code><br>Settings: \
         <code>{}</code>. Every number is the median over the repetitions with its 95% \
         confidence interval (order statistics), printed to the precision that interval supports.</p>",
        escape(&run.started_utc),
        escape(&run.finished_utc),
        escape(run.git_commit.as_deref().unwrap_or("unknown (not a git checkout)")),
        match run.git_dirty {
            Some(true) => " with uncommitted changes",
            _ => "",
        },
        escape(&run.rustc),
        escape(&run.lab_version),
        if run.debug_assertions {
            ", DEBUG BUILD: timings are not meaningful"
        } else {
            ""
        },
        escape(run.cpu_model.as_deref().unwrap_or("unknown CPU")),
        run.cpus,
        escape(&run.os),
        escape(&run.arch),
        escape(run.hostname.as_deref().unwrap_or("?")),
        escape(&run.command_line.join(" ")),
        escape(&settings.join(" ")),
    );
    let busy: Vec<&str> = results
        .experiments
        .iter()
        .filter(|e| e.load.as_ref().is_some_and(|l| l.busy))
        .map(|e| e.name.as_str())
        .collect();
    if !busy.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"busy\" id=\"busy\"><b>Busy machine:</b> other processes used more than \
             {:.0}% of the CPUs while {} ran; those timings may be disturbed (see each \
             experiment's load line).</p>",
            crate::env::BUSY_SHARE * 100.0,
            escape(&busy.join(", "))
        );
    }
    // The lab's questions, when a built-in experiment ran (a run of one's own experiments
    // only has no use for seven "not measured" lines).
    let builtin = results
        .experiments
        .iter()
        .any(|e| QUESTIONS.iter().any(|(_, _, name)| *name == e.name) || !e.answers.is_empty());
    if builtin {
        h.push_str("<h2 id=\"questions\">The questions</h2>\n");
    }
    for (n, q, exp) in QUESTIONS.into_iter().filter(|_| builtin) {
        let answers: Vec<&str> = results
            .experiments
            .iter()
            .flat_map(|e| &e.answers)
            .filter(|a| a.question == n)
            .map(|a| a.text.as_str())
            .collect();
        let _ = write!(
            h,
            "<div class=\"q\" id=\"q{n}\"><b>{n}. {}</b><br>",
            escape(q)
        );
        if answers.is_empty() {
            let _ = write!(
                h,
                "not measured in this run (the <code>{exp}</code> experiment answers it)"
            );
        } else {
            h.push_str(
                &answers
                    .iter()
                    .map(|a| escape(a))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            );
        }
        h.push_str("</div>\n");
    }
    for e in &results.experiments {
        let _ = writeln!(
            h,
            "<h2 id=\"exp-{0}\">{0}</h2>\n<p>{1}</p>",
            escape(&e.name),
            escape(&e.question)
        );
        let params: Vec<String> = e
            .params
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", escape(k), escape(&value_text(v))))
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"params\">Parameters: {}</p>",
            params.join(" ")
        );
        if let Some(load) = &e.load {
            let _ = writeln!(
                h,
                "<p{}>Machine load: {}</p>",
                if load.busy { " class=\"busy\"" } else { "" },
                escape(&load.describe())
            );
        }
        for (id, svg) in svgs
            .iter()
            .filter(|(id, _)| charts(e).iter().any(|c| &c.id == id))
        {
            let _ = writeln!(h, "<figure id=\"plot-{}\">{svg}</figure>", escape(id));
        }
        h.push_str(
            "<table><tr><th>row</th><th>metric</th><th>median (95% CI)</th><th>n</th></tr>\n",
        );
        for r in &e.rows {
            for (i, m) in r.metrics.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
                    if i == 0 {
                        escape(&r.label)
                    } else {
                        String::new()
                    },
                    escape(&m.name),
                    escape(&m.show()),
                    m.sample.reps.len()
                );
            }
        }
        h.push_str("</table>\n");
        if e.rows.iter().any(|r| !r.counters.is_empty()) {
            h.push_str("<details><summary>Counters per row</summary><table>\n");
            for r in e.rows.iter().filter(|r| !r.counters.is_empty()) {
                let counters: Vec<String> = r
                    .counters
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_text(v)))
                    .collect();
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"l\"><small>{}</small></td></tr>",
                    escape(&r.label),
                    escape(&counters.join(", "))
                );
            }
            h.push_str("</table></details>\n");
        }
        if !e.ratios.is_empty() {
            h.push_str("<h3>Ratios (same run)</h3><ul>\n");
            for ratio in &e.ratios {
                let _ = writeln!(
                    h,
                    "<li{}>{}: {}</li>",
                    if ratio.verdict == Verdict::Inconclusive {
                        " class=\"inc\""
                    } else {
                        ""
                    },
                    escape(&ratio.label),
                    escape(&ratio.show())
                );
            }
            h.push_str("</ul>\n");
        }
        for note in &e.notes {
            let _ = writeln!(h, "<p><i>{}</i></p>", escape(note));
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// Writes `results.json`, `results.csv`, `plots/<chart>.svg` and `report.html` into `dir`
/// (which must exist) and returns the files written.
pub fn write_all(dir: &Path, results: &Results) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(results).map_err(io::Error::other)?;
    fs::write(&json, text + "\n")?;
    written.push(json);
    let csv_path = dir.join("results.csv");
    fs::write(&csv_path, csv(results))?;
    written.push(csv_path);
    fs::create_dir_all(dir.join("plots"))?;
    let mut svgs = Vec::new();
    for e in &results.experiments {
        for chart in charts(e) {
            let svg = chart.svg();
            let path = dir.join("plots").join(format!("{}.svg", chart.id));
            fs::write(&path, &svg)?;
            written.push(path);
            svgs.push((chart.id.clone(), svg));
        }
    }
    let html_path = dir.join("report.html");
    fs::write(&html_path, html(results, &svgs))?;
    written.push(html_path);
    Ok(written)
}
