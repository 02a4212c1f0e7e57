//! Runs the lab's default suite shrunk (`--quick`) and checks what it promises: the JSON
//! results in their schema (provenance, typed parameters, every number with its interval,
//! ratios with verdicts, the load per experiment), the tidy CSV's columns, a plot per
//! chart, an HTML report with its sections and the seven questions answered; then `compare`
//! of the run with itself, and every bad input refused before any experiment runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("missing `{key}` in {v}"))
}

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xinterp-lab"))
        .args(args)
        .output()
        .expect("the lab runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xinterp-lab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn check_sample(s: &Value) {
    let (median, lo, hi) = (
        field(s, "median").as_f64().unwrap(),
        field(s, "ci_low").as_f64().unwrap(),
        field(s, "ci_high").as_f64().unwrap(),
    );
    assert!(lo <= median && median <= hi, "{s}");
    assert!(field(s, "min").as_f64().unwrap() <= median);
    assert!(field(s, "max").as_f64().unwrap() >= median);
    assert_eq!(field(s, "reps").as_array().unwrap().len(), 3, "{s}");
}

/// Question 7's rows: every mode at every size (moving to one receiver only), a build row
/// per size, the counts each mode must show, and the answer naming the crossovers.
fn check_sharing(sharing: &Value) {
    let rows = field(sharing, "rows").as_array().unwrap();
    let param = |r: &Value, k: &str| field(field(r, "params"), k).clone();
    let counter = |r: &Value, k: &str| field(field(r, "counters"), k).as_f64().unwrap();
    let sizes: Vec<u64> = field(field(sharing, "params"), "entries")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 3, "three sizes");
    for &n in &sizes {
        let at_n = |phase: &str, mode: &str| -> Vec<&Value> {
            rows.iter()
                .filter(|r| {
                    param(r, "entries") == n
                        && param(r, "phase") == phase
                        && (phase == "build" || param(r, "mode") == mode)
                })
                .collect()
        };
        assert_eq!(at_n("build", "").len(), 1, "a build row at N={n}");
        for mode in ["deep copy", "proxy", "frozen", "moved"] {
            let handovers = at_n("hand-over", mode);
            let lookups = at_n("lookups", mode);
            assert!(!handovers.is_empty(), "{mode} at N={n}");
            assert_eq!(handovers.len(), lookups.len());
            for (h, l) in handovers.iter().zip(&lookups) {
                let k = param(h, "receivers").as_u64().unwrap();
                assert_eq!(param(l, "receivers"), k);
                let switches = counter(l, "switches_per_lookup");
                match mode {
                    "deep copy" => {
                        assert!(counter(h, "bytes_copied") >= (k * n * 14) as f64);
                        assert_eq!(switches, 0.0);
                    }
                    "proxy" => {
                        assert_eq!(counter(h, "proxies_created"), k as f64);
                        assert_eq!(switches, 1.0);
                    }
                    "frozen" => {
                        assert_eq!(counter(h, "objects_frozen"), (2 * n + 1) as f64);
                        assert_eq!(switches, 0.0);
                    }
                    _ => {
                        assert_eq!(k, 1, "a move goes to one receiver");
                        assert_eq!(counter(h, "objects_moved"), (2 * n + 1) as f64);
                    }
                }
                let metrics = field(h, "metrics").as_array().unwrap();
                assert_eq!(field(&metrics[0], "name"), "hand-over time");
                assert_eq!(field(&metrics[1], "unit"), "MiB");
            }
        }
    }
    let ratios: Vec<&str> = field(sharing, "ratios")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| field(r, "label").as_str().unwrap())
        .collect();
    for label in [
        "frozen / proxy, lookups per second",
        "copy / frozen, hand-over time",
        "moved / frozen, hand-over time",
        "proxy, K=4 / K=1, lookups per second",
    ] {
        assert!(ratios.iter().any(|r| r.starts_with(label)), "{label}");
    }
    let answer = field(&field(sharing, "answers")[0], "text")
        .as_str()
        .unwrap();
    for part in [
        "A large read-mostly structure",
        "A one-shot small hand-off",
        "costs less",
    ] {
        assert!(answer.contains(part), "{part}: {answer}");
    }
}

