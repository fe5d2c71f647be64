//! The language-model loss: [`token_nll`], per-row negative log-likelihood and arg-max straight from
//! the logits, never materialising the log-softmax over the vocabulary; differentiable. The
//! exponentials are summed in f64 on both backends.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::plumbing::{cpu_from_f32, cpu_rows_f32, cpu_u32, last_dim};
#[cfg(feature = "cuda")]
use super::plumbing::{cuda, kernel_dtype, load_kernel};

/// Per-row `[nll, argmax]` (f32) of logits `[N, V]` against u32 targets `[N]`.
struct TokenNll;

fn argmax_lowest(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

impl CustomOp2 for TokenNll {
    fn name(&self) -> &'static str {
        "token-nll"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let targets = cpu_u32(t, lt)?;
        let mut out = Vec::with_capacity(rows * 2);
        for (row, &target) in values.chunks(cols).zip(&targets) {
            let best = argmax_lowest(row);
            let max = row[best];
            // The exponentials are summed in f64: an f32 sum drops every term below half an ulp
            // of the running total (the max's own term is 1), which biases each loss low by up to
            // the whole tail's mass (1e-4 nats at a 49k vocabulary with the tail at −20).
            let sum: f64 = row.iter().map(|&v| f64::from((v - max).exp())).sum();
            let xt = row.get(target as usize).copied().unwrap_or(f32::NAN);
            out.push((f64::from(max) - f64::from(xt) + sum.ln()) as f32);
            out.push(best as f32);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, 2))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = load_kernel!(dev, "token_nll", x.dtype());
        let targets = cuda::view::<u32>(t, lt)?;
        let out = cuda::alloc::<f32>(dev, rows * 2)?;
        let v = cols as u32;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let mut b = f.builder();
                b.arg(&input).arg(&targets).arg(&out).arg(&v);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
            }};
        }
        kernel_dtype!(x.dtype(), "token nll", launch);
        let out = candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone());
        Ok((out, Shape::from((rows, 2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        t: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = token_nll_backward(x, t, res, &grad.narrow(1, 0, 1)?)?;
        Ok((Some(dx), None))
    }
}

/// The gradient of the logits for per-row loss gradients `grad` `[N, 1]` f32, given the logits,
/// targets and the `[N, 2]` result of [`token_nll`]: `grad · (softmax(x) − onehot(target))`, in the
/// logits' dtype.
pub fn token_nll_backward(
    logits: &Tensor,
    targets: &Tensor,
    nll: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<Tensor> {
    let ng = Tensor::cat(&[&nll.narrow(1, 0, 1)?, grad], 1)?.contiguous()?;
    logits
        .contiguous()?
        .apply_op3_no_bwd(&targets.contiguous()?, &ng, &TokenNllBackward)
}

/// `dx = g · (softmax(x) − onehot(target))` from logits, targets and per-row `[nll, g]`.
struct TokenNllBackward;

impl candle_core::CustomOp3 for TokenNllBackward {
    fn name(&self) -> &'static str {
        "token-nll-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
        ng: &CpuStorage,
        lng: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, cols) = last_dim(lx)?;
        let values = cpu_rows_f32(x, lx)?;
        let targets = cpu_u32(t, lt)?;
        let ng = cpu_rows_f32(ng, lng)?;
        let mut out = vec![0f32; values.len()];
        for (r, (row, o)) in values.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
            let target = targets[r] as usize;
            let lse = ng[2 * r] + row[target];
            let g = ng[2 * r + 1];
            for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                let onehot = if j == target { 1.0 } else { 0.0 };
                *o = g * ((v - lse).exp() - onehot);
            }
        }
        Ok((cpu_from_f32(out, x.dtype())?, lx.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
        ng: &candle_core::CudaStorage,
        lng: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        let (rows, cols) = last_dim(lx)?;
        let dev = x.device();
        let f = load_kernel!(dev, "token_nll_backward", x.dtype());
        let targets = cuda::view::<u32>(t, lt)?;
        let ng = cuda::view::<f32>(ng, lng)?;
        let v = cols as u32;
        macro_rules! launch {
            ($ty:ty) => {{
                let input = cuda::view::<$ty>(x, lx)?;
                let out = cuda::alloc::<$ty>(dev, rows * cols)?;
                let mut b = f.builder();
                b.arg(&input).arg(&targets).arg(&ng).arg(&out).arg(&v);
                // SAFETY: arguments match the kernel's signature; one block per row.
                unsafe { b.launch(cuda::rows(rows)) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = kernel_dtype!(x.dtype(), "token nll backward", launch);
        Ok((out, lx.shape().clone()))
    }
}

/// Per-row `[nll, argmax]` (f32, `[N, 2]`) of `logits` `[N, V]` (any float dtype) for u32
/// `targets` `[N]`: the loss of each target token and the model's greedy choice, computed in f32
/// without a `[N, V]` log-softmax. Differentiable in `logits` through the nll column.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, TokenNll)
}
