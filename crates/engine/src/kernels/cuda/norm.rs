//! RMSNorm's launches: forward, input gradient and the two-stage weight gradient (see
//! `kernels::norm`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CudaStorage, DType, Layout, Shape};

use crate::kernels::cuda::{self, load_kernel};
use crate::kernels::rows_of;

/// `rms_norm`'s forward with epsilon `eps`: kernel `rms_norm`, one block per row.
pub(crate) fn rms_norm(
    eps: f32,
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (rows, h) = rows_of(lx);
    let dev = x.device();
    let f = load_kernel!(dev, "rms_norm", x.dtype());
    let h32 = h as u32;
    macro_rules! launch {
        ($ty:ty) => {{
            let (xv, wv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(w, lw)?);
            let out = cuda::alloc::<$ty>(dev, rows * h)?;
            if rows > 0 {
                let mut b = f.builder();
                b.arg(&xv).arg(&wv).arg(&out).arg(&h32).arg(&eps);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
            }
            CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = match (x.dtype(), w.dtype()) {
        (DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16) => launch!(half::bf16),
        (a, b) => candle_core::bail!("rms_norm: {a:?} rows with {b:?} weight"),
    };
    Ok((out, lx.shape().clone()))
}

/// `rms_norm_backward` (the input gradient) with epsilon `eps`: kernel `rms_norm_backward`, one
/// block per row.
pub(crate) fn rms_norm_backward(
    eps: f32,
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
    dy: &CudaStorage,
    ld: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (rows, h) = rows_of(lx);
    let dev = x.device();
    let f = load_kernel!(dev, "rms_norm_backward", x.dtype());
    let h32 = h as u32;
    macro_rules! launch {
        ($ty:ty) => {{
            let (xv, wv, dv) = (
                cuda::view::<$ty>(x, lx)?,
                cuda::view::<$ty>(w, lw)?,
                cuda::view::<$ty>(dy, ld)?,
            );
            let out = cuda::alloc::<$ty>(dev, rows * h)?;
            if rows > 0 {
                let mut b = f.builder();
                b.arg(&xv).arg(&wv).arg(&dv).arg(&out).arg(&h32).arg(&eps);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
            }
            CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = match (x.dtype(), w.dtype(), dy.dtype()) {
        (DType::F32, DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16, DType::BF16) => launch!(half::bf16),
        (a, b, c) => {
            candle_core::bail!("rms_norm_backward: {a:?} rows, {b:?} weight, {c:?} grad")
        }
    };
    Ok((out, lx.shape().clone()))
}

/// Row strips of the weight gradient's first stage: enough blocks to fill an H100 (132 SMs) a
/// few times over, few enough that the `[strips, H]` f32 partials stay small next to the input.
const WGRAD_STRIPS: usize = 1024;
/// Rows up to this wide take the weight gradient's narrow kernel (one group of 8 values a
/// thread, one chunk); wider ones the wide kernel, in chunks of `4 ·` this many columns.
const WGRAD_NARROW: usize = 8 * cuda::BLOCK as usize;

/// `rms_norm_weight_grad` with epsilon `eps`: per-strip f32 partials (narrow or wide kernel), then
/// `rms_norm_wgrad_reduce` over the strips.
pub(crate) fn rms_norm_weight_grad(
    eps: f32,
    x: &CudaStorage,
    lx: &Layout,
    dy: &CudaStorage,
    ld: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (rows, h) = rows_of(lx);
    let dev = x.device();
    if rows == 0 {
        let dw = dev.alloc_zeros::<f32>(h)?;
        return Ok((
            CudaStorage::wrap_cuda_slice(dw, dev.clone()),
            Shape::from(h),
        ));
    }
    let per_strip = rows.div_ceil(WGRAD_STRIPS);
    let strips = rows.div_ceil(per_strip);
    let partial = cuda::alloc::<f32>(dev, strips * h)?;
    let (name, chunk) = if h <= WGRAD_NARROW {
        ("rms_norm_wgrad_partial_narrow", WGRAD_NARROW)
    } else {
        ("rms_norm_wgrad_partial_wide", 4 * WGRAD_NARROW)
    };
    let partial_cfg = LaunchConfig {
        grid_dim: (strips as u32, h.div_ceil(chunk) as u32, 1),
        block_dim: (cuda::BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    let f = load_kernel!(dev, name, x.dtype());
    let (n32, h32, per32) = (rows as u32, h as u32, per_strip as u32);
    macro_rules! launch {
        ($ty:ty) => {{
            let (xv, dv) = (cuda::view::<$ty>(x, lx)?, cuda::view::<$ty>(dy, ld)?);
            let mut b = f.builder();
            b.arg(&xv)
                .arg(&dv)
                .arg(&partial)
                .arg(&n32)
                .arg(&h32)
                .arg(&per32);
            b.arg(&eps);
            // SAFETY: arguments match the kernel's signature; the (strip, chunk) blocks
            // write every value of `partial`.
            unsafe { b.launch(partial_cfg) }.w()?;
        }};
    }
    match (x.dtype(), dy.dtype()) {
        (DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16) => launch!(half::bf16),
        (a, b) => candle_core::bail!("rms_norm_weight_grad: {a:?} rows with {b:?} grad"),
    }
    let dw = cuda::alloc::<f32>(dev, h)?;
    let reduce = load_kernel!(dev, "rms_norm_wgrad_reduce", DType::F32);
    let strips32 = strips as u32;
    let mut b = reduce.builder();
    b.arg(&partial).arg(&dw).arg(&strips32).arg(&h32);
    let cfg = LaunchConfig {
        grid_dim: (h.div_ceil(8) as u32, 1, 1),
        block_dim: (cuda::BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: arguments match the kernel's signature; 8 columns a block cover all of dw.
    unsafe { b.launch(cfg) }.w()?;
    Ok((
        CudaStorage::wrap_cuda_slice(dw, dev.clone()),
        Shape::from(h),
    ))
}
