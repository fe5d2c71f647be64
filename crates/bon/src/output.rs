//! The output folder: a dataset in the Hugging Face Hub layout (`data/*.jsonl`, the same rows as
//! `data/*.parquet`, and a card with YAML metadata), `results.json`, plots and a Markdown analysis.

use std::fmt::Write as _;
use std::path::Path;

use assay_tables::{ParquetCodec, ParquetOptions, Row, write_jsonl, write_parquet};
use serde::Serialize;

use crate::error::{BonError, Result};
use crate::pipeline::{BonReport, Sample, TemperatureRun};
use crate::plot::{Chart, Series};
use crate::problems::to_row;
use assay_eval::math::select::Aggregation;

/// Names and sources of the models, for the card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// Generator as given.
    pub generator: String,
    /// Reward model as given.
    pub prm: String,
    /// Where the problems came from.
    pub problems: String,
    /// The command line.
    pub command: String,
    /// Where the models ran (device and dtype).
    pub placement: String,
}

/// One row of `data/problems.jsonl`.
#[derive(Debug, Serialize)]
struct ProblemRow<'a> {
    unique_id: &'a str,
    problem: &'a str,
    solution: &'a str,
    answer: &'a str,
    subject: &'a str,
    level: i64,
    gold: &'a str,
    greedy_solution: &'a str,
    greedy_answer: &'a str,
    greedy_correct: bool,
    best_of_n_solution: &'a str,
    best_of_n_answer: &'a str,
    best_of_n_correct: bool,
    majority_answer: &'a str,
    majority_correct: bool,
    naive_answer: &'a str,
    naive_correct: bool,
    samples: Vec<&'a str>,
    sample_answers: Vec<&'a str>,
    sample_scores: Vec<f64>,
    sample_step_scores: Vec<&'a [f64]>,
    sample_correct: Vec<bool>,
}

/// One row of `data/samples.jsonl`: every sample of every temperature.
#[derive(Debug, Serialize)]
struct SampleRow<'a> {
    unique_id: &'a str,
    temperature: f32,
    sample_index: usize,
    completion: &'a str,
    answer: &'a str,
    correct: bool,
    score: f64,
    step_scores: &'a [f64],
    tokens: usize,
}

/// Writes everything under `dir`.
pub fn write_all(dir: &Path, report: &BonReport, provenance: &Provenance) -> Result<()> {
    let data = dir.join("data");
    let plots = dir.join("plots");
    for d in [&data, &plots] {
        std::fs::create_dir_all(d).map_err(|e| BonError::write(d, e))?;
    }
    write_table(&data, "problems", problem_rows(report))?;
    write_table(&data, "samples", sample_rows(report))?;
    let results = serde_json::to_string_pretty(report).expect("report serialises");
    write(&dir.join("results.json"), &results)?;
    n_chart(report).write(&plots.join("accuracy_vs_n"))?;
    temperature_chart(report).write(&plots.join("accuracy_vs_temperature"))?;
    write(&dir.join("analysis.md"), &analysis(report))?;
    write(&dir.join("README.md"), &card(report, provenance))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| BonError::write(path, e))
}

/// Writes `rows` twice under `data`: `{name}.jsonl` and `{name}.parquet` (Zstandard), the two
/// formats the Hub reads; both hold the same JSON rows.
fn write_table<T: Serialize>(data: &Path, name: &str, rows: Vec<T>) -> Result<()> {
    let rows: Vec<Row> = rows.iter().map(to_row).collect();
    write_jsonl(&data.join(format!("{name}.jsonl")), &rows)?;
    let options = ParquetOptions {
        codec: ParquetCodec::Zstd(3),
        ..ParquetOptions::default()
    };
    Ok(write_parquet(
        &data.join(format!("{name}.parquet")),
        &rows,
        &options,
    )?)
}

