//! Model folder checks on small synthetic Llama-shaped models written with the safetensors crate.

use assay_integrity::models::{ModelRules, ModelViolation, check_model_folder};
use assay_integrity::report::Priority;
use assay_integrity::round::{ModelSubmission, check_model_round};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use std::collections::BTreeMap;
use std::path::Path;

const PROJECTIONS: [&str; 6] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// Tensor name -> f32 values; every tensor is 16x16.
type Weights = BTreeMap<String, Vec<f32>>;

fn random_weights(seed: u64, layers: usize) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut weights = Weights::new();
    let mut names = vec!["model.embed_tokens.weight".to_string()];
    for layer in 0..layers {
        names.extend(
            PROJECTIONS
                .iter()
                .map(|p| format!("model.layers.{layer}.{p}.weight")),
        );
    }
    for name in names {
        weights.insert(
            name,
            (0..256).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        );
    }
    weights
}

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| f32_to_f16(*v).to_le_bytes())
            .collect(),
        _ => values.iter().map(|v| *v as i8 as u8).collect(),
    }
}

/// Half-precision encoding for values in the normal range, infinities and NaN (enough for tests).
fn f32_to_f16(value: f32) -> u16 {
    if value.is_nan() {
        return 0x7E00;
    }
    if value.is_infinite() {
        return if value > 0.0 { 0x7C00 } else { 0xFC00 };
    }
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xFF) as i32 - 127 + 15;
    if exponent <= 0 {
        return sign;
    }
    sign | ((exponent as u16) << 10) | ((bits >> 13) & 0x3FF) as u16
}

fn write_model(dir: &Path, weights: &Weights, dtype: Dtype, shards: usize, architecture: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"architectures": ["{architecture}"], "hidden_size": 16}}"#),
    )
    .unwrap();
    let encoded: Vec<(String, Vec<u8>)> = weights
        .iter()
        .map(|(n, v)| (n.clone(), encode(v, dtype)))
        .collect();
    let per_shard = encoded.len().div_ceil(shards);
    for (shard, chunk) in encoded.chunks(per_shard).enumerate() {
        let views: Vec<(String, TensorView)> = chunk
            .iter()
            .map(|(name, bytes)| {
                let shape = vec![16, 16];
                (name.clone(), TensorView::new(dtype, shape, bytes).unwrap())
            })
            .collect();
        let bytes = serialize(views, None).unwrap();
        std::fs::write(dir.join(format!("model-{shard:05}.safetensors")), bytes).unwrap();
    }
}

fn rules() -> ModelRules {
    ModelRules {
        min_params: 1_000,
        max_params: 10_000,
        ..ModelRules::default()
    }
}

#[test]
fn valid_model_is_accepted_with_counts_and_norms() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &random_weights(1, 2),
        Dtype::BF16,
        1,
        "LlamaForCausalLM",
    );
    let report = check_model_folder(dir.path(), &rules());
    assert!(report.accepted(), "{:?}", report.violations);
    assert_eq!(report.parameters, 13 * 256);
    assert_eq!(report.architecture.as_deref(), Some("LlamaForCausalLM"));
    assert_eq!(report.projection_norms.len(), 12);
    // Uniform(-1, 1) has E[x^2] = 1/3, so a 256-element norm is close to sqrt(256/3) = 9.24.
    let norm = report.projection_norms["model.layers.0.mlp.up_proj.weight"];
    assert!((norm - 9.24).abs() < 1.5, "{norm}");
    assert_eq!(report.content_hash.len(), 64);
}

#[test]
fn architecture_and_parameter_range_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &random_weights(1, 2),
        Dtype::F32,
        1,
        "GPT2LMHeadModel",
    );
    let report = check_model_folder(
        dir.path(),
        &ModelRules {
            max_params: 1_000,
            ..rules()
        },
    );
    assert!(report.violations.iter().any(|v| matches!(v, ModelViolation::ArchitectureNotAllowed { found, .. } if found == "GPT2LMHeadModel")));
    assert!(
        report
            .violations
            .iter()
            .any(|v| matches!(v, ModelViolation::ParameterCount { found: 3328, .. }))
    );
}

#[test]
fn nan_in_bf16_and_infinity_in_f16_are_found() {
    for (dtype, bad) in [
        (Dtype::BF16, f32::NAN),
        (Dtype::F16, f32::INFINITY),
        (Dtype::F32, f32::NEG_INFINITY),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut weights = random_weights(2, 1);
        let values = weights
            .get_mut("model.layers.0.self_attn.k_proj.weight")
            .unwrap();
        values[3] = bad;
        values[200] = bad;
        write_model(dir.path(), &weights, dtype, 1, "LlamaForCausalLM");
        let report = check_model_folder(dir.path(), &rules());
        assert_eq!(
            report.violations,
            vec![ModelViolation::NonFinite {
                tensor: "model.layers.0.self_attn.k_proj.weight".into(),
                count: 2
            }],
            "{dtype:?}"
        );
    }
}

#[test]
fn sn37_norm_rules_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut weights = random_weights(3, 2);
    // 256 values of 70 give a norm of 1120: above the hard limit of 1000.
    weights.insert(
        "model.layers.1.mlp.down_proj.weight".into(),
        vec![70.0; 256],
    );
    write_model(dir.path(), &weights, Dtype::F32, 1, "LlamaForCausalLM");
    let report = check_model_folder(dir.path(), &rules());
    assert!(
        matches!(&report.violations[..], [ModelViolation::ProjectionNormTooLarge { tensor, .. }] if tensor.contains("layers.1.mlp.down_proj"))
    );

    // Norm 320 (above 200, below 1000) in layer 0 of every projection type: fraction 1/2 per type.
    let dir = tempfile::tempdir().unwrap();
    let mut weights = random_weights(3, 2);
    for p in PROJECTIONS {
        weights.insert(format!("model.layers.0.{p}.weight"), vec![20.0; 256]);
    }
    write_model(dir.path(), &weights, Dtype::F32, 1, "LlamaForCausalLM");
    let report = check_model_folder(dir.path(), &rules());
    assert!(
        matches!(&report.violations[..], [ModelViolation::TooManyHighNorms { mean_fraction, .. }] if (*mean_fraction - 0.5).abs() < 1e-6)
    );
}

