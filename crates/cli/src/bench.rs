//! `assay bench`: the engine's speed on the shapes of the peer baseline
//! (`shared/gpu/peer_hf_bench.py`), one JSON line per measurement, so that a script can set them
//! beside transformers' figures taken in the same call.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use assay_engine::candle_core::{DType, Device, Tensor, Var};
use assay_engine::train::backprop::{ScoredBatch, loss_and_grads};
use assay_engine::train::data::Example;
use assay_engine::train::optim::{AdamW, AdamWConfig};
use assay_engine::train::{LoraConfig, attach_lora, lora_parameters};
use assay_engine::{
    BatchLimits, GenerateOptions, Model, ModelConfig, Pass, SamplingParams, TextTokenizer,
    generate, open_device, score_sequences,
};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Measure generation, forward + loss, LoRA and from-scratch training on random weights.
#[derive(Debug, Args)]
#[command(after_help = "\
Shapes: `peer` is the baseline's (Qwen2.5-1.5B: hidden 1536, 28 layers, 12 heads, 2 KV heads, vocab
151936, bf16; from-scratch training on the 110M Llama: 768 wide, 12 layers, vocab 32768). `tiny` is a
few-second smoke run of the same code on the CPU.

Examples:
  assay bench --device cuda                         # all measurements, JSON lines on stdout
  assay bench --device cuda --only gen --gen-batch 16,320
  assay bench --device cpu --shape tiny             # smoke run

Compare only with transformers measured in the same call: scripts/gpu-bench.sh does both and
prints the ratio table.")]
pub struct BenchArgs {
    /// Measurements to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Measure::Gen, Measure::Fwd, Measure::Lora, Measure::Scratch])]
    only: Vec<Measure>,
    /// Model shapes: the peer baseline's, or a tiny smoke-test shape.
    #[arg(long, value_enum, default_value_t = Shape::Peer)]
    shape: Shape,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Batch sizes of the generation measurement (distinct prompts, one sample each).
    #[arg(long, value_delimiter = ',', default_values_t = [16, 320])]
    gen_batch: Vec<usize>,
    /// Dtype of the from-scratch model's weights and compute.
    #[arg(long, value_enum, default_value_t = ScratchDtype::Bf16)]
    scratch_dtype: ScratchDtype,
    /// Folder of reference models and outputs for the numerics check.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Also write the JSON lines to this file (appended).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Weights and compute of the from-scratch training measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScratchDtype {
    /// bf16 throughout.
    Bf16,
    /// f32 weights with TF32 matmuls.
    F32,
}

/// One measurement of the peer baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    /// Sampling generation (T = 0.8, 256 new tokens after 256 prompt tokens).
    Gen,
    /// Forward pass with the loss of every token, 32 × 1024.
    Fwd,
    /// A LoRA step (r = 16 on all seven projections, AdamW), 8 × 512.
    Lora,
    /// A from-scratch training step of the 110M Llama, 32 × 1024.
    Scratch,
    /// Best-of-N at full size: 20 problems × 16 samples from the generator, then every sample's
    /// step rewards from a second 1.5B backbone with a value head (Skywork's layout).
    Bon,
    /// Logits (f32 and bf16) and greedy tokens against transformers' on the same random weights
    /// (needs --reference, made by scripts/gpu/numerics_reference.py).
    Numerics,
}

/// Model shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shape {
    /// The peer baseline's shapes.
    Peer,
    /// A tiny model and short sequences, for smoke runs.
    Tiny,
}

/// Sizes of one bench run.
struct Plan {
    big: &'static str,
    small: &'static str,
    prompt: usize,
    new_tokens: usize,
    fwd: (usize, usize),
    lora: (usize, usize),
    scratch: (usize, usize),
    repeats: usize,
}

const QWEN2_5_1_5B: &str = r#"{"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1536,
 "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
 "num_key_value_heads": 2, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
 "tie_word_embeddings": true, "rms_norm_eps": 1e-6}"#;
const LLAMA_110M: &str = r#"{"model_type": "llama", "vocab_size": 32768, "hidden_size": 768,
 "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
 "num_key_value_heads": 12, "max_position_embeddings": 2048, "tie_word_embeddings": true,
 "rms_norm_eps": 1e-6}"#;
const TINY_QWEN2: &str = r#"{"model_type": "qwen2", "vocab_size": 512, "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": true,
 "rms_norm_eps": 1e-6}"#;
const TINY_LLAMA: &str = r#"{"model_type": "llama", "vocab_size": 512, "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 4, "max_position_embeddings": 256, "tie_word_embeddings": true,
 "rms_norm_eps": 1e-6}"#;

