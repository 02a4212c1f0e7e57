//! What a person reads: a CSV of every row, SVG plots, and one self-contained HTML report
//! that opens with the questions the lab answers. Hand-written SVG: two chart shapes do not
//! justify a plotting dependency.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::{Experiment, Results};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One CSV row per measured row: experiment, label, median, min and max ns per operation.
pub fn csv(results: &Results) -> String {
    let mut out = String::from("experiment,label,median_ns,min_ns,max_ns\n");
    for e in &results.experiments {
        for r in &e.rows {
            let label = r.label.replace('"', "\"\"");
            let _ = writeln!(
                out,
                "{},\"{label}\",{:.3},{:.3},{:.3}",
                e.name, r.time.median_ns, r.time.min_ns, r.time.max_ns
            );
        }
    }
    out
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Rows labelled `"<size>: <series>"`, as a log-log chart of ns per item against payload
/// size, one line per series (the channel experiment).
fn size_chart(e: &Experiment) -> Option<String> {
    let mut sizes: Vec<String> = Vec::new();
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for r in &e.rows {
        let (size, name) = r.label.split_once(": ")?;
        let x = match sizes.iter().position(|s| s == size) {
            Some(x) => x,
            None => {
                sizes.push(size.to_string());
                sizes.len() - 1
            }
        };
        match series.iter_mut().find(|(n, _)| n == name) {
            Some((_, points)) => points.push((x, r.time.median_ns)),
            None => series.push((name.to_string(), vec![(x, r.time.median_ns)])),
        }
    }
    let all = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (lo, hi) = (lo.max(1.0).log10().floor(), hi.max(10.0).log10().ceil());
    let (w, h, left, top, plot_w, plot_h) = (760.0, 420.0, 70.0, 40.0, 420.0, 320.0);
    let px = |x: usize| left + plot_w * x as f64 / (sizes.len().max(2) - 1) as f64;
    let py = |y: f64| top + plot_h * (1.0 - (y.max(1.0).log10() - lo) / (hi - lo).max(1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"plot-{}\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<title>{}: ns per item by payload size \
         (log-log)</title>\n",
        e.name,
        escape(&e.name)
    );
    let _ = writeln!(svg, "<rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>");
    for decade in lo as i32..=hi as i32 {
        let y = py(10f64.powi(decade));
        let _ = writeln!(svg, "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{decade} ns</text>", left + plot_w, left - 6.0, y + 4.0);
    }
    for (x, size) in sizes.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(x),
            top + plot_h + 18.0,
            escape(size)
        );
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (x, y) in points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                px(*x),
                py(*y)
            );
        }
        let ly = top + 14.0 + 18.0 * i as f64;
        let _ = writeln!(svg, "<rect x=\"{}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>", left + plot_w + 16.0, ly - 10.0, left + plot_w + 34.0, ly, escape(name));
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// Every row as a horizontal bar of its median (log scale), with its spread.
fn bar_chart(e: &Experiment) -> String {
    let (left, bar_h, w) = (330.0, 22.0, 760.0);
    let h = 40.0 + bar_h * e.rows.len() as f64 + 20.0;
    let hi = e
        .rows
        .iter()
        .map(|r| r.time.max_ns)
        .fold(10.0, f64::max)
        .log10()
        .ceil();
    let px = |ns: f64| (w - left - 20.0) * ns.max(1.0).log10() / hi;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"plot-{}\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<title>{}: median ns per operation \
         (log scale), bars from min to max</title>\n",
        e.name,
        escape(&e.name)
    );
    for (i, r) in e.rows.iter().enumerate() {
        let y = 30.0 + bar_h * i as f64;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 14.0,
            escape(&r.label)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"/>",
            px(r.time.median_ns),
            bar_h - 6.0
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
            left + px(r.time.min_ns),
            left + px(r.time.max_ns),
            y + 8.0,
            y + 8.0
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{:.1} ns</text>",
            left + px(r.time.median_ns) + 6.0,
            y + 14.0,
            r.time.median_ns
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The plot for an experiment: by payload size when its rows are labelled that way, else
/// bars.
pub fn plot(e: &Experiment) -> String {
    if e.name == "channel" {
        if let Some(svg) = size_chart(e) {
            return svg;
        }
    }
    bar_chart(e)
}

/// The questions the seed thread left open, with the ratio (from this run) that answers
/// each, or a plain statement that this run did not measure it.
fn questions(results: &Results) -> Vec<(String, String)> {
    let ratio = |exp: &str, label: &str| {
        results
            .experiments
            .iter()
            .filter(|e| e.name == exp)
            .flat_map(|e| &e.ratios)
            .find(|r| r.label == label)
            .map(|r| r.value)
    };
    let answer = |parts: Vec<(&str, Option<f64>)>| {
        let measured: Vec<String> = parts
            .into_iter()
            .filter_map(|(what, v)| v.map(|v| format!("{what}: {v:.3}x")))
            .collect();
        if measured.is_empty() {
            "not measured in this run".to_string()
        } else {
            measured.join("; ")
        }
    };
    vec![
        (
            "1. Is handing over a view (not its data) cheap, at every size?".into(),
            answer(vec![
                ("zero-copy 16 MiB / 64 B", ratio("channel", "zero-copy 16 MiB / zero-copy 64 B")),
                ("zero-copy / memcpy at 1 MiB", ratio("channel", "1 MiB: zero-copy / memcpy")),
                ("CPython send_buffer / xinterp at 1 MiB", ratio("channel", "1 MiB: CPython buffer / xinterp buffer")),
            ]),
        ),
        (
            "2. Can an object proxy be built by passing pointers over the byte channel, end to end?".into(),
            answer(vec![(
                "forwarded call / (direct call + switch round trip)",
                ratio("proxy", "forwarded call / (direct call + switch round trip)"),
            )]),
        ),
        (
            "3. What does \"switch to the origin on refcount changes\" cost against a plain refcount?".into(),
            answer(vec![("proxy clone+drop / local clone+drop", ratio("proxy", "proxy clone+drop / local clone+drop"))]),
        ),
        (
            "4. What does identity preservation cost, and what does it save?".into(),
            answer(vec![
                ("identity-cache hit / miss", ratio("proxy", "identity hit / identity miss")),
                (
                    "cache on (hit) / cache off, same object",
                    ratio("proxy", "identity cache on (hit) / cache off, same object"),
                ),
            ]),
        ),
        (
            "5. Must release be propagated by switching, or can it be deferred, and what does each cost under contention?".into(),
            answer(vec![
                ("deferred / switch, time per release", ratio("release", "deferred / switch, time per release")),
                ("adaptive / switch, time per release", ratio("release", "adaptive / switch, time per release")),
            ]),
        ),
        (
            "6. A thread pool entering any interpreter against one dedicated thread per interpreter?".into(),
            answer(vec![("pool / dedicated, time per job", ratio("pool", "pool / dedicated, time per job"))]),
        ),
    ]
}

/// Writes `results.csv`, `plots/<experiment>.svg` and `report.html` into `dir`; returns the
/// files written.
pub fn write_all(dir: &Path, results: &Results) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let csv_path = dir.join("results.csv");
    fs::write(&csv_path, csv(results))?;
    written.push(csv_path);
    fs::create_dir_all(dir.join("plots"))?;
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>xinterp lab report</title>\
         <style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;\
         text-align:right}td:first-child{text-align:left}</style></head><body>\n\
         <h1>xinterp lab report</h1>\n",
    );
    let m = &results.machine;
    let _ = writeln!(
        html,
        "<p>{} / {}, {} CPU(s), {} repetition(s) per measurement{}.</p>",
        m.os,
        m.arch,
        m.cpus,
        results.reps,
        if results.quick { ", quick run" } else { "" }
    );
    html.push_str("<h2>The questions</h2>\n<ul>\n");
    for (q, a) in questions(results) {
        let _ = writeln!(html, "<li><b>{}</b><br>{}</li>", escape(&q), escape(&a));
    }
    html.push_str("</ul>\n");
    for e in &results.experiments {
        let svg = plot(e);
        let svg_path = dir.join("plots").join(format!("{}.svg", e.name));
        fs::write(&svg_path, &svg)?;
        written.push(svg_path);
        let _ = writeln!(
            html,
            "<h2>{}</h2>\n<p>{}</p>",
            escape(&e.name),
            escape(&e.question)
        );
        for (k, v) in &e.params {
            let _ = writeln!(html, "<div>{}: {}</div>", escape(k), escape(v));
        }
        html.push_str(&svg);
        html.push_str("<table><tr><th>row</th><th>median ns</th><th>min</th><th>max</th><th>counters</th></tr>\n");
        for r in &e.rows {
            let counters: Vec<String> =
                r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
                escape(&r.label),
                r.time.median_ns,
                r.time.min_ns,
                r.time.max_ns,
                escape(&counters.join(" "))
            );
        }
        html.push_str("</table>\n<h3>Ratios (same run)</h3><ul>\n");
        for ratio in &e.ratios {
            let _ = writeln!(
                html,
                "<li>{}: {:.4}x</li>",
                escape(&ratio.label),
                ratio.value
            );
        }
        html.push_str("</ul>\n");
        for note in &e.notes {
            let _ = writeln!(html, "<p><i>{}</i></p>", escape(note));
        }
    }
    html.push_str("</body></html>\n");
    let html_path = dir.join("report.html");
    fs::write(&html_path, html)?;
    written.push(html_path);
    Ok(written)
}
