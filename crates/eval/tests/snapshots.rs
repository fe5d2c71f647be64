//! Text people read, locked by insta snapshots: the registry table (`assay eval --list`), the
//! lm-eval results table on hand-set metrics (several tasks, a missing standard error, a second
//! filter), and typical errors with their blame and hint, all found before any model loads.
//! Review a change with `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

use std::path::{Path, PathBuf};

use assay_errors::{Diagnose, chain};
use assay_eval::registry::Registry;
use assay_eval::results::{EvalResults, SampleCounts, TaskResults};
use assay_eval::run::{EvalSettings, registry_table, results_table, run};

#[test]
fn registry_listing() {
    insta::assert_snapshot!(registry_table(&Registry::builtin().unwrap()));
}

#[test]
fn results_table_layout() {
    let registry = Registry::builtin().unwrap();
    let mut results = EvalResults::default();
    let counts = SampleCounts {
        original: 8,
        effective: 4,
    };
    let mut arc = TaskResults::new("arc_easy");
    arc.insert("acc", "none", 0.75, Some(0.25));
    arc.insert("acc_norm", "none", 0.5, Some(0.288_675_134_594_812_9));
    results.add_task(registry.get("arc_easy").unwrap(), counts, arc);
    let mut sorting = TaskResults::new("sn37_word_sorting");
    sorting.insert("reference_loss", "none", 2.345_678, None);
    sorting.insert("reference_loss", "strict", 2.5, Some(0.125));
    results.add_task(registry.get("sn37_word_sorting").unwrap(), counts, sorting);
    let table = results_table(&results);
    assert_eq!(table.lines().count(), 2 + 4, "{table}");
    insta::assert_snapshot!(table);
}

fn described(e: &impl Diagnose, tmp: &Path) -> String {
    format!(
        "{}\nblame: {}\nhint: {}",
        chain(e),
        e.blame(),
        e.hint().unwrap_or_else(|| "-".into())
    )
    .replace(&tmp.display().to_string(), "TMP")
}

fn settings(tasks: &[&str], data: Option<PathBuf>, out: PathBuf) -> EvalSettings {
    EvalSettings {
        model: Some("never-loaded".into()),
        placement: Default::default(),
        tasks: tasks.iter().map(|s| s.to_string()).collect(),
        data,
        limit: None,
        seed: None,
        out,
        max_length: None,
    }
}

#[test]
fn error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let out = tmp.join("results.json");
    let fail = |s: &EvalSettings| run(s, |_| {}).expect_err("bad input");
    let mut texts = Vec::new();
    // No task, and an unknown one.
    texts.push(described(&fail(&settings(&[], None, out.clone())), tmp));
    texts.push(described(
        &fail(&settings(&["no_such_task"], None, out.clone())),
        tmp,
    ));
    // A task file that is not valid TOML, and one with an unknown metric.
    let bad_toml = tmp.join("bad.toml");
    std::fs::write(&bad_toml, "name = \"x\"\nrequest_type = [\n").unwrap();
    let bad_toml = bad_toml.display().to_string();
    texts.push(described(
        &fail(&settings(&[&bad_toml], None, out.clone())),
        tmp,
    ));
    let bad_metric = tmp.join("metric.toml");
    std::fs::write(
        &bad_metric,
        "name = \"mini\"\nrequest_type = \"multiple_choice\"\nprompt = \"{{q}}\"\n\
         target = \"answer\"\nchoices = \"choices\"\nmetrics = [\"accuracy_of_vibes\"]\n\
         [source]\nkind = \"jsonl\"\npath = \"x.jsonl\"\n",
    )
    .unwrap();
    let bad_metric = bad_metric.display().to_string();
    texts.push(described(
        &fail(&settings(&[&bad_metric], None, out.clone())),
        tmp,
    ));
    // A --data file that does not exist, and one with a malformed row.
    let data = tmp.join("docs.jsonl");
    texts.push(described(
        &fail(&settings(&["arc_easy"], Some(data.clone()), out.clone())),
        tmp,
    ));
    std::fs::write(&data, "{\"question\": \"2+2?\"}\n{\"question\": \n").unwrap();
    texts.push(described(
        &fail(&settings(&["arc_easy"], Some(data), out)),
        tmp,
    ));
    insta::assert_snapshot!(texts.join("\n\n"));
}