impl Shape {
    fn plan(self) -> Plan {
        match self {
            Shape::Peer => Plan {
                big: QWEN2_5_1_5B,
                small: LLAMA_110M,
                prompt: 256,
                new_tokens: 256,
                fwd: (32, 1024),
                lora: (8, 512),
                scratch: (32, 1024),
                repeats: 5,
            },
            Shape::Tiny => Plan {
                big: TINY_QWEN2,
                small: TINY_LLAMA,
                prompt: 16,
                new_tokens: 8,
                fwd: (4, 32),
                lora: (2, 32),
                scratch: (2, 32),
                repeats: 2,
            },
        }
    }
}

/// Runs the measurements and prints one JSON line each.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let plan = args.shape.plan();
    let mut out = Output::new(args.out.as_ref())?;
    let base = memory(&device);
    if args.only.contains(&Measure::Numerics) {
        let dir = args
            .reference
            .as_ref()
            .context("--only numerics needs --reference DIR (scripts/gpu/numerics_reference.py)")?;
        for name in ["qwen2", "llama"] {
            out.line(check_numerics(&dir.join(name), &device)?)?;
        }
    }
    let needs_big = args.only.iter().any(|m| {
        matches!(
            m,
            Measure::Gen | Measure::Fwd | Measure::Lora | Measure::Bon
        )
    });
    if needs_big {
        let config = ModelConfig::from_hf_json(plan.big)?;
        let started = Instant::now();
        let mut model = Model::random_on_device(config, 0.02, 0, DType::BF16, &device)?;
        out.line(
            json!({"what": "assay_params", "n": model.config().parameter_count(),
            "init_s": secs(started)}),
        )?;
        if args.only.contains(&Measure::Gen) {
            for &batch in &args.gen_batch {
                out.line(bench_generate(&model, &plan, batch)?)?;
            }
        }
        if args.only.contains(&Measure::Bon) {
            out.line(bench_best_of_n(&model, &plan, &device)?)?;
        }
        if args.only.contains(&Measure::Fwd) {
            out.line(bench_forward(&model, &plan, base)?)?;
        }
        if args.only.contains(&Measure::Lora) {
            out.line(bench_lora(&mut model, &plan, base)?)?;
        }
    }
    if args.only.contains(&Measure::Scratch) {
        let dtype = match args.scratch_dtype {
            ScratchDtype::Bf16 => DType::BF16,
            ScratchDtype::F32 => {
                assay_engine::candle_core::cuda::set_gemm_reduced_precision_f32(true);
                DType::F32
            }
        };
        out.line(bench_scratch(&plan, dtype, &device, memory(&device))?)?;
    }
    Ok(())
}

/// JSON lines to stdout and, optionally, a file.
struct Output(Option<std::fs::File>);

impl Output {
    fn new(path: Option<&PathBuf>) -> anyhow::Result<Self> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?,
            ),
            None => None,
        };
        Ok(Self(file))
    }

    fn line(&mut self, value: Value) -> anyhow::Result<()> {
        let text = value.to_string();
        println!("{text}");
        if let Some(f) = &mut self.0 {
            writeln!(f, "{text}")?;
        }
        Ok(())
    }
}

