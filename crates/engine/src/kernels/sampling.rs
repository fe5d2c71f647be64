//! Sampling: counter-based uniform draws ([`uniform01`]), the Gumbel-max choice on the host
//! ([`gumbel_choice`]) and on the device ([`sample_rows`]), drawing the same tokens.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

/// The uniform draw in (0, 1) of `token` at `step` of the stream `key`: a counter-based hash, so a
/// row's draws never depend on the other rows of its batch (the CUDA kernel computes the same).
pub fn uniform01(key: u64, step: u32, token: u32) -> f32 {
    let h = mix64(key ^ mix64((u64::from(step) << 32) | u64::from(token)));
    ((h >> 40) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The Gumbel-max choice over `scores`: `argmax(score · inv_temp − ln(−ln u))`, or the plain
/// arg-max (lowest id on ties) when `inv_temp` is 0. Tokens whose score is −∞ are never chosen
/// unless every score is.
pub fn gumbel_choice(
    scores: impl Iterator<Item = (u32, f32)>,
    key: u64,
    step: u32,
    inv_temp: f32,
) -> u32 {
    let mut best = (f32::NEG_INFINITY, u32::MAX);
    for (token, score) in scores {
        let v = if inv_temp > 0.0 {
            score * inv_temp - (-uniform01(key, step, token).ln()).ln()
        } else {
            score
        };
        if v > best.0 || (v == best.0 && token < best.1) {
            best = (v, token);
        }
    }
    if best.1 == u32::MAX { 0 } else { best.1 }
}

/// Samples one token per row of `logits` `[N, V]` with row keys `keys` (i64 `[N]`, read as u64).
struct GumbelArgmax {
    step: u32,
    inv_temp: f32,
}

impl CustomOp2 for GumbelArgmax {
    fn name(&self) -> &'static str {
        "gumbel-argmax"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        k: &CpuStorage,
        lk: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::sampling::gumbel_argmax(self.step, self.inv_temp, x, lx, k, lk)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        k: &candle_core::CudaStorage,
        lk: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::sampling::gumbel_argmax(self.step, self.inv_temp, x, lx, k, lk)
    }
}

/// One token per row of `logits` `[N, V]`: greedy when `temperature` is 0, else a sample from
/// `softmax(logits / temperature)` drawn from row `r`'s stream `keys[r]` (i64 `[N]`) at `step`.
pub fn sample_rows(
    logits: &Tensor,
    keys: &Tensor,
    step: u32,
    temperature: f32,
) -> candle_core::Result<Tensor> {
    let inv_temp = if temperature > 0.0 {
        1.0 / temperature
    } else {
        0.0
    };
    logits
        .contiguous()?
        .apply_op2_no_bwd(&keys.contiguous()?, &GumbelArgmax { step, inv_temp })
}
