//! Every `assay` command's `--help`, locked by insta snapshots (one file per command:
//! `snapshots/help__<command>.snap`). The commands are found by walking the binary's own
//! "Commands:" lists, so a new subcommand gets a snapshot without anyone remembering to add it.
//! Review a change with `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

use std::process::Command;

/// `assay <path> --help` at a fixed width, with the variables that clap would print as
/// `[env: NAME=value]` removed, so the text is the same on every machine.
fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_INTERNAL_TOKEN")
        .env_remove("ASSAY_PRISM_PYTHON")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "assay {} --help failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under "Commands:" (clap's own `help` left out).
fn subcommands(text: &str) -> Vec<String> {
    let Some((_, rest)) = text.split_once("\nCommands:\n") else {
        return Vec::new();
    };
    rest.lines()
        .take_while(|line| !line.trim().is_empty())
        // A command's name starts at two spaces; a wrapped description starts further in.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_help() {
    let mut seen = Vec::new();
    let mut queue = vec![Vec::<String>::new()];
    while let Some(path) = queue.pop() {
        let text = help(&path);
        let name = if path.is_empty() {
            "assay".to_owned()
        } else {
            path.join("_").replace('-', "_")
        };
        insta::assert_snapshot!(name.as_str(), text);
        for sub in subcommands(&text).into_iter().rev() {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
        seen.push(name);
    }
    // The walk must have found every front-end command (a parsing slip would silently find none).
    for expected in [
        "generate",
        "score",
        "train",
        "eval",
        "bench",
        "datacomp_run",
        "ft_challenge_run",
        "ft_challenge_grade",
        "bon",
        "prm_train",
        "prm_score",
        "prism_check",
        "prism_run",
        "prism_leaderboard",
        "prism_corpus",
        "prism_lock",
        "sn37_round",
        "sn37_competitions",
        "sn37_hash",
        "serve",
        "worker",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} not found; found {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|s| s == "job_child"),
        "the hidden job-child command is not listed"
    );
}