#[test]
fn the_quick_suite_writes_every_promised_file_and_compares() {
    let out = scratch("quick");
    let trace = scratch("trace").join("trace.json");
    let o = lab(&[
        "--quick",
        "--reps",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // results.json: provenance, settings and every experiment in its schema.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(field(&json, "schema"), "xinterp-lab/results/2");
    let run = field(&json, "run");
    for key in [
        "started_utc",
        "finished_utc",
        "rustc",
        "lab_version",
        "os",
        "arch",
    ] {
        assert!(!field(run, key).as_str().unwrap().is_empty(), "{key}");
    }
    assert!(field(run, "rustc").as_str().unwrap().starts_with("rustc "));
    assert!(field(run, "cpus").as_u64().unwrap() >= 1);
    assert!(field(run, "command_line").as_array().unwrap().len() > 1);
    assert!(run.get("git_commit").is_some() && run.get("cpu_model").is_some());
    let settings = field(&json, "settings");
    assert_eq!(field(settings, "reps"), 3);
    assert_eq!(field(settings, "quick"), true);
    let experiments = field(&json, "experiments").as_array().unwrap();
    let names: Vec<&str> = experiments
        .iter()
        .map(|e| field(e, "name").as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["switch", "channel", "proxy", "release", "pool", "sharing"]
    );
    let mut quantities = 0;
    let mut answered = Vec::new();
    for e in experiments {
        let name = field(e, "name").as_str().unwrap();
        assert!(field(e, "question").as_str().unwrap().ends_with('?'));
        assert!(field(e, "params").is_object() && field(e, "notes").is_array());
        let load = field(e, "load");
        assert!(
            field(load, "busy").is_boolean() && field(load, "seconds").as_f64().unwrap() >= 0.0
        );
        let rows = field(e, "rows").as_array().unwrap();
        assert!(!rows.is_empty(), "{name} has rows");
        for r in rows {
            assert!(field(r, "params").is_object() && field(r, "counters").is_object());
            let metrics = field(r, "metrics").as_array().unwrap();
            assert!(!metrics.is_empty());
            for m in metrics {
                assert!(!field(m, "unit").as_str().unwrap().is_empty());
                check_sample(m);
            }
            quantities += metrics.len();
        }
        for ratio in field(e, "ratios").as_array().unwrap() {
            let value = field(ratio, "value").as_f64().unwrap();
            assert!(value.is_finite() && value > 0.0, "{ratio}");
            assert!(field(ratio, "ci_low").as_f64().unwrap() <= value);
            assert!(field(ratio, "ci_high").as_f64().unwrap() >= value);
            let verdict = field(ratio, "verdict").as_str().unwrap();
            assert!(["above", "below", "inconclusive"].contains(&verdict));
        }
        for a in field(e, "answers").as_array().unwrap() {
            let text = field(a, "text").as_str().unwrap();
            // Each answer names its measurement and carries intervals.
            assert!(text.starts_with("Measured by ") || text.starts_with("Yes. Measured by "));
            assert!(text.contains("95% CI"), "{text}");
            // And every figure it cites is in the run.
            assert!(!text.contains(xinterp_lab::results::MISSING), "{text}");
            answered.push(field(a, "question").as_u64().unwrap());
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3, 4, 5, 6, 7]);
    // Question 3's rows: the eager proxy switches twice per clone + drop, ours never.
    let proxy = &experiments[2];
    let rows = field(proxy, "rows").as_array().unwrap();
    let switches = |label_start: &str| {
        let r = rows
            .iter()
            .find(|r| field(r, "label").as_str().unwrap().starts_with(label_start))
            .unwrap();
        field(r, "counters")
            .get("switches_per_op")
            .map_or(0.0, |v| v.as_f64().unwrap())
    };
    assert_eq!(switches("proxy entering the origin on every"), 2.0);
    assert_eq!(switches("proxy, ours"), 0.0);
    // Question 5: the bound is a parameter, and each strategy is measured below it and at it.
    let release = &experiments[3];
    assert_eq!(field(field(release, "params"), "deferred_limit"), 1024);
    let regimes: Vec<&str> = field(release, "rows")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| field(field(r, "params"), "regime").as_str().unwrap())
        .collect();
    assert!(regimes.contains(&"below bound") && regimes.contains(&"at bound"));
    check_sharing(&experiments[5]);

    // results.csv: tidy, one line per measured quantity.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with(
        "experiment,row,metric,unit,median,ci_low,ci_high,min,max,n,busy_machine,started_utc,"
    ));
    for column in [
        "size_bytes",
        "series",
        "strategy",
        "regime",
        "busy_share",
        "mode",
        "entries",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "{column} in {header}"
        );
    }
    assert_eq!(csv.lines().count(), 1 + quantities);

    // Plots and the report.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for plot in [
        "switch",
        "channel",
        "channel-throughput",
        "proxy",
        "release",
        "release-latency",
        "release-sweep",
        "pool",
        "pool-latency",
        "sharing",
        "sharing-lookups",
    ] {
        let svg = std::fs::read_to_string(out.join("plots").join(format!("{plot}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("fill=\"#FFFFFF\""),
            "{plot}"
        );
        assert!(
            html.contains(&format!("id=\"plot-{plot}\"")),
            "report lacks {plot}"
        );
    }
    assert!(std::fs::read_to_string(out.join("plots/channel.svg"))
        .unwrap()
        .contains("payload size (log scale)"));
    for section in [
        "id=\"provenance\"",
        "id=\"questions\"",
        "id=\"exp-release\"",
        "Machine load",
    ] {
        assert!(html.contains(section), "report lacks {section}");
    }
    for q in 1..=7 {
        assert!(html.contains(&format!("id=\"q{q}\"")));
    }
    assert!(!html.contains("not measured in this run"));

    // The timeline: Chrome trace events, begins and ends paired, and every thread that held
    // an interpreter named by a metadata event, as is the process.
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = field(&t, "traceEvents").as_array().unwrap();
    let (metadata, holdings): (Vec<&Value>, Vec<&Value>) =
        events.iter().partition(|e| field(e, "ph") == "M");
    let begins = holdings.iter().filter(|e| field(e, "ph") == "B").count();
    assert!(begins > 0 && begins * 2 == holdings.len());
    let named = |kind: &str| -> Vec<&Value> {
        metadata
            .iter()
            .filter(|e| field(e, "name") == kind)
            .map(|e| field(field(e, "args"), "name"))
            .collect()
    };
    assert_eq!(named("process_name").len(), 1);
    let threads: std::collections::BTreeSet<u64> = holdings
        .iter()
        .map(|e| field(e, "tid").as_u64().unwrap())
        .collect();
    let thread_names = named("thread_name");
    assert_eq!(thread_names.len(), threads.len(), "one name per thread");
    for phase in ["pool worker", "dedicated"] {
        assert!(
            thread_names
                .iter()
                .any(|n| n.as_str().unwrap().starts_with(phase)),
            "a {phase} thread"
        );
    }
    let o_stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o_stdout.contains(&format!("trace: {} events written", holdings.len())),
        "{o_stdout}"
    );

    // compare: the run against itself agrees everywhere.
    let cmp = scratch("compare");
    let o = lab(&[
        "compare",
        out.to_str().unwrap(),
        out.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("0 of {quantities} quantities changed")),
        "{stdout}"
    );
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("compare.json")).unwrap()).unwrap();
    assert_eq!(field(&c, "changes").as_array().unwrap().len(), quantities);
    assert!(std::fs::read_to_string(cmp.join("compare.html"))
        .unwrap()
        .contains("id=\"summary\""));
    assert!(cmp.join("compare.csv").exists());

    for dir in [&out, &cmp, &trace.parent().unwrap().to_path_buf()] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every bad input is refused with a message and a non-zero exit before any experiment
