//! Training: LoRA and full-parameter fine-tuning, from-scratch training, AdamW with schedules,
//! PEFT-format adapters, merged-model export. Seeded and bit-for-bit reproducible on the CPU.

pub mod backprop;
pub mod data;
pub mod export;
pub mod lora;
pub mod optim;
pub mod peft;
pub mod trainer;

pub use data::{Example, TrainRow, batches, read_rows, tokenize_rows};
pub use lora::{LoraConfig, attach_lora, detach_lora, lora_parameters};
pub use optim::{AdamW, AdamWConfig, Schedule};
pub use trainer::{StepLog, TrainConfig, TrainReport, train};
