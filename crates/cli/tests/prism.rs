//! `assay prism check --json` prints only JSON on stdout (issue #19, item 11), whatever the
//! verdict; the verdict is the exit status.

use std::process::Command;

fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in assay_prism::EXAMPLE_BUNDLE {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

fn check_json(dir: &std::path::Path) -> (bool, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["prism", "check", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    (out.status.success(), value)
}

#[test]
fn check_json_prints_only_json() {
    let dir = example_dir();
    let (ok, report) = check_json(dir.path());
    assert!(ok);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert!(report["distributed"]["compliant"].as_bool().unwrap());
    std::fs::write(dir.path().join("helpers.py"), "import socket\n").unwrap();
    let (ok, report) = check_json(dir.path());
    assert!(!ok, "a refused bundle exits non-zero");
    assert_eq!(report["findings"][0]["rule"], "prism:no-network");
}
