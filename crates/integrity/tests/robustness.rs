//! Deterministic stand-in for the cargo-fuzz targets in `fuzz/` (which need nightly): thousands of
//! random and mutated inputs from a seeded RNG through the same entry points. The property checked
//! is that nothing panics and that every output is consistent (rows plus problem lines cover the
//! input, problems name the file).

use assay_integrity::canonical::canonical_form;
use assay_integrity::models::{ModelRules, check_config, check_safetensors_header};
use assay_integrity::schema::{Limits, read_submission_bytes};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const VALID_JSONL: &str = concat!(
    r#"{"prompt": "What is 2+2?", "chain_of_thought": "Add two and two.", "final_answer": "4"}"#,
    "\n",
    r#"{"prompt": "Say hi", "completion": "hi \u00e9\u200b"}"#,
    "\n",
    r#"{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}"#,
    "\n",
);

/// Applies 1 to 8 random byte-level edits: flip, insert, delete, duplicate a span, or splice in a
/// token that is interesting to a JSON parser.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    const TOKENS: [&[u8]; 12] = [
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\\u0000",
        b"\\ud800",
        b"\n",
        b"\xff",
        b"\xe2\x80\xae",
        b"1e999",
        b",,",
    ];
    let mut bytes = input.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..5) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes.insert(at, rng.random()),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => {
                let end = rng.random_range(at..=bytes.len().min(at + 40));
                let span = bytes[at..end].to_vec();
                bytes.splice(at..at, span);
            }
            _ => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
        }
    }
    bytes
}

fn random_bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.random_range(0..max)];
    rng.fill_bytes(&mut bytes);
    bytes
}

#[test]
fn jsonl_intake_survives_random_and_mutated_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1A7E);
    let limits = Limits {
        max_field_chars: 200,
        max_line_bytes: 400,
        max_rows: 50,
        ..Limits::default()
    };
    for case in 0..4000 {
        let input = if case % 4 == 0 {
            random_bytes(&mut rng, 300)
        } else {
            mutate(&mut rng, VALID_JSONL.as_bytes())
        };
        let intake = read_submission_bytes("fuzz.jsonl", &input, &limits);
        assert!(
            intake
                .problems
                .iter()
                .all(|p| p.file == "fuzz.jsonl" && !p.message.is_empty())
        );
        let lines = input.split(|&b| b == b'\n').count();
        for row in &intake.rows {
            assert!(row.line >= 1 && row.line <= lines);
            assert!(
                !intake.problems.iter().any(|p| p.line == Some(row.line)),
                "a kept row has a problem"
            );
            for (_, text) in row.content.text_fields() {
                canonical_form(text);
            }
        }
    }
}

#[test]
fn canonical_form_is_idempotent_on_random_text() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    const PIECES: [&str; 16] = [
        "1,000", "-3.50", " ", "Ａ", "а", "\u{200B}", "ﬁ", "٣", ".", "word", "0.0", "'", "_", "−",
        "é", "x2",
    ];
    for _ in 0..3000 {
        let text: String = (0..rng.random_range(0..12))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect();
        let once = canonical_form(&text);
        assert_eq!(canonical_form(&once), once, "input {text:?}");
    }
}

fn valid_safetensors() -> Vec<u8> {
    let data: Vec<u8> = (0..32u8).collect();
    let views = vec![
        (
            "a".to_string(),
            TensorView::new(Dtype::F32, vec![2, 2], &data[..16]).unwrap(),
        ),
        (
            "b".to_string(),
            TensorView::new(Dtype::BF16, vec![8], &data[16..]).unwrap(),
        ),
    ];
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn safetensors_header_check_survives_mutations() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5AFE);
    let valid = valid_safetensors();
    let rules = ModelRules::default();
    assert!(check_safetensors_header("ok", &valid, &rules).is_ok());
    let mut accepted = 0;
    for case in 0..4000 {
        let input = if case % 5 == 0 {
            random_bytes(&mut rng, 200)
        } else {
            mutate(&mut rng, &valid)
        };
        if let Ok(parsed) = check_safetensors_header("fuzz", &input, &rules) {
            accepted += 1;
            for (_, view) in parsed.iter() {
                let elements: usize = view.shape().iter().product();
                assert_eq!(elements * view.dtype().bitsize() / 8, view.data().len());
            }
        }
    }
    // Some mutations (e.g. inside tensor data) must still parse; otherwise the test exercises nothing.
    assert!(accepted > 0 && accepted < 4000, "accepted {accepted}");
}

#[test]
fn config_check_survives_mutations() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xC0F);
    let valid =
        br#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "num_hidden_layers": 2}"#;
    let rules = ModelRules::default();
    assert_eq!(check_config(valid, &rules).unwrap(), "LlamaForCausalLM");
    for case in 0..3000 {
        let input = if case % 4 == 0 {
            random_bytes(&mut rng, 120)
        } else {
            mutate(&mut rng, valid)
        };
        if let Ok(architecture) = check_config(&input, &rules) {
            assert!(rules.architectures.contains(&architecture));
        }
    }
}
