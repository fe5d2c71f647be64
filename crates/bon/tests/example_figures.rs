//! The best-of-N example's figures (examples/bon) agree with the files they were read from: the
//! committed `results.json` renders to the committed `analysis.md`, and every accuracy in the
//! example README's table is the one in `results.json`. Regenerate all three with
//! `examples/bon/run_smollm2.sh examples/bon/results` (see the README).

use std::path::PathBuf;

use assay_bon::output::analysis;
use assay_bon::pipeline::BonReport;

fn example(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/bon")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[test]
fn the_readme_figures_are_the_committed_results() {
    let report: BonReport = serde_json::from_str(&example("results/bon/results.json")).unwrap();
    let rendered = analysis(&report);
    if std::env::var_os("ASSAY_WRITE_EXAMPLE_ANALYSIS").is_some() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/bon/results/bon/analysis.md");
        std::fs::write(path, &rendered).unwrap();
    }
    assert_eq!(rendered, example("results/bon/analysis.md"));
    let readme = example("README.md");
    let main = &report.runs[0];
    let last = main.curve.last().unwrap();
    let pass = format!("pass@{} (oracle)", last.n);
    let rows = [
        ("greedy", report.greedy_accuracy),
        ("weighted best-of-N", last.weighted),
        ("majority vote", last.majority),
        ("naive best-of-N", last.naive),
        (pass.as_str(), last.pass),
    ];
    for (label, value) in rows {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no `{label}` row in the example README"));
        assert!(
            row.contains(&format!("| {} ", pct(value))),
            "README row `{row}` but results.json says {}",
            pct(value)
        );
    }
    let head = format!("n = {}", report.config.n);
    assert!(
        readme.contains(&format!("{} problems", report.problems.len())) && readme.contains(&head)
    );
}
