//! Gradient accumulation's launches: `scatter_add_rows` (atomic adds, so order free) and
//! `add_prefix` (see `kernels::accumulate`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CudaStorage, Layout, Shape};

use crate::kernels::cuda::{self, kernel_dtype, load_kernel};
use crate::kernels::rows_of;

/// `out[index[i]] += src[i]` into `rows` zero f32 rows, one block per source row; a row whose
/// index is `>= rows` is skipped.
pub(crate) fn scatter_add_rows(
    rows: usize,
    src: &CudaStorage,
    ls: &Layout,
    index: &CudaStorage,
    li: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (n, h) = rows_of(ls);
    let dev = src.device();
    let f = load_kernel!(dev, "scatter_add_rows", src.dtype());
    let out = dev.alloc_zeros::<f32>(rows * h)?;
    let iv = cuda::view::<u32>(index, li)?;
    let (h32, rows32) = (h as u32, rows as u32);
    macro_rules! launch {
        ($ty:ty) => {{
            let sv = cuda::view::<$ty>(src, ls)?;
            let mut b = f.builder();
            b.arg(&sv).arg(&iv).arg(&out).arg(&h32).arg(&rows32);
            // SAFETY: arguments match the kernel's signature; one block per source row,
            // rows past `rows` skipped in the kernel.
            unsafe { b.launch(cuda::rows(n)) }.w()?;
        }};
    }
    if n > 0 && h > 0 {
        kernel_dtype!(src.dtype(), "scatter_add_rows", launch)
    }
    Ok((
        CudaStorage::wrap_cuda_slice(out, dev.clone()),
        Shape::from((rows, h)),
    ))
}

/// Adds each `part_row`-long row of `part` into the start of the matching `acc_row`-long row of
/// the f32 `acc`, in place.
pub(crate) fn add_prefix(
    part_row: usize,
    acc_row: usize,
    acc: &mut CudaStorage,
    la: &Layout,
    part: &CudaStorage,
    lp: &Layout,
) -> candle_core::Result<()> {
    let n = lp.shape().elem_count();
    if n == 0 {
        return Ok(());
    }
    let dev = acc.device().clone();
    let f = load_kernel!(dev, "add_prefix", part.dtype());
    let (l, m) = (part_row as u32, acc_row as u32);
    let mut dst = cuda::view_mut::<f32>(acc, la)?;
    let rows = n / part_row.max(1);
    let cfg = LaunchConfig {
        grid_dim: (l.div_ceil(cuda::BLOCK), rows.min(65535) as u32, 1),
        block_dim: (cuda::BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    macro_rules! launch {
        ($ty:ty) => {{
            let pv = cuda::view::<$ty>(part, lp)?;
            let mut b = f.builder();
            b.arg(&mut dst).arg(&pv).arg(&rows).arg(&l).arg(&m);
            // SAFETY: arguments match the kernel's signature; every part index maps into acc.
            unsafe { b.launch(cfg) }.w()?;
        }};
    }
    kernel_dtype!(part.dtype(), "add_prefix", launch);
    Ok(())
}
