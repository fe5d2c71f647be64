//! Training against the references (PEFT adapters both ways, torch AdamW), determinism, memory,
//! full training from scratch, export, bad data, and real learning on SmolLM2.

mod common;
use common::{fixtures, ids, read_json, tiny};

use assay_engine::candle_core::{DType, Device, Tensor, Var};
use assay_engine::train::optim::{AdamW, AdamWConfig};
use assay_engine::train::trainer::batch_loss;
use assay_engine::train::{
    Example, LoraConfig, TrainConfig, TrainRow, attach_lora, export, lora_parameters, peft,
    read_rows, tokenize_rows, train,
};
use assay_engine::{LoadOptions, Model, ModelConfig, ModelSource, Pass, load};
use serde_json::Value;

/// Compares the model's logits on each golden sequence with `want[seq][pos][vocab]`, relative to the
/// largest logit of the position (summation order differs between BLAS libraries, so single small
/// logits carry the absolute error of the large ones).
fn assert_logits(model: &Model, seqs: &Value, want: &Value, rel: f64, what: &str) {
    for (s, seq) in seqs.as_array().unwrap().iter().enumerate() {
        let seq = ids(seq);
        let input = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let got = model
            .forward(&input, Pass::Inference)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (t, row) in want[s].as_array().unwrap().iter().enumerate() {
            let row: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap())
                .collect();
            let scale = row.iter().fold(1.0f64, |m, w| m.max(w.abs()));
            for (v, w) in row.iter().enumerate() {
                let diff = (got[t][v] as f64 - w).abs();
                assert!(
                    diff <= rel * scale,
                    "{what}: seq {s} pos {t} token {v}: {} vs {w} (row scale {scale})",
                    got[t][v]
                );
            }
        }
    }
}

#[test]
fn peft_adapters_load_and_merge_like_peft() {
    let golden = read_json("peft-golden.json");
    for (name, adapter) in [
        ("tiny-llama", "peft-llama-adapter"),
        ("tiny-qwen2", "peft-qwen2-adapter"),
    ] {
        let g = &golden[name];
        let mut lm = tiny(name);
        let config = peft::load_adapter(&mut lm.model, &fixtures().join(adapter), 0).unwrap();
        assert!(config.rank > 0);
        assert_logits(
            &lm.model,
            &g["sequences"],
            &g["with_adapter"],
            1e-5,
            &format!("{name} with PEFT adapter"),
        );
        assert!(peft::merge_adapters(&mut lm.model).unwrap() > 0);
        assert_logits(
            &lm.model,
            &g["sequences"],
            &g["merged"],
            1e-5,
            &format!("{name} merged"),
        );
    }
}

#[test]
fn assay_adapter_loads_in_peft_with_the_same_logits() {
    // fixtures/assay-llama-adapter was written by `examples/make_assay_adapter.rs`; PEFT loaded it and
    // recorded its logits in peft-golden.json.
    let golden = read_json("peft-golden.json");
    let g = &golden["assay-llama-adapter"];
    let mut lm = tiny("tiny-llama");
    peft::load_adapter(&mut lm.model, &fixtures().join("assay-llama-adapter"), 0).unwrap();
    assert_logits(
        &lm.model,
        &g["sequences"],
        &g["with_adapter"],
        1e-5,
        "assay adapter in PEFT",
    );
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("assay-llama-adapter/adapter_config.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
}

#[test]
fn adamw_matches_torch() {
    let g = read_json("adamw-golden.json");
    let shapes: Vec<Vec<usize>> = g["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_value(s.clone()).unwrap())
        .collect();
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let vars: Vec<Var> = g["params"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&shapes)
        .map(|(p, s)| {
            Var::from_tensor(&Tensor::from_vec(floats(p), s.as_slice(), &Device::Cpu).unwrap())
                .unwrap()
        })
        .collect();
    let config = AdamWConfig {
        lr: g["lr"].as_f64().unwrap(),
        beta1: g["beta1"].as_f64().unwrap(),
        beta2: g["beta2"].as_f64().unwrap(),
        eps: g["eps"].as_f64().unwrap(),
        weight_decay: g["weight_decay"].as_f64().unwrap(),
    };
    let mut opt = AdamW::new(vars.clone(), config).unwrap();
    for (step, grads) in g["grads"].as_array().unwrap().iter().enumerate() {
        let grads: Vec<Option<Tensor>> = grads
            .as_array()
            .unwrap()
            .iter()
            .zip(&shapes)
            .map(|(x, s)| Some(Tensor::from_vec(floats(x), s.as_slice(), &Device::Cpu).unwrap()))
            .collect();
        opt.step(&grads, config.lr).unwrap();
        for (i, var) in vars.iter().enumerate() {
            let got = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in got.iter().zip(floats(&g["after"][step][i])) {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "step {step} param {i}: {a} vs torch {b}"
                );
            }
        }
    }
}

fn small_rows() -> Vec<TrainRow> {
    [
        "The quick brown fox jumps",
        "3 plus 4 is 7",
        "Validators score miners by training",
        "def add(a, b)",
    ]
    .iter()
    .map(|t| TrainRow::Completion {
        prompt: t[..5].to_string(),
        completion: t[5..].to_string(),
    })
    .collect()
}

fn lora_run(seed: u64, dropout: f32) -> Vec<Vec<f32>> {
    let mut lm = tiny("tiny-qwen2");
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout,
        ..Default::default()
    };
    attach_lora(&mut lm.model, &lora, seed).unwrap();
    let examples = tokenize_rows(&small_rows(), &lm.tokenizer, false, 256, "inline").unwrap();
    let params = lora_parameters(&mut lm.model);
    let config = TrainConfig {
        max_steps: Some(4),
        batch_tokens: 32,
        grad_accum: 2,
        seed,
        ..Default::default()
    };
    train(&lm.model, &params, &examples, &[], &config, |_| {}).unwrap();
    params
        .iter()
        .map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect()
}

