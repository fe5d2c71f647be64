//! The plumbing every kernel family shares, and that imports no kernel: reading CPU storage as f32
//! rows and writing it back in its dtype, the CUDA launch configurations, device views and
//! allocation, and loading the PTX module built from `kernels/assay.cu` (by `build.rs`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout};

pub(crate) fn cpu_rows_f32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<f32>> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("assay op: input must be contiguous".into()))?;
    Ok(match s {
        CpuStorage::F32(v) => v[start..end].to_vec(),
        CpuStorage::BF16(v) => v[start..end].iter().map(|x| x.to_f32()).collect(),
        CpuStorage::F16(v) => v[start..end].iter().map(|x| x.to_f32()).collect(),
        other => candle_core::bail!("assay op: float input expected, got {:?}", other.dtype()),
    })
}

pub(crate) fn cpu_u32(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<u32>> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("assay op: index input must be contiguous".into())
    })?;
    match s {
        CpuStorage::U32(v) => Ok(v[start..end].to_vec()),
        other => candle_core::bail!("assay op: u32 input expected, got {:?}", other.dtype()),
    }
}

pub(crate) fn cpu_from_f32(values: Vec<f32>, dtype: DType) -> candle_core::Result<CpuStorage> {
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(values),
        DType::BF16 => CpuStorage::BF16(values.into_iter().map(half::bf16::from_f32).collect()),
        DType::F16 => CpuStorage::F16(values.into_iter().map(half::f16::from_f32).collect()),
        other => candle_core::bail!("assay op: cannot write {other:?}"),
    })
}

pub(crate) fn last_dim(l: &Layout) -> candle_core::Result<(usize, usize)> {
    let dims = l.shape().dims();
    let cols = *dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("assay op: scalar input".into()))?;
    Ok((l.shape().elem_count() / cols.max(1), cols))
}

/// The function of kernel `name` for `dtype` from our PTX module (loaded once per device).
#[cfg(feature = "cuda")]
macro_rules! load_kernel {
    ($dev:expr, $name:expr, $dtype:expr) => {
        $dev.get_or_load_custom_func(
            &$crate::kernels::plumbing::cuda::kernel($name, $dtype)?,
            "assay",
            $crate::kernels::plumbing::cuda::PTX,
        )?
    };
}
#[cfg(feature = "cuda")]
pub(crate) use load_kernel;

/// Runs `$launch!(f32)` or `$launch!(half::bf16)` for `$dtype`, the two storage types every kernel
/// is built for; any other dtype is an error naming the op `$what`.
#[cfg(feature = "cuda")]
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
#[cfg(feature = "cuda")]
pub(crate) use kernel_dtype;

#[cfg(feature = "cuda")]
pub(crate) mod cuda {
    //! Launching the kernels of `kernels/assay.cu`.
    use candle_core::cuda_backend::cudarc::driver::{
        CudaSlice, CudaView, CudaViewMut, LaunchConfig,
    };
    use candle_core::{CudaDevice, CudaStorage, DType, Layout};

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
}

/// Launches an elementwise kernel of `kernels/assay.cu` (8 values a thread) over `n` values.
#[cfg(feature = "cuda")]
pub(crate) fn elementwise_config(
    n: usize,
) -> candle_core::cuda_backend::cudarc::driver::LaunchConfig {
    let threads = n.div_ceil(8).max(1) as u32;
    candle_core::cuda_backend::cudarc::driver::LaunchConfig {
        grid_dim: (threads.div_ceil(256), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

pub(crate) fn rows_of(l: &Layout) -> (usize, usize) {
    let dims = l.shape().dims();
    let cols = dims.last().copied().unwrap_or(1).max(1);
    (l.shape().elem_count() / cols, cols)
}

/// Rounds `v` to `dtype` and back, as a kernel does when it stores an intermediate.
pub(crate) fn round_to(v: f32, dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => half::bf16::from_f32(v).to_f32(),
        DType::F16 => half::f16::from_f32(v).to_f32(),
        _ => v,
    }
}
