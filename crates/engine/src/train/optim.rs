//! AdamW with decoupled weight decay (as `torch.optim.AdamW`), learning-rate schedules and
//! global-norm gradient clipping.

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kernels::optimizer::{AdamWStep, adamw_apply, adamw_moments, decay_only};

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW state over a fixed list of parameters: both moments of a parameter live in one f32
/// buffer `[2, n]`, so a step is two fused in-place kernels per parameter ([`crate::fused`]).
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<Var>,
    moments: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(params: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let moments = params
            .iter()
            .map(|p| Tensor::zeros((2, p.elem_count()), DType::F32, p.device()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            config,
            params,
            moments,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update with `grads[i]` for parameter `i` (None: no gradient, parameter only decays) at
    /// learning rate `lr`. Arithmetic follows torch's single-tensor AdamW, in f32.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let step = AdamWStep {
            lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            step: self.step,
        };
        for (i, param) in self.params.iter().enumerate() {
            let param = param.as_tensor();
            match &grads[i] {
                None => decay_only(param, step)?,
                Some(g) => {
                    adamw_moments(&self.moments[i], g, step)?;
                    adamw_apply(param, &self.moments[i], step)?;
                }
            }
        }
        Ok(())
    }
}

/// Learning-rate schedule after a linear warm-up from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Stay at the peak.
    Constant,
    /// Decay linearly to 0 at the last step.
    Linear,
    /// Half-cosine decay to 0 at the last step.
    Cosine,
}

impl Schedule {
    /// The rate at 0-based `step` of `total`, peaking at `peak` after `warmup` steps (as
    /// transformers' `get_*_schedule_with_warmup`).
    pub fn lr(self, peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
        if step < warmup {
            return peak * step as f64 / warmup.max(1) as f64;
        }
        let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
        match self {
            Schedule::Constant => peak,
            Schedule::Linear => peak * (1.0 - progress).max(0.0),
            Schedule::Cosine => {
                peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
            }
        }
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Option<Tensor>], max_norm: f64) -> Result<f64> {
    // One read-back for all parameters: a scalar read per parameter would wait on the device
    // once per tensor.
    let squares = grads
        .iter()
        .flatten()
        .map(|g| g.to_dtype(DType::F32)?.sqr()?.sum_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    if squares.is_empty() {
        return Ok(0.0);
    }
    let total: f64 = Tensor::stack(&squares, 0)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?
        .iter()
        .sum();
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        for g in grads.iter_mut().flatten() {
            *g = (&*g * factor)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_warm_up_then_decay() {
        assert_eq!(Schedule::Cosine.lr(1.0, 0, 10, 110), 0.0);
        assert_eq!(Schedule::Cosine.lr(1.0, 10, 10, 110), 1.0);
        assert!((Schedule::Cosine.lr(1.0, 60, 10, 110) - 0.5).abs() < 1e-12);
        assert!((Schedule::Linear.lr(1.0, 60, 10, 110) - 0.5).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(2.0, 100, 10, 110), 2.0);
    }
}