#[test]
fn lora_training_is_bit_for_bit_reproducible() {
    let a = lora_run(5, 0.1);
    assert_eq!(
        a,
        lora_run(5, 0.1),
        "same data, config and seed must give identical adapters"
    );
    assert_ne!(a, lora_run(6, 0.1), "another seed gives another adapter");
}

#[test]
fn frozen_weights_get_no_gradient_and_backward_stops_at_the_lowest_adapter() {
    let grad_entries = |layers: Vec<usize>| {
        let mut lm = tiny("tiny-llama");
        let lora = LoraConfig {
            rank: 2,
            alpha: 2.0,
            layers: Some(layers),
            ..Default::default()
        };
        attach_lora(&mut lm.model, &lora, 0).unwrap();
        let examples = tokenize_rows(&small_rows(), &lm.tokenizer, false, 256, "inline").unwrap();
        let refs: Vec<&Example> = examples.iter().collect();
        let (loss, _) = batch_loss(&lm.model, &refs, 1.0, Pass::Training).unwrap();
        let store = loss.backward().unwrap();
        for (name, weight) in lm.model.named_parameters() {
            assert!(
                store.get(&weight).is_none(),
                "frozen {name} received a gradient buffer"
            );
        }
        for (name, var) in lora_parameters(&mut lm.model) {
            assert!(
                store.get(var.as_tensor()).is_some(),
                "{name} got no gradient"
            );
        }
        store.get_ids().count()
    };
    let top_only = grad_entries(vec![1]);
    let both = grad_entries(vec![0]);
    assert!(
        top_only < both,
        "adapting only layer 1 must not backpropagate through layer 0 ({top_only} vs {both})"
    );
}

