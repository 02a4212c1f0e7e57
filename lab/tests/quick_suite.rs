//! Runs the lab's default suite shrunk (`--quick`) and checks what it promises: the JSON
//! results in their schema, the CSV, a plot per experiment, and an HTML report that holds
//! every plot.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("missing `{key}` in {v}"))
}

#[test]
fn the_quick_suite_writes_every_promised_file() {
    let out: PathBuf =
        std::env::temp_dir().join(format!("xinterp-lab-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_xinterp-lab"))
        .args(["--quick", "--reps", "1", "--out"])
        .arg(&out)
        .arg("--trace")
        .arg(out.join("trace.json"))
        .status()
        .expect("the lab runs");
    assert!(status.success());

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let machine = field(&json, "machine");
    assert!(field(machine, "cpus").as_u64().unwrap() >= 1);
    assert!(field(machine, "os").is_string() && field(machine, "arch").is_string());
    assert_eq!(field(&json, "quick"), &Value::Bool(true));
    let experiments = field(&json, "experiments").as_array().unwrap();
    let names: Vec<&str> = experiments
        .iter()
        .map(|e| field(e, "name").as_str().unwrap())
        .collect();
    assert_eq!(names, ["switch", "channel", "proxy", "release", "pool"]);

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut rows_total = 0;
    for e in experiments {
        let name = field(e, "name").as_str().unwrap();
        assert!(field(e, "question").as_str().unwrap().ends_with('?'));
        assert!(field(e, "params").is_array() && field(e, "notes").is_array());
        let rows = field(e, "rows").as_array().unwrap();
        assert!(!rows.is_empty(), "{name} has rows");
        for r in rows {
            let time = field(r, "time");
            let (median, min, max) = (
                field(time, "median_ns").as_f64().unwrap(),
                field(time, "min_ns").as_f64().unwrap(),
                field(time, "max_ns").as_f64().unwrap(),
            );
            assert!(min <= median && median <= max && min > 0.0, "{r}");
            assert!(!field(time, "reps").as_array().unwrap().is_empty());
            assert!(field(r, "counters").is_array());
        }
        rows_total += rows.len();
        for ratio in field(e, "ratios").as_array().unwrap() {
            let value = field(ratio, "value").as_f64().unwrap();
            assert!(value.is_finite() && value > 0.0, "{ratio}");
        }
        // A plot per experiment, written and held by the report.
        let svg = std::fs::read_to_string(out.join("plots").join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains(&format!("id=\"plot-{name}\"")));
        assert!(
            html.contains(&format!("id=\"plot-{name}\"")),
            "report lacks {name}'s plot"
        );
    }
    assert_eq!(csv.lines().count(), 1 + rows_total);
    assert!(csv.starts_with("experiment,label,median_ns,min_ns,max_ns\n"));
    // The timeline: Chrome trace events, begins and ends paired per thread.
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    let events = field(&trace, "traceEvents").as_array().unwrap();
    assert!(!events.is_empty());
    let begins = events.iter().filter(|e| field(e, "ph") == "B").count();
    assert_eq!(begins * 2, events.len());
    // The report opens with the questions, each answered by a figure or marked unmeasured.
    assert!(html.contains("1. Is handing over a view"));
    assert!(html.contains("6. A thread pool"));
    let _ = std::fs::remove_dir_all(&out);
}
