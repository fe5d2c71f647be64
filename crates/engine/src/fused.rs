//! Stable path of the single-launch kernels of the hand-written training pass and the optimizer
//! (before [`crate::kernels`] split them by family): RMSNorm, heads and rope, gradient
//! accumulation, AdamW.

pub use crate::kernels::accumulate::{add_prefix, scatter_add_rows};
pub use crate::kernels::heads::{
    Rotation, merge_heads, merge_heads_grouped, split_heads, split_heads_grouped,
};
pub use crate::kernels::norm::{rms_norm, rms_norm_backward, rms_norm_weight_grad};
pub use crate::kernels::optimizer::{AdamWStep, adamw_apply, adamw_moments, decay_only};
