//! AdamW with decoupled weight decay (as `torch.optim.AdamW`), learning-rate schedules and
//! global-norm gradient clipping.

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;

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

/// AdamW state over a fixed list of parameters.
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(params: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let zeros = |p: &Var| {
            p.as_tensor()
                .zeros_like()
                .and_then(|z| z.to_dtype(DType::F32))
        };
        let m = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            config,
            params,
            m,
            v,
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
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        for (i, param) in self.params.iter().enumerate() {
            let theta = param.as_tensor().to_dtype(DType::F32)?;
            let theta = (theta * (1.0 - lr * c.weight_decay))?;
            let Some(g) = &grads[i] else {
                param.set(&theta.to_dtype(param.dtype())?)?;
                continue;
            };
            let g = g.to_dtype(DType::F32)?;
            // exp_avg.lerp_(grad, 1 - beta1) == exp_avg + (1 - beta1) * (grad - exp_avg)
            self.m[i] = (&self.m[i] + ((&g - &self.m[i])? * (1.0 - c.beta1))?)?;
            self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((self.v[i].sqrt()? / bias2_sqrt)? + c.eps)?;
            let update = ((&self.m[i] / denom)? * (lr / bias1))?;
            param.set(&(theta - update)?.to_dtype(param.dtype())?)?;
        }
        Ok(())
    }
}

/// Learning-rate schedule after a linear warm-up from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    let mut total = 0.0f64;
    for g in grads.iter().flatten() {
        total += g
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
    }
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
