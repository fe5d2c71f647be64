//! The language-model loss: [`token_nll`], per-row negative log-likelihood and arg-max straight from
//! the logits, never materialising the log-softmax over the vocabulary; differentiable. The
//! exponentials are summed in f64 on both backends.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu;
#[cfg(feature = "cuda")]
use super::cuda;

/// Per-row `[nll, argmax]` (f32) of logits `[N, V]` against u32 targets `[N]`.
struct TokenNll;

impl CustomOp2 for TokenNll {
    fn name(&self) -> &'static str {
        "token-nll"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::loss::token_nll(x, lx, t, lt)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::loss::token_nll(x, lx, t, lt)
    }

    fn bwd(
        &self,
        x: &Tensor,
        t: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = token_nll_backward(x, t, res, &grad.narrow(1, 0, 1)?)?;
        Ok((Some(dx), None))
    }
}

/// The gradient of the logits for per-row loss gradients `grad` `[N, 1]` f32, given the logits,
/// targets and the `[N, 2]` result of [`token_nll`]: `grad · (softmax(x) − onehot(target))`, in the
/// logits' dtype.
pub fn token_nll_backward(
    logits: &Tensor,
    targets: &Tensor,
    nll: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<Tensor> {
    let ng = Tensor::cat(&[&nll.narrow(1, 0, 1)?, grad], 1)?.contiguous()?;
    logits
        .contiguous()?
        .apply_op3_no_bwd(&targets.contiguous()?, &ng, &TokenNllBackward)
}

/// `dx = g · (softmax(x) − onehot(target))` from logits, targets and per-row `[nll, g]`.
struct TokenNllBackward;

impl candle_core::CustomOp3 for TokenNllBackward {
    fn name(&self) -> &'static str {
        "token-nll-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        t: &CpuStorage,
        lt: &Layout,
        ng: &CpuStorage,
        lng: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        cpu::loss::token_nll_backward(x, lx, t, lt, ng, lng)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        t: &candle_core::CudaStorage,
        lt: &Layout,
        ng: &candle_core::CudaStorage,
        lng: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::loss::token_nll_backward(x, lx, t, lt, ng, lng)
    }
}

/// Per-row `[nll, argmax]` (f32, `[N, 2]`) of `logits` `[N, V]` (any float dtype) for u32
/// `targets` `[N]`: the loss of each target token and the model's greedy choice, computed in f32
/// without a `[N, V]` log-softmax. Differentiable in `logits` through the nll column.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, TokenNll)
}
