//! Checks for model submissions (the SN37 rules): a Hugging Face model folder with `config.json`
//! and `*.safetensors` files holding F32, F16 or BF16 tensors.
//!
//! Checked: the architecture whitelist, the parameter-count range, NaN and infinity in any weight,
//! the per-projection Frobenius-norm rule of SN37, a content hash of the weights (exact copies),
//! and a sampled weight fingerprint for lightly perturbed copies.

use crate::minhash::{hash_bytes, splitmix64};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Rules a model folder must satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRules {
    /// Smallest accepted parameter count.
    pub min_params: u64,
    /// Largest accepted parameter count.
    pub max_params: u64,
    /// Accepted values of `config.json` `architectures[0]`; empty accepts any.
    pub architectures: Vec<String>,
    /// Any projection weight with a larger Frobenius norm rejects the model (SN37: 1000).
    pub max_projection_norm: f32,
    /// Norm above which a projection counts as "high" (SN37: 200).
    pub high_projection_norm: f32,
    /// Largest accepted mean, over projection types, of the fraction of layers with a high norm
    /// (SN37: 0.15).
    pub max_high_norm_fraction: f32,
    /// Largest accepted `config.json`, in bytes.
    pub max_config_bytes: u64,
    /// Largest accepted safetensors header, in bytes.
    pub max_header_bytes: u64,
    /// Largest accepted total size of the weight files, in bytes.
    pub max_total_bytes: u64,
    /// Fingerprint similarity at or above which a later model counts as a copy of an earlier one.
    pub copy_similarity: f32,
    /// Weights sampled per tensor for the fingerprint.
    pub fingerprint_samples: usize,
    /// Seed that picks the sampled positions (must be the same for all models compared).
    pub fingerprint_seed: u64,
}

impl Default for ModelRules {
    fn default() -> Self {
        Self {
            min_params: 0,
            max_params: 15_000_000_000,
            architectures: vec!["LlamaForCausalLM".into(), "Qwen2ForCausalLM".into()],
            max_projection_norm: 1000.0,
            high_projection_norm: 200.0,
            max_high_norm_fraction: 0.15,
            max_config_bytes: 1 << 20,
            max_header_bytes: 16 << 20,
            max_total_bytes: 64 << 30,
            copy_similarity: 0.999,
            fingerprint_samples: 64,
            fingerprint_seed: 0x000F_19E7,
        }
    }
}

/// A reason a model is rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelViolation {
    /// A file could not be read; the message says which and why.
    Unreadable {
        /// What failed.
        message: String,
    },
    /// `config.json` is missing, too large, not JSON, or lacks `architectures`.
    BadConfig {
        /// What is wrong.
        message: String,
    },
    /// `architectures[0]` is not on the whitelist.
    ArchitectureNotAllowed {
        /// The architecture found.
        found: String,
        /// The accepted ones.
        allowed: Vec<String>,
    },
    /// A safetensors file is malformed or breaks a size limit.
    BadWeights {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor has a dtype other than F32, F16 or BF16.
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The same tensor name appears in two files.
    DuplicateTensor {
        /// The tensor.
        tensor: String,
    },
    /// The parameter count is outside the accepted range.
    ParameterCount {
        /// Parameters found.
        found: u64,
        /// Accepted minimum.
        min: u64,
        /// Accepted maximum.
        max: u64,
    },
    /// A tensor holds NaN or infinite values.
    NonFinite {
        /// The tensor.
        tensor: String,
        /// How many values are not finite.
        count: u64,
    },
    /// A projection weight's norm is above the hard limit.
    ProjectionNormTooLarge {
        /// The tensor.
        tensor: String,
        /// Its Frobenius norm.
        norm: f32,
        /// The limit.
        limit: f32,
    },
    /// Too many layers have a high projection norm.
    TooManyHighNorms {
        /// Mean over projection types of the fraction of layers above the high-norm level.
        mean_fraction: f32,
        /// The limit.
        limit: f32,
    },
    /// No `*.safetensors` file in the folder.
    NoWeights,
}

