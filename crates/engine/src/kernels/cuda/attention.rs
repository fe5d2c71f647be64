//! Attention's launches: the masked softmax and its backward, a block per row or, for rows of at
//! most `WARP_ROW` values, a warp per row (see `kernels::attention`).

use candle_core::DType;
use candle_core::backend::BackendStorage;
use candle_core::{Layout, Shape};

use crate::kernels::attention::AttentionMask;
use crate::kernels::cuda::{self, kernel_dtype, load_kernel};
use crate::kernels::last_dim;

/// The longest row the warp-per-row softmax kernels take (32 lanes × 32 values).
const WARP_ROW: usize = 1024;

/// Row kernel `name` (a block per row) or, for rows of at most [`WARP_ROW`] values, its twin
/// `name_warp` (a warp per row, eight rows a block, the row count as an extra argument after the
/// output); returns the kernel's name, whether it is the warp twin, and its launch shape.
fn row_kernel(
    name: &str,
    rows: usize,
    cols: usize,
) -> (
    String,
    bool,
    candle_core::cuda_backend::cudarc::driver::LaunchConfig,
) {
    if cols > WARP_ROW {
        return (name.to_string(), false, cuda::rows(rows));
    }
    let cfg = candle_core::cuda_backend::cudarc::driver::LaunchConfig {
        grid_dim: (rows.div_ceil(8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    (format!("{name}_warp"), true, cfg)
}

/// `softmax(scale · x)` over the keys each row may see under `mask`, exact zeros elsewhere; `pad`
/// `[batch]` u32 hides each batch entry's first `pad[b]` keys. Kernel `masked_softmax`.
pub(crate) fn masked_softmax(
    mask: AttentionMask,
    x: &candle_core::CudaStorage,
    lx: &Layout,
    pad: &candle_core::CudaStorage,
    lp: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    let (rows, cols) = last_dim(lx)?;
    let dev = x.device();
    let (name, warp, cfg) = row_kernel("masked_softmax", rows, cols);
    let f = load_kernel!(dev, &name, x.dtype());
    let n = rows as u32;
    let pad = cuda::view::<u32>(pad, lp)?;
    let (s, t, past, rpb) = (
        cols as u32,
        mask.queries as u32,
        mask.past as u32,
        mask.rows_per_batch as u32,
    );
    let scale = mask.scale;
    let per_query = mask.rows_per_query.max(1) as u32;
    macro_rules! launch {
        ($ty:ty) => {{
            let input = cuda::view::<$ty>(x, lx)?;
            let out = cuda::alloc::<$ty>(dev, rows * cols)?;
            let mut b = f.builder();
            b.arg(&input).arg(&out);
            if warp {
                b.arg(&n);
            }
            b.arg(&s).arg(&t).arg(&past).arg(&rpb);
            b.arg(&pad).arg(&scale).arg(&per_query);
            // SAFETY: arguments match the kernel's signature (rows only for the warp twin);
            // a warp or a block per row.
            unsafe { b.launch(cfg) }.w()?;
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = kernel_dtype!(x.dtype(), "masked softmax", launch);
    Ok((out, lx.shape().clone()))
}

/// The masked softmax of causal attention over queries `q`, `lq` `[B, ...]`: `mask` with no left
/// padding (zeros allocated once here), for the scores between its two matmuls.
pub(crate) fn unpadded_softmax(
    mask: AttentionMask,
    q: &candle_core::CudaStorage,
    lq: &Layout,
) -> candle_core::Result<
    impl Fn(&candle_core::CudaStorage, &Layout) -> candle_core::Result<candle_core::CudaStorage>,
> {
    let b = lq.shape().dims()[0];
    let dev = q.device();
    let zeros = dev.alloc_zeros::<u32>(b)?;
    let pad = candle_core::CudaStorage::wrap_cuda_slice(zeros, dev.clone());
    let lp = Layout::contiguous(b);
    Ok(move |s: &candle_core::CudaStorage, l: &Layout| Ok(masked_softmax(mask, s, l, &pad, &lp)?.0))
}

/// `dx = scale · y · (g − Σ g·y)` for `y` a softmax output and `g` its gradient. Kernel
/// `softmax_backward`.
pub(crate) fn softmax_backward(
    scale: f32,
    y: &candle_core::CudaStorage,
    ly: &Layout,
    g: &candle_core::CudaStorage,
    lg: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    let (rows, cols) = last_dim(ly)?;
    let dev = y.device();
    let (name, warp, cfg) = row_kernel("softmax_backward", rows, cols);
    let f = load_kernel!(dev, &name, y.dtype());
    let (n, s) = (rows as u32, cols as u32);
    macro_rules! launch {
        ($ty:ty) => {{
            let (yv, gv) = (cuda::view::<$ty>(y, ly)?, cuda::view::<$ty>(g, lg)?);
            let out = cuda::alloc::<$ty>(dev, rows * cols)?;
            let mut b = f.builder();
            b.arg(&yv).arg(&gv).arg(&out);
            if warp {
                b.arg(&n);
            }
            b.arg(&s).arg(&scale);
            // SAFETY: arguments match the kernel's signature (rows only for the warp twin);
            // a warp or a block per row.
            unsafe { b.launch(cfg) }.w()?;
            candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
        }};
    }
    let out = match (y.dtype(), g.dtype()) {
        (DType::F32, DType::F32) => launch!(f32),
        (DType::BF16, DType::BF16) => launch!(half::bf16),
        (a, b) => candle_core::bail!("softmax backward: {a:?} output with {b:?} gradient"),
    };
    Ok((out, ly.shape().clone()))
}
