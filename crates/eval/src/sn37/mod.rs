//! SN37 (macrocosm-os/finetuning) generated tasks and score combination.

pub mod dyck;
pub mod normalize;
pub mod text_loss;
pub mod word_sorting;
