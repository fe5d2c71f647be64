//! RMSNorm for the hand-written training pass: forward ([`rms_norm`]), input gradient
//! ([`rms_norm_backward`]) and weight gradient ([`rms_norm_weight_grad`]).

#[cfg(feature = "cuda")]
use candle_core::DType;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use candle_core::backend::BackendStorage;

use super::plumbing::{cpu_from_f32, cpu_rows_f32, round_to, rows_of};
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, load_kernel};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::WrapErr;
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};

/// `y = w · round(x · rstd)` with `rstd = 1 / sqrt(mean(x²) + eps)` per row, as transformers'
/// Llama/Qwen2 RMSNorm: normalised in f32, rounded to the input dtype, then scaled.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    check_norm(x, w, "rms_norm")?;
    x.contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &RmsNorm(eps as f32))
}

/// The input gradient of [`rms_norm`]: `dx = rstd · (g − x̂ · mean(g · x̂))` with `g = dy · w` and
/// `x̂ = x · rstd`, in `x`'s dtype.
pub fn rms_norm_backward(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    check_norm(x, w, "rms_norm_backward")?;
    same_shape(x, dy, "rms_norm_backward")?;
    x.contiguous()?.apply_op3_no_bwd(
        &w.contiguous()?,
        &dy.contiguous()?,
        &RmsNormBackward(eps as f32),
    )
}

/// The weight gradient of [`rms_norm`]: `dw = Σ_rows dy · round(x̂)`, `[H]` in f32.
pub fn rms_norm_weight_grad(x: &Tensor, dy: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    same_shape(x, dy, "rms_norm_weight_grad")?;
    x.contiguous()?
        .apply_op2_no_bwd(&dy.contiguous()?, &RmsNormWeightGrad(eps as f32))
}

fn check_norm(x: &Tensor, w: &Tensor, what: &str) -> candle_core::Result<()> {
    let h = x.dim(candle_core::D::Minus1)?;
    if w.dims() != [h] || w.dtype() != x.dtype() {
        candle_core::bail!(
            "{what}: weight {:?} {:?} for rows of {h} {:?}",
            w.shape(),
            w.dtype(),
            x.dtype()
        );
    }
    Ok(())
}

fn same_shape(a: &Tensor, b: &Tensor, what: &str) -> candle_core::Result<()> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        candle_core::bail!(
            "{what}: {:?} {:?} and {:?} {:?} differ",
            a.shape(),
            a.dtype(),
            b.shape(),
            b.dtype()
        );
    }
    Ok(())
}

fn rstd(row: &[f32], eps: f32) -> f32 {
    let sum: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (sum / row.len() as f32 + eps).sqrt()
}

struct RmsNorm(f32);

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ws) = (cpu_rows_f32(x, lx)?, cpu_rows_f32(w, lw)?);
        let dtype = x.dtype();
        let mut out = Vec::with_capacity(xs.len());
        for row in xs.chunks(h) {
            let r = rstd(row, self.0);
            out.extend(
                row.iter()
                    .zip(&ws)
                    .map(|(&v, &wj)| wj * round_to(v * r, dtype)),
            );
        }
        Ok((cpu_from_f32(out, dtype)?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let (rows, h) = rows_of(lx);
        let dev = x.device();
        let f = load_kernel!(dev, "rms_norm", x.dtype());
        let (h32, eps) = (h as u32, self.0);
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
}

struct RmsNormBackward(f32);

impl CustomOp3 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "fused-rms-norm-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
        dy: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ws, ds) = (
            cpu_rows_f32(x, lx)?,
            cpu_rows_f32(w, lw)?,
            cpu_rows_f32(dy, ld)?,
        );
        let mut out = Vec::with_capacity(xs.len());
        for (row, drow) in xs.chunks(h).zip(ds.chunks(h)) {
            let r = rstd(row, self.0);
            let dot: f32 = row
                .iter()
                .zip(drow)
                .zip(&ws)
                .map(|((&v, &d), &wj)| d * wj * v * r)
                .sum();
            let mean = dot / h as f32;
            out.extend(
                row.iter()
                    .zip(drow)
                    .zip(&ws)
                    .map(|((&v, &d), &wj)| r * (d * wj - v * r * mean)),
            );
        }
        Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
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
        let (h32, eps) = (h as u32, self.0);
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
}

/// Row strips of the weight gradient's first stage: enough blocks to fill an H100 (132 SMs) a
/// few times over, few enough that the `[strips, H]` f32 partials stay small next to the input.
#[cfg(feature = "cuda")]
const WGRAD_STRIPS: usize = 1024;
/// Rows up to this wide take the weight gradient's narrow kernel (one group of 8 values a
/// thread, one chunk); wider ones the wide kernel, in chunks of `4 ·` this many columns.
#[cfg(feature = "cuda")]
const WGRAD_NARROW: usize = 8 * cuda::BLOCK as usize;

struct RmsNormWeightGrad(f32);

impl CustomOp2 for RmsNormWeightGrad {
    fn name(&self) -> &'static str {
        "fused-rms-norm-weight-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        dy: &CpuStorage,
        ld: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, h) = rows_of(lx);
        let (xs, ds) = (cpu_rows_f32(x, lx)?, cpu_rows_f32(dy, ld)?);
        let dtype = x.dtype();
        let mut dw = vec![0f32; h];
        for (row, drow) in xs.chunks(h).zip(ds.chunks(h)) {
            let r = rstd(row, self.0);
            for ((acc, &v), &d) in dw.iter_mut().zip(row).zip(drow) {
                *acc += d * round_to(v * r, dtype);
            }
        }
        Ok((CpuStorage::F32(dw), Shape::from(h)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
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
        let (n32, h32, per32, eps) = (rows as u32, h as u32, per_strip as u32, self.0);
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
}
