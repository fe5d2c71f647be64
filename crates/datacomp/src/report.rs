//! The round's written outputs: `results.json`, `report.md`, `eval_set.jsonl`, `timings.json` and
//! the score chart, all written into one folder.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::DatacompError;
use crate::round::{RoundResults, StageTiming};
use crate::task::Problem;

/// The score formula, as stated in every report (see [`crate::score::ScoreWeights`]).
pub const SCORE_FORMULA: &str = "\
score = max(0, Δ) × penalty × volume, where
- Δ = w_acc·(accuracy − base accuracy) + w_ans·(base answer loss − answer loss): accuracy is the share of
  held-out problems whose greedy answer (after `####`) equals the gold answer; the answer loss is the mean
  negative log-likelihood of the gold solution's *results only* (each equation's result and the final
  answer), with the gold reasoning as context, so that the evaluation set's phrasing is never scored;
- penalty ∈ [0, 1] is the integrity multiplier (invalid, duplicate, copied, contaminated and
  wrong-answer rows count against it; the disqualification limits set it to 0);
- volume = log2(1 + T/B): T is the completion tokens of the miner's kept (verified, distinct) rows and
  B the fine-tune's token budget; the fine-tune trains on a seeded random sample of the kept rows, so Δ
  measures the data's quality per token and volume pays for more distinct correct problems.
Hotkeys of one coldkey share one miner's credit. Weights are scores normalised to sum to 1.";

/// Writes every output of a finished round into `dir` (which must exist).
pub fn write_outputs(
    dir: &Path,
    results: &RoundResults,
    problems: &[Problem],
    timings: &[StageTiming],
) -> Result<(), DatacompError> {
    let write = |name: &str, text: String| -> Result<(), DatacompError> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| DatacompError::write(&p, e))
    };
    write("results.json", pretty(results))?;
    write(
        "report.md",
        format!("{}\n{}", report(results), stage_table(timings)),
    )?;
    let eval_rows: Vec<assay_tables::Row> = problems
        .iter()
        .filter_map(|p| match serde_json::to_value(p) {
            Ok(serde_json::Value::Object(row)) => Some(row),
            _ => None,
        })
        .collect();
    let eval_path = dir.join("eval_set.jsonl");
    assay_tables::write_jsonl(&eval_path, &eval_rows)
        .map_err(|e| DatacompError::write(&eval_path, std::io::Error::other(e)))?;
    write("timings.json", pretty(&timings))?;
    let bars: Vec<(String, f64)> = results
        .miners
        .iter()
        .map(|m| (m.hotkey.clone(), m.score))
        .collect();
    crate::plot::bar_chart(
        &bars,
        "Datacomp: score per miner (improvement x penalty x volume)",
        &dir.join("scores"),
    )
}

/// Pretty JSON of one of our own values (they cannot fail to serialise: string keys, finite or
/// null floats).
fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Wall time and peak memory per stage, as a Markdown section (apart from [`report`], whose text
/// is the same run to run).
pub fn stage_table(timings: &[StageTiming]) -> String {
    let mut s = String::from(
        "## Stages\n\nWall time and the most memory in use while each stage ran (GPU memory in use on \
         CUDA, the process's resident memory on the CPU).\n\n| stage | seconds | peak memory (GiB) |\n|---|---|---|\n",
    );
    for t in timings {
        let memory = t.peak_memory_bytes.map_or("-".to_string(), |b| {
            format!("{:.2}", b as f64 / (1u64 << 30) as f64)
        });
        let _ = writeln!(s, "| {} | {:.2} | {memory} |", t.stage, t.seconds);
    }
    s
}

/// The leaderboard as a Markdown table.
pub fn leaderboard(r: &RoundResults) -> String {
    let mut s = String::from(
        "| rank | miner | block | rows | kept | rejected | penalty | volume | Δ answer loss | Δ accuracy | score | weight | u16 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, m) in r.miners.iter().enumerate() {
        let rejected: Vec<String> = m.rejected.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let (dl, da) = m.trained.as_ref().map_or(("-".into(), "-".into()), |t| {
            (
                format!("{:+.4}", t.improvement.answer_loss),
                format!("{:+.3}", t.improvement.accuracy),
            )
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2}{} | {:.2} | {dl} | {da} | {:.4} | {:.3} | {} |",
            i + 1,
            m.hotkey,
            m.block,
            m.rows,
            m.kept_rows,
            if rejected.is_empty() {
                "-".into()
            } else {
                rejected.join(", ")
            },
            m.penalty_multiplier,
            if m.disqualified {
                " (disqualified)"
            } else {
                ""
            },
            m.volume,
            m.score,
            m.weight,
            m.weight_u16
        );
    }
    s
}

/// The round's Markdown report: the setting, the formula, the leaderboard and every reason.
pub fn report(r: &RoundResults) -> String {
    let mut s = format!(
        "# Datacomp round {}\n\nBase model: {}. Evaluation set: {} ({} problems, published in \
         eval_set.jsonl). Base: answer loss {:.4}, reference loss {:.4}, accuracy {:.3}, word recall \
         {:.3}.\n\n## Score\n\n{}\n\n## Leaderboard\n\n{}\n![scores](scores.png)\n\n## Why\n\n",
        r.round.as_deref().unwrap_or("(unnamed)"),
        r.config.base_model,
        r.config.eval_source,
        r.eval_ids.len(),
        r.base.answer_loss,
        r.base.reference_loss,
        r.base.accuracy,
        r.base.word_recall,
        SCORE_FORMULA,
        leaderboard(r)
    );
    for m in &r.miners {
        let _ = writeln!(s, "- **{}**: {}", m.hotkey, m.reasons.join("; "));
    }
    let _ = write!(
        s,
        "\n## Integrity, row by row\n\n```\n{}\n```\n",
        r.integrity.to_table()
    );
    s
}