fn secs(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

fn memory(device: &Device) -> u64 {
    assay_engine::device::memory_in_use(device).unwrap_or(0)
}

/// Device memory in use above `base`, in GiB (0 on the CPU).
fn gib_above(device: &Device, base: u64) -> f64 {
    let used = memory(device).saturating_sub(base) as f64 / (1u64 << 30) as f64;
    (used * 10.0).round() / 10.0
}

fn random_ids(rng: &mut ChaCha8Rng, len: usize, below: u32) -> Vec<u32> {
    (0..len).map(|_| rng.random_range(0..below)).collect()
}

/// Waits for the device to finish its queue, so that timings cover the work itself.
fn sync(device: &Device) -> anyhow::Result<()> {
    device.synchronize()?;
    Ok(())
}

/// A tokenizer with one token per id and no end-of-sequence token, so that every sample runs to
/// its full length as in the peer (`min_new_tokens = max_new_tokens`).
fn numbered_tokenizer(vocab: usize) -> anyhow::Result<TextTokenizer> {
    use tokenizers::models::wordlevel::WordLevel;
    let model = WordLevel::builder()
        .vocab((0..vocab).map(|i| (format!("t{i}"), i as u32)).collect())
        .unk_token("t0".into())
        .build()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(TextTokenizer::from_tokenizer(tokenizers::Tokenizer::new(
        model,
    )))
}

/// The prompts, their samples, and the seconds the timed run took.
type TimedGeneration = (Vec<Vec<u32>>, Vec<Vec<assay_engine::Completion>>, f64);

/// Sampled generation as the peer measures it: `prompts` random prompts of the plan's length,
/// `n` samples each at T = 0.8, after a short warm-up. Returns the prompts, the samples and the
/// seconds of the timed run.
fn timed_generation(
    model: &Model,
    plan: &Plan,
    prompts: usize,
    n: usize,
    seed: u64,
) -> anyhow::Result<TimedGeneration> {
    let vocab = model.config().vocab_size;
    let tokenizer = numbered_tokenizer(vocab)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let below = (vocab as u32).min(150_000);
    let prompts: Vec<Vec<u32>> = (0..prompts)
        .map(|_| random_ids(&mut rng, plan.prompt, below))
        .collect();
    let params = SamplingParams {
        temperature: 0.8,
        max_new_tokens: plan.new_tokens,
        n,
        ..SamplingParams::default()
    };
    let options = GenerateOptions {
        seed: 0,
        max_batch_rows: prompts.len() * n,
    };
    // Warm-up as the peer does: short prompts, a few tokens.
    let short: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| p[..p.len().min(32)].to_vec())
        .collect();
    let warm = SamplingParams {
        max_new_tokens: 8,
        ..params.clone()
    };
    generate(model, &tokenizer, &short, &warm, options, |_| {})?;
    sync(model.device())?;
    let started = Instant::now();
    let out = generate(model, &tokenizer, &prompts, &params, options, |_| {})?;
    sync(model.device())?;
    Ok((prompts, out, started.elapsed().as_secs_f64()))
}

fn bench_generate(model: &Model, plan: &Plan, batch: usize) -> anyhow::Result<Value> {
    let (_, out, s) = timed_generation(model, plan, batch, 1, 1)?;
    let new: usize = out.iter().flatten().map(|c| c.token_ids.len()).sum();
    Ok(
        json!({"what": "assay_generate", "batch": batch, "prompt": plan.prompt,
        "new": plan.new_tokens, "generated": new, "s": (s * 100.0).round() / 100.0,
        "new_tok_per_s": (new as f64 / s).round()}),
    )
}

fn bench_forward(model: &Model, plan: &Plan, base: u64) -> anyhow::Result<Value> {
    let (batch, len) = plan.fwd;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let below = (model.config().vocab_size as u32).min(150_000);
    let seqs: Vec<Vec<u32>> = (0..batch)
        .map(|_| random_ids(&mut rng, len, below))
        .collect();
    let limits = BatchLimits {
        max_tokens: batch * len,
    };
    for _ in 0..2 {
        score_sequences(model, &seqs, limits, |_| {})?;
    }
    sync(model.device())?;
    let started = Instant::now();
    let mut mean_nll = 0.0;
    for _ in 0..plan.repeats {
        let scores = score_sequences(model, &seqs, limits, |_| {})?;
        let all: Vec<f32> = scores.iter().flat_map(|s| s.logprobs.clone()).collect();
        mean_nll = -all.iter().map(|&x| x as f64).sum::<f64>() / all.len() as f64;
    }
    sync(model.device())?;
    let dt = started.elapsed().as_secs_f64() / plan.repeats as f64;
    Ok(
        json!({"what": "assay_forward_loss", "batch": batch, "seq": len,
        "tok_per_s": ((batch * len) as f64 / dt).round(), "mean_nll": mean_nll,
        "peak_gib": gib_above(model.device(), base)}),
    )
}

