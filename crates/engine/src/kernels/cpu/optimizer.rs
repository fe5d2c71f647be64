//! The AdamW update on the CPU, in place: moments, apply and decay alone (see
//! `kernels::optimizer`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout};

use super::cpu_rows_f32;
use crate::kernels::optimizer::AdamWStep;

fn cpu_write_f32(
    dst: &mut CpuStorage,
    l: &Layout,
    f: impl Fn(usize, f32) -> f32,
) -> candle_core::Result<()> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("in-place op: contiguous tensor expected".into()))?;
    match dst {
        CpuStorage::F32(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = f(i, *x)),
        CpuStorage::BF16(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = half::bf16::from_f32(f(i, x.to_f32()))),
        CpuStorage::F16(v) => v[start..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = half::f16::from_f32(f(i, x.to_f32()))),
        other => candle_core::bail!(
            "in-place op: float tensor expected, got {:?}",
            other.dtype()
        ),
    }
    Ok(())
}

/// `adamw_moments`: `m += (1 − β₁)(g − m)`, `v = β₂ v + (1 − β₂) g²` in place on `mv` `[2, n]`.
pub(crate) fn adamw_moments(
    step: AdamWStep,
    mv: &mut CpuStorage,
    lmv: &Layout,
    grad: &CpuStorage,
    lg: &Layout,
) -> candle_core::Result<()> {
    let g = cpu_rows_f32(grad, lg)?;
    let n = g.len();
    let (b1, b2) = ((1.0 - step.beta1) as f32, step.beta2 as f32);
    let one_minus_b2 = (1.0 - step.beta2) as f32;
    cpu_write_f32(mv, lmv, |i, x| {
        if i < n {
            x + (g[i] - x) * b1
        } else {
            let gi = g[i - n];
            x * b2 + gi * gi * one_minus_b2
        }
    })
}

/// `adamw_apply` with the step's `constants` (decay factor, 1 / sqrt(1 − β₂ᵗ), ε,
/// lr / (1 − β₁ᵗ)), in place on `param`.
pub(crate) fn adamw_apply(
    constants: (f32, f32, f32, f32),
    param: &mut CpuStorage,
    lp: &Layout,
    mv: &CpuStorage,
    lmv: &Layout,
) -> candle_core::Result<()> {
    let mv = cpu_rows_f32(mv, lmv)?;
    let n = mv.len() / 2;
    let (decay, inv_bias2_sqrt, eps, step_size) = constants;
    cpu_write_f32(param, lp, |i, theta| {
        let denom = mv[n + i].sqrt() * inv_bias2_sqrt + eps;
        theta * decay - mv[i] / denom * step_size
    })
}

/// `decay_only` with the step's `constants` (only the decay factor is used), in place on `param`.
pub(crate) fn adamw_decay(
    constants: (f32, f32, f32, f32),
    param: &mut CpuStorage,
    lp: &Layout,
) -> candle_core::Result<()> {
    let (decay, ..) = constants;
    cpu_write_f32(param, lp, |_, theta| theta * decay)
}