fn problem_rows(r: &BonReport) -> Vec<ProblemRow<'_>> {
    let main = &r.runs[0];
    r.problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (greedy, sel, samples) = (&r.greedy[i], &main.selections[i], &main.samples[i]);
            ProblemRow {
                unique_id: &p.unique_id,
                problem: &p.problem,
                solution: &p.solution,
                answer: &p.answer,
                subject: &p.subject,
                level: p.level,
                gold: &r.gold[i],
                greedy_solution: &greedy.text,
                greedy_answer: &greedy.pred,
                greedy_correct: greedy.correct,
                best_of_n_solution: &samples[sel.weighted.index].text,
                best_of_n_answer: &sel.weighted.pred,
                best_of_n_correct: sel.weighted.correct,
                majority_answer: &sel.majority.pred,
                majority_correct: sel.majority.correct,
                naive_answer: &sel.naive.pred,
                naive_correct: sel.naive.correct,
                samples: samples.iter().map(|s| s.text.as_str()).collect(),
                sample_answers: samples.iter().map(|s| s.pred.as_str()).collect(),
                sample_scores: samples.iter().map(|s| s.score).collect(),
                sample_step_scores: samples.iter().map(|s| s.step_scores.as_slice()).collect(),
                sample_correct: samples.iter().map(|s| s.correct).collect(),
            }
        })
        .collect()
}

fn sample_rows(r: &BonReport) -> Vec<SampleRow<'_>> {
    let mut rows = Vec::new();
    for run in &r.runs {
        for (p, samples) in r.problems.iter().zip(&run.samples) {
            for (k, s) in samples.iter().enumerate() {
                rows.push(SampleRow {
                    unique_id: &p.unique_id,
                    temperature: run.temperature,
                    sample_index: k,
                    completion: &s.text,
                    answer: &s.pred,
                    correct: s.correct,
                    score: s.score,
                    step_scores: &s.step_scores,
                    tokens: s.tokens,
                });
            }
        }
    }
    rows
}

const WEIGHTED: [u8; 3] = [214, 39, 40];
const MAJORITY: [u8; 3] = [31, 119, 180];
const NAIVE: [u8; 3] = [44, 160, 44];
const PASS: [u8; 3] = [148, 103, 189];
const GREEDY: [u8; 3] = [90, 90, 90];

fn series(label: &str, color: [u8; 3], values: Vec<f64>, dashed: bool) -> Series {
    Series {
        label: label.into(),
        color,
        values: values.into_iter().map(Some).collect(),
        dashed,
    }
}

/// Accuracy vs n at the main temperature, with greedy as a flat reference.
pub fn n_chart(r: &BonReport) -> Chart {
    let curve = &r.runs[0].curve;
    let col = |f: fn(&crate::pipeline::CurvePoint) -> f64| curve.iter().map(f).collect::<Vec<_>>();
    Chart {
        title: format!("Accuracy vs n (T = {})", r.runs[0].temperature),
        x_label: "n (first n samples)".into(),
        y_label: "accuracy".into(),
        x_ticks: curve.iter().map(|c| c.n.to_string()).collect(),
        series: vec![
            series("weighted BoN", WEIGHTED, col(|c| c.weighted), false),
            series("majority", MAJORITY, col(|c| c.majority), false),
            series("naive BoN", NAIVE, col(|c| c.naive), false),
            series("pass@n (oracle)", PASS, col(|c| c.pass), true),
            series("greedy", GREEDY, vec![r.greedy_accuracy; curve.len()], true),
        ],
    }
}