/// Repeated training steps on one fixed batch: returns (mean seconds a step, first loss, last
/// loss, peak GiB above `base`).
fn time_steps(
    model: &Model,
    vars: Vec<Var>,
    lr: f64,
    examples: &[Example],
    steps: usize,
    base: u64,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let refs: Vec<&Example> = examples.iter().collect();
    let targets: usize = examples.iter().map(|e| e.tokens.len() - e.prompt_len).sum();
    let config = AdamWConfig {
        lr,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(vars.clone(), config)?;
    let batch = ScoredBatch::new(&refs, model.device())?;
    let mut peak: f64 = 0.0;
    let mut losses = Vec::new();
    let mut step = |peak: &mut f64| -> anyhow::Result<f64> {
        let (nll, grads) = loss_and_grads(model, &batch, targets as f64)?;
        *peak = peak.max(gib_above(model.device(), base));
        let grads: Vec<Option<Tensor>> = vars.iter().map(|v| grads.get(v).cloned()).collect();
        opt.step(&grads, lr)?;
        Ok(nll.to_scalar::<f32>()? as f64 / targets as f64)
    };
    let warmup = if std::env::var_os("ASSAY_BENCH_PROFILE").is_some() {
        1
    } else {
        2
    };
    for _ in 0..warmup {
        losses.push(step(&mut peak)?);
    }
    sync(model.device())?;
    let started = Instant::now();
    for _ in 0..steps {
        losses.push(step(&mut peak)?);
    }
    sync(model.device())?;
    let dt = started.elapsed().as_secs_f64() / steps as f64;
    Ok((dt, losses[0], *losses.last().expect("steps ran"), peak))
}

/// Timed training steps: 10 as the peer, or 1 under a profiler (ASSAY_BENCH_PROFILE set).
fn steps(plan: &Plan) -> usize {
    if std::env::var_os("ASSAY_BENCH_PROFILE").is_some() {
        1
    } else {
        plan.repeats * 2
    }
}

fn training_examples(rng: &mut ChaCha8Rng, batch: usize, len: usize, below: u32) -> Vec<Example> {
    (0..batch)
        .map(|_| Example {
            tokens: random_ids(rng, len, below),
            prompt_len: 1,
        })
        .collect()
}

fn bench_lora(model: &mut Model, plan: &Plan, base: u64) -> anyhow::Result<Value> {
    let (batch, len) = plan.lora;
    let lora = LoraConfig {
        rank: 16,
        alpha: 32.0,
        dropout: 0.0,
        target_modules: assay_engine::train::lora::PROJECTIONS
            .map(String::from)
            .to_vec(),
        ..LoraConfig::default()
    };
    attach_lora(model, &lora, 0)?;
    let vars: Vec<Var> = lora_parameters(model).into_iter().map(|(_, v)| v).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let below = (model.config().vocab_size as u32).min(150_000);
    let examples = training_examples(&mut rng, batch, len, below);
    let (dt, first, last, peak) = time_steps(model, vars, 1e-4, &examples, steps(plan), base)?;
    Ok(
        json!({"what": "assay_lora_step", "batch": batch, "seq": len,
        "ms": (dt * 10_000.0).round() / 10.0, "tok_per_s": ((batch * len) as f64 / dt).round(),
        "peak_gib": peak, "loss_first": first, "loss_last": last}),
    )
}

fn bench_scratch(plan: &Plan, dtype: DType, device: &Device, base: u64) -> anyhow::Result<Value> {
    let (batch, len) = plan.scratch;
    let config = ModelConfig::from_hf_json(plan.small)?;
    let mut model = Model::random_on_device(config, 0.02, 4, dtype, device)?;
    let params = model.config().parameter_count();
    let vars: Vec<Var> = model
        .make_trainable()?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let below = model.config().vocab_size as u32;
    let examples = training_examples(&mut rng, batch, len, below);
    let (dt, first, last, peak) = time_steps(&model, vars, 3e-4, &examples, steps(plan), base)?;
    Ok(
        json!({"what": "assay_scratch_train_step", "params": params, "dtype": format!("{dtype:?}"),
        "batch": batch, "seq": len, "ms": (dt * 10_000.0).round() / 10.0,
        "tok_per_s": ((batch * len) as f64 / dt).round(), "peak_gib": peak,
        "loss_first": first, "loss_last": last}),
    )
}

/// `‖a − b‖ / ‖b‖` over whole tensors.
fn relative_error(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    let diff = (a - b)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    let norm = b.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    Ok((diff / norm).sqrt())
}

/// Our logits and greedy tokens against transformers' on the model in `dir`.
fn check_numerics(dir: &std::path::Path, device: &Device) -> anyhow::Result<Value> {
    use assay_engine::weights::WeightMap;
    let config_text = std::fs::read_to_string(dir.join("config.json"))
        .with_context(|| format!("no reference model in {}", dir.display()))?;
    let reference =
        WeightMap::from_safetensors(&[dir.join("reference.safetensors")], DType::F32, device)?;
    let ids = reference
        .get_any("ids")
        .context("the reference lacks ids")?
        .to_dtype(DType::U32)?;
    let mut result = json!({"what": "assay_numerics", "model": dir.file_name().map(|n| n.to_string_lossy().to_string())});
    for (dtype, key, bound) in [
        (DType::F32, "logits_f32", 1e-4),
        (DType::BF16, "logits_bf16", 1e-2),
    ] {
        let config = ModelConfig::from_hf_json(&config_text)?;
        let weights = WeightMap::from_safetensors(&[dir.join("model.safetensors")], dtype, device)?;
        let model = Model::new(config, &weights)?;
        let ours = model.forward(&ids, Pass::Inference)?;
        let theirs = reference
            .get_any(key)
            .with_context(|| format!("the reference lacks {key}"))?;
        let err = relative_error(&ours, &theirs)?;
        result[format!("{key}_rel_err")] = json!(err);
        result[format!("{key}_ok")] = json!(err <= bound);
        if dtype == DType::BF16 {
            // bf16 rounding alone moves logits this far from the f32 truth, ours and theirs.
            let truth = reference
                .get_any("logits_f32")
                .context("the reference lacks logits_f32")?;
            result["bf16_ours_vs_f32_truth"] = json!(relative_error(&ours, &truth)?);
            result["bf16_theirs_vs_f32_truth"] = json!(relative_error(&theirs, &truth)?);
        }
        if dtype == DType::F32 {
            let tokenizer = numbered_tokenizer(model.config().vocab_size)?;
            let prompt: Vec<u32> = ids.get(0)?.narrow(0, 0, 16)?.to_vec1()?;
            let params = SamplingParams {
                max_new_tokens: 32,
                ..SamplingParams::default()
            };
            let out = generate(
                &model,
                &tokenizer,
                &[prompt],
                &params,
                GenerateOptions::default(),
                |_| {},
            )?;
            let greedy: Vec<u32> = reference
                .get_any("greedy_f32")
                .context("the reference lacks greedy_f32")?
                .to_dtype(DType::U32)?
                .to_vec1()?;
            let same = out[0][0].token_ids == greedy;
            result["greedy_f32_identical"] = json!(same);
            result["greedy_f32_first_difference"] = json!(
                out[0][0]
                    .token_ids
                    .iter()
                    .zip(&greedy)
                    .position(|(a, b)| a != b)
            );
        }
    }
    Ok(result)
}

/// The best-of-N experiment's GPU work at full size: `problems × samples` sampled solutions from
/// `generator`, then step rewards for every solution from a second backbone of the same shape with
/// a value head, through the reward model code `assay bon` uses. A solution's steps are eighths of
/// it (random weights write no newlines to split on).
fn bench_best_of_n(generator: &Model, plan: &Plan, device: &Device) -> anyhow::Result<Value> {
    use assay_bon::prm::{RewardInput, RewardKind, RewardModel, ValueHead, probabilities};
    let (problems, samples) = if plan.prompt > 64 { (20, 16) } else { (2, 3) };
    let vocab = generator.config().vocab_size;
    let backbone =
        Model::random_on_device(generator.config().clone(), 0.02, 6, DType::BF16, device)?;
    let hidden = backbone.config().hidden_size;
    let head = ValueHead {
        weight: (Tensor::randn(0f32, 1.0, hidden, device)? / (hidden as f64).sqrt())?,
        bias: 0.0,
    };
    // Skywork's recipe starts from the BOS text: give the numbered tokenizer one.
    let mut reward_tokenizer = numbered_tokenizer(vocab)?;
    reward_tokenizer.bos_token = Some("t1".into());
    let reward = RewardModel::new(
        assay_engine::LoadedModel {
            model: backbone,
            tokenizer: reward_tokenizer,
            source: assay_engine::ModelSource::HfFolder("<random>".into()),
        },
        head.clone(),
        RewardKind::Process,
    )?;
    let (prompts, out, gen_s) = timed_generation(generator, plan, problems, samples, 5)?;
    let started = Instant::now();
    let step = (plan.new_tokens / 8).max(1);
    let inputs: Vec<RewardInput> = out
        .iter()
        .zip(&prompts)
        .flat_map(|(completions, prompt)| {
            completions.iter().map(move |c| {
                let input_ids: Vec<u32> = prompt.iter().chain(&c.token_ids).copied().collect();
                let reward_positions = (prompt.len()..input_ids.len())
                    .step_by(step)
                    .skip(1)
                    .collect();
                RewardInput {
                    input_ids,
                    reward_positions,
                }
            })
        })
        .collect();
    let features = reward.features(&inputs, 32)?;
    let rewards: Vec<Vec<f64>> = features
        .iter()
        .map(|f| probabilities(&head, f))
        .collect::<Result<_, _>>()?;
    sync(device)?;
    let prm_s = started.elapsed().as_secs_f64();
    let steps: usize = rewards.iter().map(Vec::len).sum();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Ok(
        json!({"what": "assay_bon", "problems": problems, "samples": samples,
        "prompt": plan.prompt, "new": plan.new_tokens, "gen_s": round(gen_s), "prm_s": round(prm_s),
        "total_s": round(gen_s + prm_s), "step_rewards": steps}),
    )
}
