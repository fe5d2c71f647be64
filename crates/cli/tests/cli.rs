//! The `assay` binary end to end on the tiny fixture model: generate, score, train.

use std::path::PathBuf;
use std::process::Command;

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

fn tiny() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/fixtures/tiny-qwen2")
        .display()
        .to_string()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generate_writes_one_jsonl_row_per_sample() {
    let out = run_ok(assay().args([
        "generate",
        "--model",
        &tiny(),
        "--chat",
        "--n",
        "2",
        "--temperature",
        "0.7",
        "--max-new-tokens",
        "5",
        "hello",
        "two",
    ]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["prompt_index"], 1);
    assert_eq!(rows[3]["sample_index"], 1);
    assert!(rows.iter().all(|r| r["num_tokens"].as_u64().unwrap() <= 5));
}

#[test]
fn score_reports_loss_and_bits_per_byte_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, "{\"prompt\": \"The quick\", \"completion\": \" brown fox\"}\n{\"text\": \"Validators score miners\"}\n").unwrap();
    let out = run_ok(assay().args([
        "score",
        "--model",
        &tiny(),
        "--input",
        input.to_str().unwrap(),
    ]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows[0]["mean_nll"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["bits_per_byte"].as_f64().unwrap() > 0.0);
    std::fs::write(
        &input,
        "{\"prompt\": \"ok\", \"completion\": \"fine\"}\n{not json\n",
    )
    .unwrap();
    let out = assay()
        .args([
            "score",
            "--model",
            &tiny(),
            "--input",
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rows.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `text` row's first token: with `--text-prefix eos` (the default) it is predicted from the
/// end-of-text token, so every token is scored and bits per byte cover the whole text; with
/// `first-token` it is context only. The tiny model's tokenizer adds no BOS, so the two differ by
/// exactly one scored token, and the eos row's log-probability sums the first-token row's plus the
/// first token's own.
#[test]
fn score_text_prefix_conventions_differ_by_the_first_token() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.jsonl");
    let text = "Validators score miners by training models on their data.";
    std::fs::write(&input, format!("{{\"text\": \"{text}\"}}\n")).unwrap();
    let score = |prefix: &str| -> serde_json::Value {
        let out = run_ok(assay().args([
            "score",
            "--model",
            &tiny(),
            "--input",
            input.to_str().unwrap(),
            "--text-prefix",
            prefix,
            "--token-logprobs",
        ]));
        serde_json::from_str(out.lines().next().unwrap()).unwrap()
    };
    let eos = score("eos");
    let first = score("first-token");
    let n_eos = eos["num_tokens"].as_u64().unwrap();
    assert_eq!(n_eos, first["num_tokens"].as_u64().unwrap() + 1);
    let lp = |row: &serde_json::Value| -> Vec<f64> {
        row["token_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (all, rest) = (lp(&eos), lp(&first));
    assert!(all[0] < 0.0, "the first token is scored under eos");
    // The same tokens after the first, predicted from one more token of context in `eos`: the
    // sums differ by the first token's log-probability and the context's effect, so compare
    // the parts that must match exactly: the counts and the byte bases of bits per byte.
    assert_eq!(all.len(), rest.len() + 1);
    let bpb = |row: &serde_json::Value| row["bits_per_byte"].as_f64().unwrap();
    let nats = |v: &[f64]| -v.iter().sum::<f64>();
    let bytes_eos = nats(&all) / std::f64::consts::LN_2 / bpb(&eos);
    let bytes_first = nats(&rest) / std::f64::consts::LN_2 / bpb(&first);
    assert!(
        (bytes_eos - text.len() as f64).abs() < 1e-6,
        "eos covers the whole text: {bytes_eos}"
    );
    assert!(
        bytes_first < bytes_eos - 0.5,
        "first-token leaves the first token's bytes out"
    );
}

#[test]
fn train_writes_a_peft_adapter_a_merged_model_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    std::fs::write(&data, "{\"prompt\": \"The quick\", \"completion\": \" brown fox\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"3 plus 4\"}, {\"role\": \"assistant\", \"content\": \"is 7\"}]}\n").unwrap();
    let out = dir.path().join("run");
    run_ok(assay().args([
        "train",
        "--model",
        &tiny(),
        "--data",
        data.to_str().unwrap(),
        "--val",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "2",
        "--rank",
        "4",
        "--merge",
    ]));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 2);
    assert!(summary["val_loss"].as_f64().is_some());
    assert!(
        out.join("adapter/adapter_config.json").is_file()
            && out.join("adapter/adapter_model.safetensors").is_file()
    );
    assert!(
        out.join("merged/config.json").is_file() && out.join("merged/tokenizer.json").is_file()
    );
    run_ok(assay().args([
        "generate",
        "--model",
        out.join("merged").to_str().unwrap(),
        "--max-new-tokens",
        "3",
        "hi",
    ]));
}

#[test]
fn bench_smoke_run_reports_every_measurement_and_learns() {
    let out = run_ok(assay().args([
        "bench",
        "--device",
        "cpu",
        "--shape",
        "tiny",
        "--gen-batch",
        "2,3",
        "--only",
        "gen,fwd,lora,scratch,bon",
    ]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |what: &str| {
        lines
            .iter()
            .filter(|l| l["what"] == what)
            .cloned()
            .collect::<Vec<_>>()
    };
    let gens = find("assay_generate");
    assert_eq!(gens.len(), 2);
    for g in &gens {
        // No end-of-sequence token: every sample runs to its full length, as in the peer.
        assert_eq!(
            g["generated"],
            g["batch"].as_u64().unwrap() * g["new"].as_u64().unwrap()
        );
    }
    let fwd = &find("assay_forward_loss")[0];
    assert!(fwd["tok_per_s"].as_f64().unwrap() > 0.0);
    // Random weights predict random tokens: the mean loss is about ln(vocab = 512) = 6.24.
    assert!((fwd["mean_nll"].as_f64().unwrap() - 512f64.ln()).abs() < 0.5);
    // Best-of-N: every sample of every problem gets its step rewards from the reward model.
    let bon = &find("assay_bon")[0];
    let samples = bon["problems"].as_u64().unwrap() * bon["samples"].as_u64().unwrap();
    assert_eq!(bon["step_rewards"].as_u64().unwrap(), samples * 7, "{bon}");
    for step in ["assay_lora_step", "assay_scratch_train_step"] {
        let s = &find(step)[0];
        assert!(
            s["loss_last"].as_f64().unwrap() < s["loss_first"].as_f64().unwrap(),
            "{s}"
        );
    }
}

/// `assay ... | head -1`: the reader closes the pipe after one line and the writer ends quietly,
/// without a panic message (Unix filters die of SIGPIPE; before the fix, `println!` panicked).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = assay()
        .args([
            "generate",
            "--model",
            &tiny(),
            "--n",
            "400",
            "--max-new-tokens",
            "24",
            "--temperature",
            "1.0",
            "a",
            "b",
            "c",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "a JSON row first: {first}");
    // The reader is dropped here: the pipe is closed with most of the output unwritten.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// Without a terminal (stderr piped, as under cron or systemd), progress is logged as lines with
/// the stage and counts instead of a bar that draws nowhere; `--log-format json` makes each line
/// a JSON object for a collector.
#[test]
fn progress_is_logged_without_a_terminal_as_text_or_json() {
    let args = [
        "generate",
        "--model",
        &tiny(),
        "--max-new-tokens",
        "4",
        "hello",
    ];
    let out = assay().args(args).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("stage=generate") && text.contains("finished"),
        "{text}"
    );
    assert!(
        text.contains("loading"),
        "the model's loading is logged too: {text}"
    );

    let out = assay()
        .args(args)
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "finished" && l["fields"]["stage"] == "generate")
        .unwrap_or_else(|| panic!("no finished line: {lines:?}"));
    assert!(finished["fields"]["total"].as_u64().unwrap() > 0);
    assert_eq!(finished["level"], "INFO");
}
