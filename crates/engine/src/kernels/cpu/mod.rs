//! The CPU plumbing every kernel family shares, and that imports no family: reading CPU storage as
//! f32 rows (or u32 indices) and writing it back in its dtype, and rounding as a kernel rounds a
//! stored intermediate. Each family's f32 loops are in its file here.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout};

pub(crate) mod accumulate;
pub(crate) mod attention;
pub(crate) mod elementwise;
pub(crate) mod heads;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optimizer;
pub(crate) mod sampling;

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

/// Rounds `v` to `dtype` and back, as a kernel does when it stores an intermediate.
pub(crate) fn round_to(v: f32, dtype: DType) -> f32 {
    match dtype {
        DType::BF16 => half::bf16::from_f32(v).to_f32(),
        DType::F16 => half::f16::from_f32(v).to_f32(),
        _ => v,
    }
}