/// Accuracy at the full n vs temperature.
pub fn temperature_chart(r: &BonReport) -> Chart {
    let mut runs: Vec<&TemperatureRun> = r.runs.iter().collect();
    runs.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
    let at_n = |f: fn(&crate::pipeline::CurvePoint) -> f64| {
        runs.iter()
            .map(|run| run.curve.last().map_or(0.0, f))
            .collect::<Vec<_>>()
    };
    Chart {
        title: format!("Accuracy at n = {} vs temperature", r.config.n),
        x_label: "temperature".into(),
        y_label: "accuracy".into(),
        x_ticks: runs.iter().map(|run| run.temperature.to_string()).collect(),
        series: vec![
            series("weighted BoN", WEIGHTED, at_n(|c| c.weighted), false),
            series("majority", MAJORITY, at_n(|c| c.majority), false),
            series("naive BoN", NAIVE, at_n(|c| c.naive), false),
            series(
                "single sample",
                PASS,
                runs.iter().map(|r| r.sample_accuracy).collect(),
                true,
            ),
            series("greedy", GREEDY, vec![r.greedy_accuracy; runs.len()], true),
        ],
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Accuracy tables and the problems where weighted best-of-N and greedy disagree, with the reason:
/// how many samples carried each answer and how much reward each group collected.
pub fn analysis(r: &BonReport) -> String {
    let main = &r.runs[0];
    let mut o = format!(
        "# Best-of-N analysis\n\n{} problems, n = {}, T = {}, aggregation {}, seed {}.\n\nGreedy accuracy: **{}**; mean single-sample accuracy at T = {}: {}.\n\n",
        r.problems.len(),
        r.config.n,
        main.temperature,
        aggregation_name(r.config.aggregation),
        r.config.seed,
        pct(r.greedy_accuracy),
        main.temperature,
        pct(main.sample_accuracy)
    );
    o += &formula(r.config.aggregation);
    o += &curve_table(r);
    o += &temperature_table(r);
    o += "\n## Solved by weighted best-of-N, not by greedy\n\n";
    o += &disagreements(r, |i| {
        main.selections[i].weighted.correct && !r.greedy[i].correct
    });
    o += "\n## Solved by greedy, not by weighted best-of-N\n\n";
    o += &disagreements(r, |i| {
        !main.selections[i].weighted.correct && r.greedy[i].correct
    });
    o += "\n## Weighted and majority disagree on correctness\n\n";
    o += &disagreements(r, |i| {
        main.selections[i].weighted.correct != main.selections[i].majority.correct
    });
    o
}

/// The aggregation's name as flags and reports write it (`last`, `min`, `prod`).
pub fn aggregation_name(a: Aggregation) -> &'static str {
    match a {
        Aggregation::Last => "last",
        Aggregation::Min => "min",
        Aggregation::Prod => "prod",
    }
}

fn sweep_list(temperatures: &[f32]) -> String {
    if temperatures.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = temperatures.iter().map(f32::to_string).collect();
    parts.join(", ")
}

/// How every figure of the report is computed, stated once in the report itself.
pub fn formula(aggregation: Aggregation) -> String {
    let step = match aggregation {
        Aggregation::Last => "the reward of the last step",
        Aggregation::Min => "the smallest step reward",
        Aggregation::Prod => "the product of the step rewards",
    };
    format!(
        "## How the scores are computed\n\n\
         - A sample's step rewards are `sigmoid(w · h + b)` of the reward model's value head at the newline \
         closing each line; its score `s` is {step} (aggregation `{name}`).\n\
         - A sample is correct when its extracted, normalised answer equals the gold answer (`math_equal`).\n\
         - Over the first n samples of a problem: **weighted** picks the answer `a` maximising \
         `sum of s over samples whose answer is a` (answers grouped by their symbolic form); **majority** \
         picks the most frequent answer; **naive** picks the sample with the largest `s`; **pass@n** counts \
         the problem solved when any of the n is correct. Ties go to the earliest sample.\n\
         - Each accuracy is `problems whose pick is correct / problems`; **single sample** is \
         `correct samples / all samples`; **greedy** is one temperature-0 solution per problem.\n\n",
        name = aggregation_name(aggregation),
    )
}

fn curve_table(r: &BonReport) -> String {
    let mut o = String::from(
        "## Accuracy vs n\n\n| n | weighted | majority | naive | pass@n | greedy |\n|---|---|---|---|---|---|\n",
    );
    for c in &r.runs[0].curve {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            c.n,
            pct(c.weighted),
            pct(c.majority),
            pct(c.naive),
            pct(c.pass),
            pct(r.greedy_accuracy)
        );
    }
    o
}

fn temperature_table(r: &BonReport) -> String {
    let mut o = format!(
        "\n## Accuracy at n = {} vs temperature\n\n| T | weighted | majority | naive | pass@n | single sample |\n|---|---|---|---|---|---|\n",
        r.config.n
    );
    for run in &r.runs {
        if let Some(c) = run.curve.last() {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                run.temperature,
                pct(c.weighted),
                pct(c.majority),
                pct(c.naive),
                pct(c.pass),
                pct(run.sample_accuracy)
            );
        }
    }
    o
}

fn disagreements(r: &BonReport, keep: impl Fn(usize) -> bool) -> String {
    let main = &r.runs[0];
    let mut o = String::new();
    for i in (0..r.problems.len()).filter(|&i| keep(i)) {
        let _ = writeln!(
            o,
            "- `{}` (gold `{}`): greedy answered `{}`; weighted picked `{}`, majority `{}`. {}",
            r.problems[i].unique_id,
            r.gold[i],
            r.greedy[i].pred,
            main.selections[i].weighted.pred,
            main.selections[i].majority.pred,
            group_summary(&main.samples[i])
        );
    }
    if o.is_empty() {
        o = "- none\n".into();
    }
    o
}

