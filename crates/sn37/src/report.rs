//! Files a round writes: the Markdown leaderboard and the weight vector.

use std::fmt::Write;

use serde::Serialize;

use crate::round::{ModelResult, RoundResults, Status};

/// The weight vector in the shapes a validator needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightVector {
    /// Hotkeys, sorted.
    pub hotkeys: Vec<String>,
    /// Normalised weights, same order.
    pub weights: Vec<f64>,
    /// Bittensor u16 weights, same order.
    pub weights_u16: Vec<u16>,
}

/// The subnet weights of a round as parallel vectors.
pub fn weight_vector(results: &RoundResults) -> WeightVector {
    WeightVector {
        hotkeys: results
            .weights
            .iter()
            .map(|row| row.hotkey.clone())
            .collect(),
        weights: results.weights.iter().map(|row| row.weight).collect(),
        weights_u16: results.weights.iter().map(|row| row.weight_u16).collect(),
    }
}

fn status_rank(model: &ModelResult) -> (u8, f64) {
    let group = match model.status {
        Status::Evaluated => 0,
        Status::Failed => 1,
        Status::Waiting => 2,
        Status::Rejected => 3,
    };
    (group, model.score.unwrap_or(f64::INFINITY))
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Evaluated => "evaluated",
        Status::Failed => "failed (+inf)",
        Status::Waiting => "waiting",
        Status::Rejected => "rejected",
    }
}

fn weight_of(results: &RoundResults, hotkey: &str) -> (f64, f64) {
    let ema = results
        .competition_weights
        .get(hotkey)
        .copied()
        .unwrap_or(0.0);
    let subnet = results
        .weights
        .iter()
        .find(|row| row.hotkey == hotkey)
        .map_or(0.0, |row| row.weight);
    (ema, subnet)
}

/// The leaderboard: tasks, then models best first with each task's normalised (raw) score,
/// win rate, step, moving-average and subnet weight, then every reason.
pub fn leaderboard_markdown(results: &RoundResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# SN37 round: {} (id {})\n",
        results.competition, results.competition_id
    );
    let _ = writeln!(
        out,
        "Block {} (sync block {}), block hash `{}`, seed {}.\n",
        results.block, results.sync_block, results.block_hash, results.seed
    );
    out.push_str("| Task | Weight | Samples | Status |\n|---|---:|---:|---|\n");
    for task in &results.tasks {
        let status = task
            .dropped
            .as_deref()
            .map_or("ran".to_owned(), |why| format!("dropped: {why}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            task.name,
            task.weight,
            task.samples,
            escape(&status)
        );
    }
    let ran: Vec<&str> = results
        .tasks
        .iter()
        .filter(|t| t.dropped.is_none())
        .map(|t| t.name.as_str())
        .collect();
    out.push_str("\nScores are lower-is-better; task cells show normalised (raw).\n\n");
    let _ = write!(out, "| # | Hotkey | Commit block | Status | Score |");
    for name in &ran {
        let _ = write!(out, " {name} |");
    }
    out.push_str(" Win rate | Step | EMA | Weight |\n|---:|---|---:|---|---:|");
    out.push_str(&"---:|".repeat(ran.len() + 4));
    out.push('\n');
    let mut models: Vec<&ModelResult> = results.models.iter().collect();
    models.sort_by(|a, b| {
        status_rank(a)
            .partial_cmp(&status_rank(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (rank, model) in models.iter().enumerate() {
        let score = model.score.map_or("-".to_owned(), |s| format!("{s:.6}"));
        let block = model.commit_block.map_or("-".to_owned(), |b| b.to_string());
        let _ = write!(
            out,
            "| {} | {} | {block} | {} | {score} |",
            rank + 1,
            escape(&model.hotkey),
            status_word(model.status)
        );
        for name in &ran {
            let cell = model
                .tasks
                .iter()
                .find(|t| t.name == *name)
                .map_or("-".to_owned(), |t| {
                    format!("{:.4} ({:.4})", t.normalized, t.raw)
                });
            let _ = write!(out, " {cell} |");
        }
        let (ema, weight) = weight_of(results, &model.hotkey);
        let _ = writeln!(
            out,
            " {:.3} | {} | {ema:.4} | {weight:.4} |",
            model.win_rate, model.step_weight
        );
    }
    let with_reasons: Vec<&&ModelResult> =
        models.iter().filter(|m| !m.reasons.is_empty()).collect();
    if !with_reasons.is_empty() {
        out.push_str("\n## Reasons\n\n");
        for model in with_reasons {
            for reason in &model.reasons {
                let _ = writeln!(out, "- **{}** ({}): {}", model.hotkey, model.folder, reason);
            }
        }
    }
    out
}

/// Keeps table cells on one line and pipes out of the layout.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
