//! Stable path of the autograd-aware kernels (before [`crate::kernels`] split them by family):
//! [`frozen_matmul`], [`masked_softmax`], [`causal_attention`], [`token_nll`], [`sample_rows`],
//! [`silu_mul`], [`add`] and their companions.

pub use crate::kernels::attention::{
    AttentionMask, causal_attention, causal_attention_blocks, causal_attention_blocks_backward,
    masked_softmax,
};
pub use crate::kernels::elementwise::{add, silu_mul, silu_mul_backward};
pub use crate::kernels::loss::{token_nll, token_nll_backward};
pub use crate::kernels::matmul::frozen_matmul;
pub use crate::kernels::sampling::{gumbel_choice, sample_rows, uniform01};
