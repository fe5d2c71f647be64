//! The language-model loss's launches: `token_nll` and `token_nll_backward`, one block per row
//! (see `kernels::loss`).

use candle_core::backend::BackendStorage;
use candle_core::{Layout, Shape};

use crate::kernels::cuda::{self, kernel_dtype, load_kernel};
use crate::kernels::last_dim;

/// `token_nll`'s forward: per-row `[nll, argmax]` (f32) of logits against u32 targets.
pub(crate) fn token_nll(
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

/// `token_nll_backward`: `g · (softmax(x) − onehot(target))` from logits, targets and per-row
/// `[nll, g]`.
pub(crate) fn token_nll_backward(
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
