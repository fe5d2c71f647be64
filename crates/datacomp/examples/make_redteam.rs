//! Writes `crates/datacomp/fixtures/redteam/`: a round with one miner per Datacomp attack class of
//! issue #19 (paraphrase copies, train-on-test with one word changed, a lied-about block, wrong
//! answers) beside varied honest miners (three styles, hand-written prose and units, and a miner
//! who solves the same problems as two earlier miners in words of its own), and `expected.json`, the verdict each miner must get.
//! `tests/redteam.rs` checks the integrity stage against it. Re-run after changing a generator:
//! `cargo run -p assay-datacomp --example make_redteam`.

use std::path::PathBuf;

use assay_datacomp::graded::{
    GradedRow, Style, jsonl, one_word_changed, paraphrase, rows, write_row,
};
use assay_eval::generators::gsm;
use serde_json::json;

/// The round's evaluation set (round.json's seed).
const EVAL_SEED: u64 = 4242;
const EVAL_COUNT: u64 = 8;

fn row(prompt: &str, cot: &str, answer: &str) -> GradedRow {
    GradedRow {
        prompt: prompt.into(),
        chain_of_thought: cot.into(),
        final_answer: answer.into(),
    }
}

/// Honest rows no template wrote: prose, decimals, percentages, money, units, text answers.
fn varied_honest() -> Vec<GradedRow> {
    vec![
        row(
            "Why is the sky blue?",
            "Sunlight scatters off air molecules, and shorter blue wavelengths scatter the most.",
            "Rayleigh scattering",
        ),
        row(
            "Three friends split a $10 bill equally. How much does each pay?",
            "Each pays 10 / 3 = 3.33 dollars, rounded to the cent.",
            "3.33",
        ),
        row(
            "A jacket costs $150 and is 20% off. What is the discount?",
            "The discount is 20% of 150, that is 0.2 * 150 = 30 dollars.",
            "30",
        ),
        row(
            "A shop has $1,200 and earns $350 more. How much does it have?",
            "It has $1,200 + $350 = $1,550.",
            "$1,550",
        ),
        row(
            "How many minutes are in 2.5 hours?",
            "An hour has 60 minutes, so 2.5 x 60 = 150 minutes.",
            "150 minutes",
        ),
        row(
            "What is the capital of France?",
            "France's government sits in its largest city.",
            "Paris",
        ),
        row(
            "A tank holds 40 liters, and 55 liters are poured out of a 70 liter drum into it. \
             How much overflows?",
            "Pouring 55 into a tank of 40 overflows by 55 - 40 = 15 liters.",
            "15",
        ),
        row(
            "The temperature is 4 degrees and drops by 9. What is it now?",
            "It is 4 - 9 = -5 degrees.",
            "-5",
        ),
        row(
            "Pens come in packs of 12. A class of 30 needs 2 pens each. How many packs?",
            "They need 30 * 2 = 60 pens, which is 60 / 12 = 5 packs.",
            "5",
        ),
        row(
            "What fraction of a pizza is left if 2 of 8 slices are eaten?",
            "6 of 8 slices are left, which simplifies to three quarters.",
            "3/4",
        ),
        row(
            "A rectangle is 7 m by 4 m. What is its perimeter?",
            "The perimeter is (7 + 4) × 2 = 22 meters.",
            "22",
        ),
        row(
            "Mia reads 25 pages a day. How many pages does she read in a week?",
            "First we multiply 25 by 7 to get 175. So she reads 175 pages.",
            "175",
        ),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/redteam");
    std::fs::create_dir_all(&dir)?;
    let eval = gsm::generate_batch(EVAL_SEED, EVAL_COUNT);
    let honest_house = rows(5001, 24, Style::House, |_| false);
    let honest_steps = rows(5002, 24, Style::Steps, |_| false);
    let honest_many = rows(5003, 96, Style::House, |_| false);
    let mut one_word = rows(5004, 39, Style::Steps, |_| false);
    one_word.insert(17, one_word_changed(&eval[0], 1));
    let mut one_word_heavy = rows(5005, 21, Style::House, |_| false);
    for (i, p) in eval.iter().take(3).enumerate() {
        one_word_heavy.push(one_word_changed(p, 10 + i as u64));
    }
    // The same problems as honest_house and honest_steps (same questions, same numbers, same
    // arithmetic), solved independently in other words: not copies.
    let mut same_problems: Vec<GradedRow> = gsm::generate_batch(5001, 12)
        .iter()
        .map(|p| write_row(p, Style::Prose, 0))
        .collect();
    same_problems.extend(
        gsm::generate_batch(5001, 24)
            .iter()
            .skip(12)
            .map(|p| write_row(p, Style::Steps, 0)),
    );
    same_problems.extend(
        gsm::generate_batch(5002, 12)
            .iter()
            .map(|p| write_row(p, Style::House, 0)),
    );
    let honest_prose = rows(5009, 24, Style::Prose, |_| false);
    let mut half_wrong = rows(5006, 24, Style::Steps, |i| i % 2 == 0);
    half_wrong.extend(rows(5007, 4, Style::House, |_| false));
    let miners: Vec<(&str, Vec<GradedRow>, serde_json::Value)> = vec![
        (
            "honest_house",
            honest_house.clone(),
            json!({"block": 10, "verified_block": 10, "coldkey": "ck-a"}),
        ),
        (
            "honest_steps",
            honest_steps.clone(),
            json!({"block": 11, "verified_block": 11, "coldkey": "ck-b"}),
        ),
        (
            "honest_varied",
            varied_honest(),
            json!({"block": 12, "verified_block": 12, "coldkey": "ck-c"}),
        ),
        (
            "honest_many",
            honest_many,
            json!({"block": 13, "verified_block": 13, "coldkey": "ck-d"}),
        ),
        (
            "honest_prose",
            honest_prose.clone(),
            json!({"block": 14, "verified_block": 14, "coldkey": "ck-k"}),
        ),
        (
            "honest_same_problems",
            same_problems,
            json!({"block": 15, "verified_block": 15, "coldkey": "ck-l"}),
        ),
        (
            "paraphraser",
            paraphrase(&honest_house, 3),
            json!({"block": 20, "verified_block": 20, "coldkey": "ck-e"}),
        ),
        (
            "block_liar",
            paraphrase(&honest_steps, 4),
            json!({"block": 1, "verified_block": 21, "coldkey": "ck-f"}),
        ),
        (
            "one_word_test",
            one_word,
            json!({"block": 22, "verified_block": 22, "coldkey": "ck-g"}),
        ),
        (
            "one_word_test_heavy",
            one_word_heavy,
            json!({"block": 23, "verified_block": 23, "coldkey": "ck-h"}),
        ),
        (
            "wrong_answers",
            rows(5008, 24, Style::Steps, |_| true),
            json!({"block": 24, "verified_block": 24, "coldkey": "ck-i"}),
        ),
        (
            "half_wrong",
            half_wrong,
            json!({"block": 25, "verified_block": 25, "coldkey": "ck-j"}),
        ),
        (
            "paraphraser_prose",
            paraphrase(&honest_prose, 6),
            json!({"block": 26, "verified_block": 26, "coldkey": "ck-m"}),
        ),
    ];
    let mut entries = Vec::new();
    for (name, data, meta) in &miners {
        std::fs::write(dir.join(format!("{name}.jsonl")), jsonl(data))?;
        let mut entry = json!({"hotkey": name, "file": format!("{name}.jsonl")});
        for (k, v) in meta.as_object().into_iter().flatten() {
            entry[k] = v.clone();
        }
        entries.push(entry);
    }
    let manifest = json!({"round": "redteam", "seed": EVAL_SEED, "miners": entries});
    std::fs::write(
        dir.join("round.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    // The verdicts: rows kept, rejections by kind (`copy` is any of the three copy rules: exact,
    // near duplicate, same problem with aligned reasoning), disqualification.
    let expected = json!({
        "eval_count": EVAL_COUNT,
        "miners": {
            "honest_house": {"kept": 24, "rejected": {}, "disqualified": false},
            "honest_steps": {"kept": 24, "rejected": {}, "disqualified": false},
            "honest_varied": {"kept": 12, "rejected": {}, "disqualified": false},
            "honest_many": {"kept": 96, "rejected": {}, "disqualified": false},
            "honest_prose": {"kept": 24, "rejected": {}, "disqualified": false},
            "honest_same_problems": {"kept": 36, "rejected": {}, "disqualified": false},
            "paraphraser": {"kept": 0, "rejected": {"copy": 24}, "disqualified": true},
            "block_liar": {"kept": 0, "rejected": {"copy": 24}, "disqualified": true},
            "one_word_test": {"kept": 39, "rejected": {"contaminated": 1}, "disqualified": false},
            "one_word_test_heavy": {"kept": 21, "rejected": {"contaminated": 3}, "disqualified": true},
            "wrong_answers": {"kept": 0, "rejected": {"wrong_answer": 24}, "disqualified": false},
            "half_wrong": {"kept": 16, "rejected": {"wrong_answer": 12}, "disqualified": false},
            "paraphraser_prose": {"kept": 0, "rejected": {"copy": 24}, "disqualified": true}
        }
    });
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_string_pretty(&expected)? + "\n",
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}
