//! Attaching LoRA adapters to a model's projections, initialised as PEFT does.

use candle_core::{DType, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::models::llama::{LoraAdapter, Model};

/// The projections LoRA may adapt, by their module names (PEFT's `target_modules`): the names of
/// [`crate::models::llama::PROJECTIONS`], in its order.
pub const PROJECTIONS: [&str; 7] = {
    let mut names = [""; 7];
    let mut i = 0;
    while i < names.len() {
        names[i] = crate::models::llama::PROJECTIONS[i].1;
        i += 1;
    }
    names
};

/// Which projections get adapters, and their shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank `r` of each update.
    pub rank: usize,
    /// `lora_alpha`; the update is scaled by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    pub alpha: f64,
    /// Dropout on the adapter input during training.
    pub dropout: f32,
    /// Scale by `alpha / sqrt(r)` (rank-stabilised LoRA).
    pub use_rslora: bool,
    /// Projection names among [`PROJECTIONS`].
    pub target_modules: Vec<String>,
    /// Only these layer indices (PEFT's `layers_to_transform`); all when None.
    pub layers: Option<Vec<usize>>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            use_rslora: false,
            target_modules: PROJECTIONS.iter().map(|s| s.to_string()).collect(),
            layers: None,
        }
    }
}

impl LoraConfig {
    /// The factor applied to `B A x`.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Checks rank, dropout and module names.
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(EngineError::Request("LoRA rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(EngineError::Request(
                "LoRA dropout must be in [0, 1)".into(),
            ));
        }
        if self.target_modules.is_empty() {
            return Err(EngineError::Request(
                "LoRA needs at least one target module".into(),
            ));
        }
        for m in &self.target_modules {
            if !PROJECTIONS.contains(&m.as_str()) {
                return Err(EngineError::Request(format!(
                    "unknown LoRA target `{m}`: choose among {}",
                    PROJECTIONS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether the projection at `path` (`model.layers.3.mlp.up_proj`) gets an adapter.
    pub fn targets(&self, path: &str) -> bool {
        let module = path.rsplit('.').next().unwrap_or("");
        let layer = path.split('.').nth(2).and_then(|l| l.parse::<usize>().ok());
        self.target_modules.iter().any(|m| m == module)
            && match (&self.layers, layer) {
                (Some(allowed), Some(l)) => allowed.contains(&l),
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

/// Attaches fresh adapters to every targeted projection: `A` uniform in ±1/√in (PEFT's
/// Kaiming-uniform with a = √5), `B` zero, so the model's output is unchanged until training.
pub fn attach_lora(model: &mut Model, config: &LoraConfig, seed: u64) -> Result<()> {
    config.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (scale, dropout, rank) = (config.scale(), config.dropout, config.rank);
    let mut attached = 0;
    for (i, (path, linear)) in model.linears_mut().into_iter().enumerate() {
        if !config.targets(&path) {
            continue;
        }
        let (out_dim, in_dim) = linear.weight.dims2()?;
        let device = linear.weight.device().clone();
        let bound = 1.0 / (in_dim as f32).sqrt();
        let a: Vec<f32> = (0..rank * in_dim)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (rank, in_dim), &device)?)?;
        let b = Var::zeros((out_dim, rank), DType::F32, &device)?;
        linear.lora = Some(LoraAdapter::new(
            a,
            b,
            scale,
            dropout,
            seed ^ (i as u64 + 1),
        ));
        attached += 1;
    }
    if attached == 0 {
        return Err(EngineError::Request(
            "the LoRA config matches no projection of this model".into(),
        ));
    }
    Ok(())
}

/// The trainable adapter matrices under PEFT's key names
/// (`base_model.model.<module path>.lora_A.weight` / `lora_B.weight`).
pub fn lora_parameters(model: &mut Model) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    for (path, linear) in model.linears_mut() {
        if let Some(l) = &linear.lora {
            out.push((
                format!("base_model.model.{path}.lora_A.weight"),
                l.a.clone(),
            ));
            out.push((
                format!("base_model.model.{path}.lora_B.weight"),
                l.b.clone(),
            ));
        }
    }
    out
}

/// Removes every adapter, restoring the base model exactly (LoRA never changes base weights).
pub fn detach_lora(model: &mut Model) -> usize {
    model
        .linears_mut()
        .into_iter()
        .filter_map(|(_, l)| l.lora.take())
        .count()
}