/// runs (no table is printed, nothing is written).
#[test]
fn bad_input_fails_before_any_experiment_runs() {
    let base = scratch("bad");
    std::fs::create_dir_all(base.join("full")).unwrap();
    std::fs::write(base.join("full/results.json"), "{}").unwrap();
    std::fs::write(base.join("a-file"), "x").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--out".into(), s(&base.join("a-file"))],
            "not a folder",
        ),
        (
            vec!["--out".into(), s(&base.join("full"))],
            "already holds files",
        ),
        (
            vec!["--out".into(), "/proc/xinterp-lab/x".into()],
            "cannot be created",
        ),
        (
            vec!["--trace".into(), "/proc/xinterp-lab/trace.json".into()],
            "--trace",
        ),
        (vec!["--trace".into(), s(&base)], "is a folder"),
        (
            vec![
                "--receivers".into(),
                "64".into(),
                "--views".into(),
                "10000000".into(),
                "release".into(),
            ],
            "memory",
        ),
        (
            vec!["--views".into(), "10000001".into()],
            "not in 1..=10000000",
        ),
        (vec!["--reps".into(), "-1".into()], "--reps"),
        (vec!["--reps".into(), "0".into()], "not in 1..=1000"),
        (
            vec!["--busy-share".into(), "-0.1".into()],
            "--busy-share must be between",
        ),
        (
            vec!["--busy-share".into(), "1".into()],
            "--busy-share must be between",
        ),
        (vec!["--sweep".into(), "0.5,2".into()], "--sweep"),
        (vec!["nope".into()], "invalid value 'nope'"),
        (
            vec!["compare".into(), s(&base.join("x")), s(&base.join("y"))],
            "cannot read",
        ),
    ];
    for (args, expect) in cases {
        // Shrunk, should a case run after all; not for the memory case, which --quick
        // would shrink until it fits.
        let mut all: Vec<String> = vec!["--quick".into()];
        if args[0] == "compare" || args.iter().any(|a| a == "10000000") {
            all.clear();
        }
        all.extend(args.iter().cloned());
        if !all.iter().any(|a| a == "--out") && args[0] != "compare" {
            all.extend(["--out".into(), s(&base.join("never"))]);
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = lab(&refs);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("== "),
            "{args:?} ran an experiment: {stdout}"
        );
        assert!(
            !base.join("never").exists(),
            "{args:?} wrote an output folder"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