/// One line saying what is wrong and what to use instead (for reports people read).
impl std::fmt::Display for ModelViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable { message } => write!(f, "unreadable: {message}"),
            Self::BadConfig { message } => write!(f, "config.json: {message}"),
            Self::ArchitectureNotAllowed { found, allowed } => write!(
                f,
                "architecture {found} is not allowed; use one of {}",
                allowed.join(", ")
            ),
            Self::BadWeights { file, message } => write!(f, "{file}: {message}"),
            Self::UnsupportedDtype { tensor, dtype } => {
                write!(f, "tensor {tensor} has dtype {dtype}; use F32, F16 or BF16")
            }
            Self::DuplicateTensor { tensor } => write!(f, "tensor {tensor} appears in two files"),
            Self::ParameterCount { found, min, max } => write!(
                f,
                "{found} parameters, outside the allowed range {min}..={max}"
            ),
            Self::NonFinite { tensor, count } => {
                write!(f, "tensor {tensor} holds {count} NaN/inf values")
            }
            Self::ProjectionNormTooLarge {
                tensor,
                norm,
                limit,
            } => write!(
                f,
                "projection {tensor} has norm {norm:.1}, above the limit {limit}"
            ),
            Self::TooManyHighNorms {
                mean_fraction,
                limit,
            } => write!(
                f,
                "mean fraction of layers with high projection norms is {mean_fraction:.3}, above {limit}"
            ),
            Self::NoWeights => f.write_str("no *.safetensors file in the folder"),
        }
    }
}

/// A sample of weights at seeded positions, per tensor: enough to recognise a perturbed copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightFingerprint {
    /// Tensor name -> (shape, sampled values).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// What the checks found in one model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The folder checked.
    pub dir: String,
    /// `architectures[0]` from `config.json`, if readable.
    pub architecture: Option<String>,
    /// Total number of tensor elements.
    pub parameters: u64,
    /// Hex SHA-256 over tensors in name order (name, dtype, shape, bytes): independent of sharding
    /// and header order, so re-packed copies hash the same.
    pub content_hash: String,
    /// Frobenius norm of every checked projection weight, by tensor name.
    pub projection_norms: BTreeMap<String, f32>,
    /// Sampled weights for copy detection.
    pub fingerprint: WeightFingerprint,
    /// Every rule broken; empty means accepted.
    pub violations: Vec<ModelViolation>,
}

