//! The test command's conformance step when no CPython is compared: the xinterp runner runs
//! every scenario, and the report says that the comparison was skipped and why (never a
//! silent pass).

use std::process::Command;

#[test]
fn without_cpython_the_comparison_says_it_was_skipped() {
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-skip");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_xinterp-conformance"))
        .env("XINTERP_CPYTHON", "none")
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("the runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("CPython comparison skipped: XINTERP_CPYTHON=none"),
        "{stdout}"
    );
    assert!(stdout.contains("result: pass"), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("conformance.md")).unwrap();
    assert!(md.contains("CPython comparison skipped: XINTERP_CPYTHON=none"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("conformance.json")).unwrap()).unwrap();
    let scenarios = json["report"]["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 40, "{} scenarios", scenarios.len());
    assert!(scenarios.iter().all(|s| s["verdict"] != "fail"));
    assert!(json["report"]["cpython"].is_null());
}
