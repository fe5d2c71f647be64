//! A whole round folder of graded miners, for benchmarks and hardware sizing
//! (`assay datacomp graded-round`), where the shipped example (five miners, two of them rejected) is
//! too small to show what a round of N miners costs.

use std::path::Path;

use crate::error::DatacompError;
use crate::graded::{Style, jsonl, rows};

/// The block hash written into a graded round's `round.json`: the evaluation set is derived from it
/// as in a live round.
pub const GRADED_BLOCK_HASH: &str =
    "0x5c3f9a1e7b2d4c6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

/// Writes `round.json` and one JSONL per miner into `dir` (created if absent): `miners` miners of
/// `rows_per_miner` distinct, correct problems each (miner i draws from seed 5000 + i; odd miners
/// write in the step-by-step style, even ones in the evaluation set's). The integrity stage keeps
/// every row, so each miner costs a full fine-tune and evaluation and the round's work grows
/// exactly with `miners`.
pub fn write_graded_round(
    dir: &Path,
    miners: usize,
    rows_per_miner: usize,
) -> Result<(), DatacompError> {
    std::fs::create_dir_all(dir).map_err(|e| DatacompError::write(dir, e))?;
    let mut entries = Vec::with_capacity(miners);
    for i in 0..miners {
        let style = if i % 2 == 1 {
            Style::Steps
        } else {
            Style::House
        };
        let hotkey = format!("miner{i:02}");
        let file = format!("{hotkey}.jsonl");
        let path = dir.join(&file);
        let text = jsonl(&rows(5000 + i as u64, rows_per_miner, style, |_| false));
        std::fs::write(&path, text).map_err(|e| DatacompError::write(&path, e))?;
        let block = 4_000_000 + i as u64;
        entries.push(serde_json::json!({
            "hotkey": hotkey, "file": file, "block": block, "verified_block": block,
        }));
    }
    let manifest = serde_json::json!({
        "round": format!("graded-{miners}x{rows_per_miner}"),
        "block_hash": GRADED_BLOCK_HASH,
        "miners": entries,
    });
    let path = dir.join("round.json");
    std::fs::write(&path, format!("{manifest:#}\n")).map_err(|e| DatacompError::write(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    #[test]
    fn a_graded_round_reads_back_with_every_miner_distinct_and_correct() {
        let dir = tempfile::tempdir().unwrap();
        write_graded_round(dir.path(), 3, 5).unwrap();
        let manifest = Manifest::read(dir.path()).unwrap();
        assert_eq!(manifest.miners.len(), 3);
        let mut prompts = std::collections::BTreeSet::new();
        for miner in &manifest.miners {
            let text = std::fs::read_to_string(dir.path().join(&miner.file)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 5, "{}", miner.hotkey);
            for line in lines {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                prompts.insert(row["prompt"].as_str().unwrap().to_string());
            }
            assert_eq!(miner.verified_block, Some(miner.block));
        }
        assert_eq!(prompts.len(), 15, "every problem is distinct across miners");
    }
}