impl ModelReport {
    /// True when no rule is broken.
    pub fn accepted(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks a model folder. Never panics; every failure is a violation in the report.
pub fn check_model_folder(dir: &Path, rules: &ModelRules) -> ModelReport {
    let mut report = ModelReport {
        dir: dir.display().to_string(),
        architecture: None,
        parameters: 0,
        content_hash: String::new(),
        projection_norms: BTreeMap::new(),
        fingerprint: WeightFingerprint::default(),
        violations: Vec::new(),
    };
    check_config_file(&dir.join("config.json"), rules, &mut report);
    match map_weight_files(dir, rules) {
        Ok(files) if files.is_empty() => report.violations.push(ModelViolation::NoWeights),
        Ok(files) => check_weights(&files, rules, &mut report),
        Err(violation) => report.violations.push(violation),
    }
    report
}

fn check_config_file(path: &Path, rules: &ModelRules, report: &mut ModelReport) {
    let bytes = match read_small_file(path, rules.max_config_bytes) {
        Ok(bytes) => bytes,
        Err(message) => {
            return report
                .violations
                .push(ModelViolation::BadConfig { message });
        }
    };
    match check_config(&bytes, rules) {
        Ok(architecture) => report.architecture = Some(architecture),
        Err(violation) => {
            if let ModelViolation::ArchitectureNotAllowed { found, .. } = &violation {
                report.architecture = Some(found.clone());
            }
            report.violations.push(violation);
        }
    }
}

fn read_small_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > max_bytes {
        return Err(format!(
            "{} has {size} bytes, more than the limit of {max_bytes}",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Parses `config.json` bytes and checks the architecture; returns `architectures[0]`.
/// This is the entry point the config fuzz target drives.
pub fn check_config(bytes: &[u8], rules: &ModelRules) -> Result<String, ModelViolation> {
    let bad = |message: String| ModelViolation::BadConfig { message };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("config.json is not valid JSON: {e}")))?;
    let architecture = value
        .get("architectures")
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(|a| a.as_str())
        .ok_or_else(|| {
            bad("config.json needs `architectures`: a list whose first entry is a string".into())
        })?;
    if !rules.architectures.is_empty() && !rules.architectures.iter().any(|a| a == architecture) {
        let found: String = architecture.chars().take(100).collect();
        return Err(ModelViolation::ArchitectureNotAllowed {
            found,
            allowed: rules.architectures.clone(),
        });
    }
    Ok(architecture.to_string())
}

/// A memory-mapped weight file and its name.
struct WeightFile {
    name: String,
    map: Mmap,
}

fn map_weight_files(dir: &Path, rules: &ModelRules) -> Result<Vec<WeightFile>, ModelViolation> {
    let unreadable = |message: String| ModelViolation::Unreadable { message };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| unreadable(format!("cannot list {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    paths.sort();
    let mut total = 0u64;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file = std::fs::File::open(&path)
            .map_err(|e| unreadable(format!("cannot open {}: {e}", path.display())))?;
        total = total.saturating_add(file.metadata().map(|m| m.len()).unwrap_or(u64::MAX));
        if total > rules.max_total_bytes {
            let message = format!(
                "weight files exceed the total limit of {} bytes",
                rules.max_total_bytes
            );
            return Err(ModelViolation::BadWeights {
                file: path.display().to_string(),
                message,
            });
        }
        // SAFETY: the mapping is read-only; the validator owns its download folder, so the file is
        // not modified while mapped (a concurrent writer could only change values, not memory safety
        // of the slices, which safetensors bounds-checks against the mapping's length).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| unreadable(format!("cannot map {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(WeightFile { name, map });
    }
    Ok(files)
}

/// Checks a safetensors file's header and layout and returns the parsed view.
/// This is the entry point the safetensors fuzz target drives.
pub fn check_safetensors_header<'a>(
    file: &str,
    bytes: &'a [u8],
    rules: &ModelRules,
) -> Result<SafeTensors<'a>, ModelViolation> {
    let bad = |message: String| ModelViolation::BadWeights {
        file: file.to_string(),
        message,
    };
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xFF; 8])))
        .ok_or_else(|| bad("file is shorter than the 8-byte header length".into()))?;
    if header_len > rules.max_header_bytes {
        return Err(bad(format!(
            "header of {header_len} bytes exceeds the limit of {}",
            rules.max_header_bytes
        )));
    }
    SafeTensors::deserialize(bytes).map_err(|e| bad(format!("malformed safetensors file: {e}")))
}

