//! The AdamW update's launches, in place: `adamw_moments`, `adamw_apply` and `adamw_decay`, 8
//! values a thread (see `kernels::optimizer`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::{CudaStorage, Layout};

use crate::kernels::cuda::{self, elementwise_config, kernel_dtype, load_kernel};
use crate::kernels::optimizer::AdamWStep;

/// `adamw_moments`: `m += (1 − β₁)(g − m)`, `v = β₂ v + (1 − β₂) g²` in place on `mv` `[2, n]`.
pub(crate) fn adamw_moments(
    step: AdamWStep,
    mv: &mut CudaStorage,
    lmv: &Layout,
    grad: &CudaStorage,
    lg: &Layout,
) -> candle_core::Result<()> {
    let n = lg.shape().elem_count();
    if n == 0 {
        return Ok(());
    }
    let dev = mv.device().clone();
    let f = load_kernel!(dev, "adamw_moments", grad.dtype());
    let (b1, b2) = ((1.0 - step.beta1) as f32, step.beta2 as f32);
    let one_minus_b2 = (1.0 - step.beta2) as f32;
    let mut state = cuda::view_mut::<f32>(mv, lmv)?;
    macro_rules! launch {
        ($ty:ty) => {{
            let gv = cuda::view::<$ty>(grad, lg)?;
            let mut b = f.builder();
            b.arg(&mut state)
                .arg(&gv)
                .arg(&n)
                .arg(&b1)
                .arg(&b2)
                .arg(&one_minus_b2);
            // SAFETY: arguments match the kernel's signature; the state holds 2n values.
            unsafe { b.launch(elementwise_config(n)) }.w()?;
        }};
    }
    kernel_dtype!(grad.dtype(), "adamw_moments", launch);
    Ok(())
}

/// `adamw_apply` with the step's `constants` (decay factor, 1 / sqrt(1 − β₂ᵗ), ε,
/// lr / (1 − β₁ᵗ)), in place on `param`.
pub(crate) fn adamw_apply(
    constants: (f32, f32, f32, f32),
    param: &mut CudaStorage,
    lp: &Layout,
    mv: &CudaStorage,
    lmv: &Layout,
) -> candle_core::Result<()> {
    let n = lp.shape().elem_count();
    if n == 0 {
        return Ok(());
    }
    let dev = param.device().clone();
    let f = load_kernel!(dev, "adamw_apply", param.dtype());
    let (decay, inv_bias2_sqrt, eps, step_size) = constants;
    let state = cuda::view::<f32>(mv, lmv)?;
    macro_rules! launch {
        ($ty:ty) => {{
            let mut pv = cuda::view_mut::<$ty>(param, lp)?;
            let mut b = f.builder();
            b.arg(&mut pv)
                .arg(&state)
                .arg(&n)
                .arg(&decay)
                .arg(&inv_bias2_sqrt);
            b.arg(&eps).arg(&step_size);
            // SAFETY: arguments match the kernel's signature; the state holds 2n values.
            unsafe { b.launch(elementwise_config(n)) }.w()?;
        }};
    }
    kernel_dtype!(param.dtype(), "adamw_apply", launch);
    Ok(())
}

/// `decay_only` with the step's `constants` (only the decay factor is used), in place on `param`.
pub(crate) fn adamw_decay(
    constants: (f32, f32, f32, f32),
    param: &mut CudaStorage,
    lp: &Layout,
) -> candle_core::Result<()> {
    let n = lp.shape().elem_count();
    if n == 0 {
        return Ok(());
    }
    let dev = param.device().clone();
    let f = load_kernel!(dev, "adamw_decay", param.dtype());
    let (decay, ..) = constants;
    macro_rules! launch {
        ($ty:ty) => {{
            let mut pv = cuda::view_mut::<$ty>(param, lp)?;
            let mut b = f.builder();
            b.arg(&mut pv).arg(&n).arg(&decay);
            // SAFETY: arguments match the kernel's signature.
            unsafe { b.launch(elementwise_config(n)) }.w()?;
        }};
    }
    kernel_dtype!(param.dtype(), "decay_only", launch);
    Ok(())
}
