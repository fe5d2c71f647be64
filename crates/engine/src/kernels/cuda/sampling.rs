//! Gumbel-max sampling's launch: kernel `gumbel_argmax`, one block per row, drawing what the
//! host's `gumbel_choice` draws (see `kernels::sampling`).

use candle_core::backend::BackendStorage;
use candle_core::{Layout, Shape};

use crate::kernels::cuda::{self, kernel_dtype, load_kernel};
use crate::kernels::last_dim;

/// One token per row of logits `x` `[N, V]` from row keys `k` (i64 `[N]`, read as u64) at `step`,
/// with `inv_temp` 0 for greedy.
pub(crate) fn gumbel_argmax(
    step: u32,
    inv_temp: f32,
    x: &candle_core::CudaStorage,
    lx: &Layout,
    k: &candle_core::CudaStorage,
    lk: &Layout,
) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    let (rows, cols) = last_dim(lx)?;
    let dev = x.device();
    let f = load_kernel!(dev, "gumbel_argmax", x.dtype());
    let keys = cuda::view::<i64>(k, lk)?;
    let out = cuda::alloc::<u32>(dev, rows)?;
    let v = cols as u32;
    macro_rules! launch {
        ($ty:ty) => {{
            let input = cuda::view::<$ty>(x, lx)?;
            let mut b = f.builder();
            b.arg(&input)
                .arg(&keys)
                .arg(&step)
                .arg(&inv_temp)
                .arg(&out)
                .arg(&v);
            // SAFETY: arguments match the kernel's signature; one block per row.
            unsafe { b.launch(cuda::rows(rows)) }.w()?;
        }};
    }
    kernel_dtype!(x.dtype(), "gumbel argmax", launch);
    Ok((
        candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone()),
        Shape::from(rows),
    ))
}