fn check_weights(files: &[WeightFile], rules: &ModelRules, report: &mut ModelReport) {
    let mut tensors = BTreeMap::new();
    for file in files {
        let parsed = match check_safetensors_header(&file.name, &file.map, rules) {
            Ok(parsed) => parsed,
            Err(violation) => return report.violations.push(violation),
        };
        for (name, view) in parsed.iter() {
            if tensors.insert(name.to_string(), view).is_some() {
                report.violations.push(ModelViolation::DuplicateTensor {
                    tensor: name.to_string(),
                });
            }
        }
    }
    let mut hasher = Sha256::new();
    let mut parameters = 0u64;
    for (name, view) in &tensors {
        let Some(values) = TensorValues::new(view.dtype(), view.data()) else {
            let dtype = format!("{:?}", view.dtype());
            report.violations.push(ModelViolation::UnsupportedDtype {
                tensor: name.clone(),
                dtype,
            });
            continue;
        };
        parameters = parameters.saturating_add(values.len() as u64);
        hash_tensor(&mut hasher, name, view.dtype(), view.shape(), view.data());
        let non_finite = values.count_non_finite();
        if non_finite > 0 {
            report.violations.push(ModelViolation::NonFinite {
                tensor: name.clone(),
                count: non_finite,
            });
        } else if projection_kind(name).is_some() {
            report
                .projection_norms
                .insert(name.clone(), values.frobenius_norm());
        }
        let samples = values.sample(
            rules.fingerprint_samples,
            rules.fingerprint_seed ^ hash_bytes(name.as_bytes(), 0),
        );
        report
            .fingerprint
            .tensors
            .insert(name.clone(), (view.shape().to_vec(), samples));
    }
    report.parameters = parameters;
    // A digest formats itself as lower-case hex; this crate does not depend on the engine's `hex`.
    report.content_hash = format!("{:x}", hasher.finalize());
    if parameters < rules.min_params || parameters > rules.max_params {
        let (min, max) = (rules.min_params, rules.max_params);
        report.violations.push(ModelViolation::ParameterCount {
            found: parameters,
            min,
            max,
        });
    }
    report
        .violations
        .extend(check_projection_norms(&report.projection_norms, rules));
}

fn hash_tensor(hasher: &mut Sha256, name: &str, dtype: Dtype, shape: &[usize], data: &[u8]) {
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(format!("{dtype:?}").as_bytes());
    hasher.update((shape.len() as u64).to_le_bytes());
    for &dim in shape {
        hasher.update((dim as u64).to_le_bytes());
    }
    hasher.update((data.len() as u64).to_le_bytes());
    hasher.update(data);
}

/// The SN37 projection type of a decoder weight (`q_proj` ... `down_proj`), if it is one.
fn projection_kind(name: &str) -> Option<&'static str> {
    const KINDS: [(&str, &str); 6] = [
        ("self_attn.q_proj.weight", "q_proj"),
        ("self_attn.k_proj.weight", "k_proj"),
        ("self_attn.v_proj.weight", "v_proj"),
        ("self_attn.o_proj.weight", "o_proj"),
        ("mlp.up_proj.weight", "up_proj"),
        ("mlp.down_proj.weight", "down_proj"),
    ];
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    layer.parse::<u32>().ok()?;
    KINDS
        .iter()
        .find(|(s, _)| *s == suffix)
        .map(|(_, kind)| *kind)
}

/// The SN37 norm rule: any norm above the hard limit rejects; otherwise the mean over projection
/// types of the fraction of layers above the high level must not exceed the limit.
fn check_projection_norms(
    norms: &BTreeMap<String, f32>,
    rules: &ModelRules,
) -> Vec<ModelViolation> {
    let mut violations = Vec::new();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (name, &norm) in norms {
        let Some(kind) = projection_kind(name) else {
            continue;
        };
        if norm > rules.max_projection_norm {
            let limit = rules.max_projection_norm;
            violations.push(ModelViolation::ProjectionNormTooLarge {
                tensor: name.clone(),
                norm,
                limit,
            });
        }
        let entry = by_kind.entry(kind).or_default();
        entry.0 += usize::from(norm > rules.high_projection_norm);
        entry.1 += 1;
    }
    if violations.is_empty() && !by_kind.is_empty() {
        let fractions: f32 = by_kind
            .values()
            .map(|&(high, all)| high as f32 / all as f32)
            .sum();
        let mean_fraction = fractions / by_kind.len() as f32;
        if mean_fraction > rules.max_high_norm_fraction {
            violations.push(ModelViolation::TooManyHighNorms {
                mean_fraction,
                limit: rules.max_high_norm_fraction,
            });
        }
    }
    violations
}

