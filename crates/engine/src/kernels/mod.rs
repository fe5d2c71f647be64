//! Custom ops that candle lacks, one module per family. Each op has its CPU implementation (in f32
//! whatever the storage dtype, in a fixed order, so CPU results are bit-for-bit reproducible) and
//! its CUDA launch; the CUDA kernels themselves are in `kernels/assay.cu` with the same arithmetic.
//! Shapes are checked up front and reported as errors.
//!
//! - [`attention`]: masked softmax, causal attention (whole and blocked).
//! - [`norm`]: RMSNorm forward and backward.
//! - [`loss`]: token negative log-likelihood and arg-max from logits.
//! - [`sampling`]: counter-based draws and Gumbel-max sampling on host and device.
//! - [`elementwise`]: SwiGLU's `silu(g)·u` and addition.
//! - [`heads`]: splitting into attention heads and merging back, with rotary embedding.
//! - [`accumulate`]: scatter-add of rows and prefix accumulation (gradients).
//! - [`optimizer`]: AdamW in place.
//! - [`matmul`]: `x Wᵀ` with no weight gradient.
//!
//! The ops in [`attention`], [`loss`], [`elementwise`] and [`matmul`] take part in candle's
//! autograd; the others are single launches that `train::backprop` and the optimizer sequence
//! themselves (candle's backward accumulates every gradient as `zeros + grad` and keeps every
//! intermediate alive, which made training 2–4× slower than PyTorch; see `docs/gpu-notes.md`).
//!
//! Layout: `kernels/<family>.rs` is a family's public API (its functions, shape and dtype checks,
//! and the op structs, whose `CustomOp` backend methods each delegate in one line);
//! `kernels/cpu/<family>.rs` holds its CPU loops and `kernels/cuda/<family>.rs` its CUDA launches
//! (behind the `cuda` feature). Each backend's shared plumbing is in its `mod.rs` (CPU: reading
//! storage as f32 rows and writing it back in its dtype; CUDA: PTX loading, launch configurations,
//! device views and allocation) and imports no family; a backend file imports its plumbing and at
//! most items of its own family (`AttentionMask`, `AdamWStep`, `gumbel_choice`, `Heads`), never
//! another family's. The two layout helpers both backends read (`last_dim`, `rows_of`) are in this
//! module.

use candle_core::Layout;

pub mod accumulate;
pub mod attention;
pub mod elementwise;
pub mod heads;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optimizer;
pub mod sampling;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

pub(crate) fn last_dim(l: &Layout) -> candle_core::Result<(usize, usize)> {
    let dims = l.shape().dims();
    let cols = *dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("assay op: scalar input".into()))?;
    Ok((l.shape().elem_count() / cols.max(1), cols))
}

pub(crate) fn rows_of(l: &Layout) -> (usize, usize) {
    let dims = l.shape().dims();
    let cols = dims.last().copied().unwrap_or(1).max(1);
    (l.shape().elem_count() / cols, cols)
}

#[cfg(test)]
mod tests;