/// "answer: k samples, reward sum s" for the largest groups (by exact normalised answer).
fn group_summary(samples: &[Sample]) -> String {
    let mut groups: Vec<(String, usize, f64, bool)> = Vec::new();
    for s in samples {
        match groups.iter_mut().find(|g| g.0 == s.pred) {
            Some(g) => {
                g.1 += 1;
                g.2 += s.score;
            }
            None => groups.push((s.pred.clone(), 1, s.score, s.correct)),
        }
    }
    groups.sort_by(|a, b| b.2.total_cmp(&a.2));
    let parts: Vec<String> = groups
        .iter()
        .take(3)
        .map(|(p, k, sum, ok)| {
            let mark = if *ok { " ✓" } else { "" };
            format!("`{p}`{mark}: {k} samples, reward sum {sum:.2}")
        })
        .collect();
    format!("Groups by reward: {}.", parts.join("; "))
}

/// The dataset card: YAML metadata (configs, task, size) and how the data was built.
pub fn card(r: &BonReport, p: &Provenance) -> String {
    let main = &r.runs[0];
    let last = main.curve.last();
    let acc = |f: fn(&crate::pipeline::CurvePoint) -> f64| last.map_or(0.0, f);
    let ids: Vec<&str> = r.problems.iter().map(|q| q.unique_id.as_str()).collect();
    format!(
        r#"---
license: apache-2.0
language:
- en
pretty_name: Best-of-N with a process reward model
task_categories:
- text-generation
tags:
- best-of-n
- process-reward-model
- math
size_categories:
- n<1K
configs:
- config_name: problems
  default: true
  data_files:
  - split: train
    path: data/problems.jsonl
- config_name: samples
  data_files:
  - split: train
    path: data/samples.jsonl
---

# Best-of-N with a process reward model

Built by `assay bon` (crate `assay-bon`).

- Generator: `{generator}`
- Reward model: `{prm}` (step rewards = sigmoid of the value head at the newline closing each line,
  Skywork's input recipe; aggregation `{agg}`)
- Problems: {count} from {problems}; ids: {ids}
- Command: `{command}`
- Device: {placement}

## How it was built

1. Each problem is sent with search-and-learn's system prompt (chain of thought, final answer in
   `\boxed{{}}`) through the generator's chat template.
2. Greedy baseline: one solution per problem at temperature 0.
3. N = {n} samples per problem at T = {t} (top-p {top_p}, at most {max_new} new tokens, seed {seed});
   further temperatures for the sweep: {sweep}.
4. Every solution is scored by the reward model; answers are extracted and normalised as
   search-and-learn does (`extract_answer`, `strip_string`) and graded against the answer extracted
   from the gold `solution` with `math_equal`.
5. Selection over the first n samples (n = 1, 2, 4, ...): weighted best-of-N (reward summed per
   answer group), majority vote, naive best-of-N (highest reward).

## Results (n = {n}, T = {t})

| method | accuracy |
|---|---|
| greedy | {greedy} |
| weighted best-of-N | {weighted} |
| majority vote | {majority} |
| naive best-of-N | {naive} |
| pass@N (oracle) | {pass} |

See `analysis.md` and `plots/`.

## Files

- `data/problems.jsonl` and `data/problems.parquet` (the same rows): one row per problem: the
  MATH-500 columns, the greedy and best-of-N solutions and answers, and every sample with its
  answer, reward and step rewards.
- `data/samples.jsonl` and `data/samples.parquet` (the same rows): one row per sample and
  temperature.

The configs above read the JSON-lines files; the Parquet files hold the same rows for tools that
prefer Parquet (Zstandard-compressed, nested lists kept as Parquet lists).
- `results.json`: the full report; `plots/*.png|svg`; `analysis.md`.

## Upload

```
huggingface-cli upload <user>/<dataset-name> {dir_hint} . --repo-type dataset
```
"#,
        generator = p.generator,
        prm = p.prm,
        agg = aggregation_name(r.config.aggregation),
        count = r.problems.len(),
        problems = p.problems,
        ids = ids.join(", "),
        command = p.command,
        placement = p.placement,
        n = r.config.n,
        t = main.temperature,
        top_p = r.config.top_p,
        max_new = r.config.max_new_tokens,
        seed = r.config.seed,
        sweep = sweep_list(&r.config.sweep_temperatures),
        greedy = pct(r.greedy_accuracy),
        weighted = pct(acc(|c| c.weighted)),
        majority = pct(acc(|c| c.majority)),
        naive = pct(acc(|c| c.naive)),
        pass = pct(acc(|c| c.pass)),
        dir_hint = "<this folder>",
    )
}