/// A typed view of a tensor's little-endian bytes.
enum TensorValues<'a> {
    F32(&'a [u8]),
    F16(&'a [u8]),
    Bf16(&'a [u8]),
}

impl<'a> TensorValues<'a> {
    fn new(dtype: Dtype, data: &'a [u8]) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(Self::F32(data)),
            Dtype::F16 => Some(Self::F16(data)),
            Dtype::BF16 => Some(Self::Bf16(data)),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::F32(d) => d.len() / 4,
            Self::F16(d) | Self::Bf16(d) => d.len() / 2,
        }
    }

    fn get(&self, index: usize) -> f32 {
        match self {
            Self::F32(d) => f32::from_le_bytes([
                d[4 * index],
                d[4 * index + 1],
                d[4 * index + 2],
                d[4 * index + 3],
            ]),
            Self::F16(d) => f16_to_f32(u16::from_le_bytes([d[2 * index], d[2 * index + 1]])),
            Self::Bf16(d) => f32::from_bits(
                u32::from(u16::from_le_bytes([d[2 * index], d[2 * index + 1]])) << 16,
            ),
        }
    }

    /// Counts NaN and infinities from the exponent bits, without converting.
    fn count_non_finite(&self) -> u64 {
        let count16 = |d: &[u8], mask: u16| {
            d.chunks_exact(2)
                .filter(|c| u16::from_le_bytes([c[0], c[1]]) & mask == mask)
                .count() as u64
        };
        match self {
            Self::F32(d) => d
                .chunks_exact(4)
                .filter(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
                .count() as u64,
            Self::F16(d) => count16(d, 0x7C00),
            Self::Bf16(d) => count16(d, 0x7F80),
        }
    }

    /// Frobenius norm. Squares are summed in f64 because a projection has millions of elements
    /// and an f32 running sum would lose the small terms.
    fn frobenius_norm(&self) -> f32 {
        (0..self.len())
            .map(|i| f64::from(self.get(i)).powi(2))
            .sum::<f64>()
            .sqrt() as f32
    }

    /// Values at `count` seeded positions (with replacement).
    fn sample(&self, count: usize, seed: u64) -> Vec<f32> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        let mut state = seed;
        (0..count)
            .map(|_| self.get((splitmix64(&mut state) % len as u64) as usize))
            .collect()
    }
}

/// IEEE half to single precision (exact for every half value).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1F);
    let mantissa = u32::from(bits & 0x3FF);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, m) => {
            let subnormal = m as f32 * 2f32.powi(-24);
            return if sign != 0 { -subnormal } else { subnormal };
        }
        (0x1F, m) => 0x7F80_0000 | (m << 13),
        (e, m) => ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Cosine similarity of two fingerprints over the tensors they share (same name and shape).
/// With `base`, the base model's samples are subtracted first, so two independent fine-tunes of
/// the same base compare by their (unrelated) updates while a copy of a fine-tune still matches.
pub fn fingerprint_similarity(
    a: &WeightFingerprint,
    b: &WeightFingerprint,
    base: Option<&WeightFingerprint>,
) -> f32 {
    let (mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64);
    for (name, (shape, values_a)) in &a.tensors {
        let Some((shape_b, values_b)) = b.tensors.get(name) else {
            continue;
        };
        if shape != shape_b || values_a.len() != values_b.len() {
            continue;
        }
        let base_values = base
            .and_then(|f| f.tensors.get(name))
            .filter(|(s, v)| s == shape && v.len() == values_a.len());
        for (i, (&x, &y)) in values_a.iter().zip(values_b).enumerate() {
            let offset = base_values.map_or(0.0, |(_, v)| v[i]);
            let (x, y) = (f64::from(x - offset), f64::from(y - offset));
            dot += x * y;
            norm_a += x * x;
            norm_b += y * y;
        }
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        return 0.0;
    }
    (dot / (norm_a.sqrt() * norm_b.sqrt())) as f32
}
