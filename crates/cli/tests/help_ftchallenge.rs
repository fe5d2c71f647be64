//! `assay ft-challenge run|grade`: the shared model flags in `run`'s help and the one spelling
//! `--model` (not `--base`). (Their `--help` text is locked with every other command's in
//! `help.rs`.)

use std::process::{Command, Output};

fn assay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap()
}

fn help(args: &[&str]) -> String {
    let out = assay(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn run_help_has_the_shared_model_flags() {
    let text = help(&["ft-challenge", "run", "--help"]);
    for flag in ["--model", "--device", "--dtype"] {
        assert!(text.contains(flag), "{flag} missing from\n{text}");
    }
}

#[test]
fn one_spelling_for_the_model() {
    let out = assay(&[
        "ft-challenge",
        "run",
        "--base",
        "x",
        "--train",
        "t",
        "--val",
        "v",
        "--weights",
        "w",
        "--output",
        "o",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--base'"));
}