#[test]
fn full_training_from_random_init_learns_and_exports() {
    let lm = tiny("tiny-llama");
    let config = ModelConfig {
        num_hidden_layers: 1,
        ..lm.model.config().clone()
    };
    let mut model = Model::random(config.clone(), 0.02, 9, DType::F32, &Device::Cpu).unwrap();
    let again = Model::random(config, 0.02, 9, DType::F32, &Device::Cpu).unwrap();
    let first = |m: &Model| {
        m.named_parameters()[1]
            .1
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(first(&model), first(&again), "random init is seeded");
    let params = model.make_trainable().unwrap();
    assert_eq!(params.len(), model.named_parameters().len());
    let examples = tokenize_rows(&small_rows(), &lm.tokenizer, false, 256, "inline").unwrap();
    let cfg = TrainConfig {
        max_steps: Some(30),
        optimizer: AdamWConfig {
            lr: 1e-2,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = train(&model, &params, &examples, &examples, &cfg, |_| {}).unwrap();
    let (before, after) = (report.initial_val_loss.unwrap(), report.val_loss.unwrap());
    assert!(
        after < 0.5 * before,
        "loss should fall well below half: {before} -> {after}"
    );
    let dir = tempfile::tempdir().unwrap();
    export::save_hf_folder(&mut model, &lm.tokenizer, dir.path()).unwrap();
    let reloaded = load(
        &ModelSource::HfFolder(dir.path().to_path_buf()),
        &LoadOptions::default(),
    )
    .unwrap();
    let input = Tensor::new(examples[0].tokens.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let a = model
        .forward(&input, Pass::Inference)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = reloaded
        .model
        .forward(&input, Pass::Inference)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(a, b, "the saved folder reloads to the same model");
}

#[test]
fn bad_training_data_gets_precise_errors() {
    let lm = tiny("tiny-qwen2");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let err = read_rows(&write("empty.jsonl", "\n\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("empty.jsonl") && err.contains("no training rows"),
        "{err}"
    );
    let err = read_rows(&write(
        "broken.jsonl",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \n",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 2"), "{err}");
    let err = read_rows(&write("binary.jsonl", "\u{0}\u{1}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("binary.jsonl"), "{err}");
    let rows = vec![TrainRow::Completion {
        prompt: "all prompt".into(),
        completion: String::new(),
    }];
    let err = tokenize_rows(&rows, &lm.tokenizer, false, 256, "rows.jsonl")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rows.jsonl: row 1") && err.contains("nothing to learn"),
        "{err}"
    );
    let rows = vec![TrainRow::Completion {
        prompt: "x ".repeat(300),
        completion: "y".into(),
    }];
    let err = tokenize_rows(&rows, &lm.tokenizer, false, 256, "rows.jsonl")
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than the training context"), "{err}");
    let rows = vec![TrainRow::Chat {
        messages: vec![assay_engine::ChatMessage::new("user", "hi")],
    }];
    let err = tokenize_rows(&rows, &lm.tokenizer, true, 256, "chat.jsonl")
        .unwrap_err()
        .to_string();
    assert!(err.contains("assistant"), "{err}");
}

/// Real learning: LoRA on the top layers of SmolLM2-135M-Instruct learns a reply format and
/// generalises it to names it never saw. Held-out loss must fall by at least 40%.
#[test]
fn smollm2_lora_lowers_held_out_loss() {
    let mut lm = load(
        &ModelSource::resolve(None).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    let row = |name: &str| TrainRow::Completion {
        prompt: format!("Badge request for {name}:"),
        completion: format!(" BADGE-{}-OK", name.to_uppercase()),
    };
    let train_names = [
        "alice", "bruno", "chen", "dara", "emil", "fatima", "goran", "hana", "ivan", "jun", "kofi",
        "lena",
    ];
    let held_out = ["maria", "nils", "olga", "pedro"];
    let train_rows: Vec<TrainRow> = train_names.iter().map(|n| row(n)).collect();
    let val_rows: Vec<TrainRow> = held_out.iter().map(|n| row(n)).collect();
    let train_ex = tokenize_rows(&train_rows, &lm.tokenizer, false, 512, "train").unwrap();
    let val_ex = tokenize_rows(&val_rows, &lm.tokenizer, false, 512, "val").unwrap();
    let layers = lm.model.config().num_hidden_layers;
    let lora = LoraConfig {
        rank: 8,
        alpha: 16.0,
        layers: Some((layers - 3..layers).collect()),
        ..Default::default()
    };
    attach_lora(&mut lm.model, &lora, 0).unwrap();
    let params = lora_parameters(&mut lm.model);
    let config = TrainConfig {
        optimizer: AdamWConfig {
            lr: 5e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
        max_steps: Some(8),
        batch_tokens: 512,
        ..Default::default()
    };
    let report = train(&lm.model, &params, &train_ex, &val_ex, &config, |_| {}).unwrap();
    let (before, after) = (report.initial_val_loss.unwrap(), report.val_loss.unwrap());
    eprintln!(
        "held-out loss {before:.3} -> {after:.3} in {:.1}s",
        report.wall_clock_s
    );
    assert!(
        after < 0.6 * before,
        "held-out loss fell only from {before} to {after}"
    );
}

#[test]
fn saved_adapters_name_a_base_peft_can_load_and_writes_fail_as_writes() {
    let mut lm = tiny("tiny-llama");
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        ..Default::default()
    };
    attach_lora(&mut lm.model, &lora, 3).unwrap();
    let out = tempfile::tempdir().unwrap();
    let base = fixtures().join("tiny-llama");
    peft::save_adapter(&mut lm.model, &lora, base.to_str().unwrap(), out.path()).unwrap();
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    // AutoPeftModelForCausalLM hands base_model_name_or_path to from_pretrained: a model folder
    // must be named by a path that opens from any working directory.
    let named = std::path::PathBuf::from(cfg["base_model_name_or_path"].as_str().unwrap());
    assert!(named.is_absolute(), "{named:?}");
    assert!(named.join("config.json").is_file(), "{named:?}");
    assert_eq!(cfg["revision"], Value::Null);
    let mut again = tiny("tiny-llama");
    let read = peft::load_adapter(&mut again.model, out.path(), 0).unwrap();
    assert_eq!((read.rank, read.alpha), (2, 4.0));

    // The embedded default's label becomes its hub id.
    let hub = tempfile::tempdir().unwrap();
    let label = assay_engine::assets::DEFAULT_MODEL_LABEL;
    peft::save_adapter(&mut lm.model, &lora, label, hub.path()).unwrap();
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(hub.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        cfg["base_model_name_or_path"],
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    );

    // A folder that cannot be created is a write error naming it, never "cannot read".
    let blocker = out.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = peft::save_adapter(&mut lm.model, &lora, "", &blocker.join("adapter")).unwrap_err();
    assert!(
        matches!(err, assay_engine::EngineError::Write { .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("cannot write"), "{err}");
}
