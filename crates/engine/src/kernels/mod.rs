//! Custom ops that candle lacks, one file per family. Each op has its CPU implementation (in f32
//! whatever the storage dtype, in a fixed order, so CPU results are bit-for-bit reproducible) and
//! its CUDA launch side by side in the op's `CustomOp` impl; the CUDA kernels themselves are in
//! `kernels/assay.cu` with the same arithmetic. Shapes are checked up front and reported as errors.
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
//! The shared plumbing (storage access, launch configurations, PTX loading) is in a private
//! module that imports no kernel.

pub mod accumulate;
pub mod attention;
pub mod elementwise;
pub mod heads;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optimizer;
pub(crate) mod plumbing;
pub mod sampling;

#[cfg(test)]
mod tests;
