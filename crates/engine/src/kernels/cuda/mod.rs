//! The CUDA plumbing every kernel family shares, and that imports no family: loading the PTX
//! module built from `kernels/assay.cu` (by `build.rs`), kernel names, launch configurations,
//! device views and allocation. Each family's launches are in its file here.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig};
use candle_core::{CudaDevice, CudaStorage, DType, Layout};

pub(crate) mod accumulate;
pub(crate) mod attention;
pub(crate) mod elementwise;
pub(crate) mod heads;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optimizer;
pub(crate) mod sampling;

/// The function of kernel `name` for `dtype` from our PTX module (loaded once per device).
macro_rules! load_kernel {
    ($dev:expr, $name:expr, $dtype:expr) => {
        $dev.get_or_load_custom_func(
            &$crate::kernels::cuda::kernel($name, $dtype)?,
            "assay",
            $crate::kernels::cuda::PTX,
        )?
    };
}
pub(crate) use load_kernel;

/// Runs `$launch!(f32)` or `$launch!(half::bf16)` for `$dtype`, the two storage types every kernel
/// is built for; any other dtype is an error naming the op `$what`.
macro_rules! kernel_dtype {
    ($dtype:expr, $what:expr, $launch:ident) => {
        match $dtype {
            candle_core::DType::F32 => $launch!(f32),
            candle_core::DType::BF16 => $launch!(half::bf16),
            other => {
                candle_core::bail!("{}: {other:?} values (the kernels take f32 or bf16)", $what)
            }
        }
    };
}
pub(crate) use kernel_dtype;

/// The PTX of `kernels/assay.cu`, built by build.rs.
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/assay.ptx"));
/// Threads per block, as `BLOCK` in the kernels.
pub const BLOCK: u32 = 256;

/// The name of kernel `name` for `dtype` (`name_f32`, `name_bf16`).
pub fn kernel(name: &str, dtype: DType) -> candle_core::Result<String> {
    let suffix = match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        other => candle_core::bail!("assay kernels take f32 or bf16, not {other:?}"),
    };
    Ok(format!("{name}_{suffix}"))
}

/// One block per row.
pub fn rows(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The contiguous view of a storage of type `T` at its layout's offset.
pub fn view<'a, T: candle_core::cuda_backend::CudaDType>(
    s: &'a CudaStorage,
    l: &Layout,
) -> candle_core::Result<CudaView<'a, T>> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("assay op: input must be contiguous".into()))?;
    Ok(s.as_cuda_slice::<T>()?.slice(start..end))
}

/// The contiguous mutable view of a storage of type `T` at its layout's offset, for the
/// in-place kernels.
pub fn view_mut<'a, T: candle_core::cuda_backend::CudaDType>(
    s: &'a mut CudaStorage,
    l: &Layout,
) -> candle_core::Result<CudaViewMut<'a, T>> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("assay op: in-place tensor must be contiguous".into())
    })?;
    Ok(s.as_cuda_slice_mut::<T>()?.slice_mut(start..end))
}

/// Uninitialised device memory for `n` values (every kernel writes all of its output).
pub fn alloc<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
    dev: &CudaDevice,
    n: usize,
) -> candle_core::Result<CudaSlice<T>> {
    // SAFETY: the kernel launched next writes every element.
    unsafe { dev.alloc::<T>(n) }
}

/// Launches an elementwise kernel of `kernels/assay.cu` (8 values a thread) over `n` values.
pub(crate) fn elementwise_config(n: usize) -> LaunchConfig {
    let threads = n.div_ceil(8).max(1) as u32;
    LaunchConfig {
        grid_dim: (threads.div_ceil(256), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}