#[test]
fn content_hash_ignores_sharding_and_catches_any_change() {
    let weights = random_weights(4, 2);
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_model(a.path(), &weights, Dtype::F32, 1, "LlamaForCausalLM");
    write_model(b.path(), &weights, Dtype::F32, 3, "LlamaForCausalLM");
    let mut changed = weights.clone();
    changed.get_mut("model.embed_tokens.weight").unwrap()[0] += 1e-3;
    write_model(c.path(), &changed, Dtype::F32, 1, "LlamaForCausalLM");
    let hash = |d: &Path| check_model_folder(d, &rules()).content_hash;
    assert_eq!(hash(a.path()), hash(b.path()));
    assert_ne!(hash(a.path()), hash(c.path()));
}

fn submit(miner: &str, block: u64, weights: &Weights) -> (ModelSubmission, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), weights, Dtype::F32, 1, "LlamaForCausalLM");
    let report = check_model_folder(dir.path(), &rules());
    (
        ModelSubmission {
            miner: miner.into(),
            priority: Priority {
                block,
                receipt_ms: 0,
            },
            report,
        },
        dir,
    )
}

fn perturbed(weights: &Weights, scale: f32, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    weights
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.iter()
                    .map(|x| x + scale * rng.random_range(-1.0f32..1.0))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn exact_and_perturbed_copies_lose_to_the_earlier_model() {
    let original = random_weights(5, 2);
    let (first, _d1) = submit("original", 10, &original);
    let (exact, _d2) = submit("exact-copier", 20, &original);
    let (noisy, _d3) = submit("noisy-copier", 15, &perturbed(&original, 0.01, 9));
    let (independent, _d4) = submit("independent", 5, &random_weights(6, 2));
    let verdicts = check_model_round(&[exact, noisy, first, independent], &rules(), None);
    let by_miner: BTreeMap<&str, _> = verdicts.iter().map(|v| (v.miner.as_str(), v)).collect();
    assert_eq!(verdicts[0].miner, "independent");
    assert!(by_miner["independent"].accepted());
    assert!(by_miner["original"].accepted());
    let (of, similarity) = by_miner["noisy-copier"].copy_of.clone().unwrap();
    assert_eq!(of, "original");
    assert!(similarity > 0.999 && similarity < 1.0, "{similarity}");
    assert_eq!(
        by_miner["exact-copier"].copy_of,
        Some(("original".to_string(), 1.0))
    );
}

#[test]
fn fine_tunes_of_a_shared_base_are_compared_by_their_updates() {
    let base = random_weights(7, 2);
    let (a, _d1) = submit("tuner-a", 1, &perturbed(&base, 0.001, 1));
    let (b, _d2) = submit("tuner-b", 2, &perturbed(&base, 0.001, 2));
    let (base_model, _d3) = submit("base", 0, &base);
    let base_fingerprint = base_model.report.fingerprint.clone();
    // Without the base, two light fine-tunes of one base look like copies of each other.
    let naive = check_model_round(&[a.clone(), b.clone()], &rules(), None);
    assert!(naive[1].copy_of.is_some());
    // With the base subtracted, their independent updates are not similar.
    let with_base = check_model_round(&[a.clone(), b], &rules(), Some(&base_fingerprint));
    assert!(with_base[1].copy_of.is_none());
    // A copy of tuner-a's fine-tune is still caught with the base subtracted.
    let a_weights = perturbed(&base, 0.001, 1);
    let (copy, _d4) = submit("copier", 3, &perturbed(&a_weights, 0.00002, 3));
    let verdicts = check_model_round(&[a, copy], &rules(), Some(&base_fingerprint));
    assert_eq!(
        verdicts[1].copy_of.as_ref().map(|c| c.0.as_str()),
        Some("tuner-a")
    );
}

#[test]
fn broken_folders_are_violations_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        check_model_folder(dir.path(), &rules())
            .violations
            .iter()
            .map(std::mem::discriminant)
            .collect::<Vec<_>>(),
        vec![
            std::mem::discriminant(&ModelViolation::BadConfig {
                message: String::new()
            }),
            std::mem::discriminant(&ModelViolation::NoWeights)
        ]
    );
    write_model(
        dir.path(),
        &random_weights(8, 1),
        Dtype::F32,
        1,
        "LlamaForCausalLM",
    );
    let path = dir.path().join("model-00000.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let report = check_model_folder(dir.path(), &rules());
    assert!(
        matches!(&report.violations[..], [ModelViolation::BadWeights { message, .. }] if message.contains("malformed"))
    );
    std::fs::write(&path, u64::MAX.to_le_bytes()).unwrap();
    let report = check_model_folder(dir.path(), &rules());
    assert!(
        matches!(&report.violations[..], [ModelViolation::BadWeights { message, .. }] if message.contains("exceeds"))
    );
}

#[test]
fn integer_tensors_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &random_weights(9, 1),
        Dtype::I8,
        1,
        "LlamaForCausalLM",
    );
    let report = check_model_folder(dir.path(), &rules());
    assert!(
        report
            .violations
            .iter()
            .any(|v| matches!(v, ModelViolation::UnsupportedDtype { dtype, .. } if dtype == "I8"))
    );
}
