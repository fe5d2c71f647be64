//! Math answers: extraction, normalisation, equivalence and best-of-N selection.
//!
//! Extraction ([`extract_answer`]) and normalisation ([`strip_string`]) reproduce huggingface/
//! search-and-learn (`src/sal/utils/qwen_math_parser.py` at 6f81cac), itself adapted from
//! QwenLM/Qwen2.5-Math; the golden cases in `fixtures/math` come from running that code. Equivalence
//! ([`math_equal`]) follows the reference's stages but replaces its sympy step with a small numeric
//! evaluator of our own ([`expr`]); the differences are listed on [`math_equal`]. Selection
//! ([`select`]) is the reference's weighted / majority / naive best-of-N with its tie-breaking.

mod equiv;
pub mod expr;
mod extract;
mod normalize;
mod pystr;
pub mod select;
mod words;

pub use equiv::{choice_answer_clean, grade_completion, math_equal};
pub use extract::{ExtractOptions, extract_answer, extract_answer_with, extract_raw_answer};
pub use normalize::strip_string;
