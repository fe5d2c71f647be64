//! SN37's synthetic instruction-following task (IF_EVAL): the 13 active rules and STARTS_WITH, their
//! seeded generation, the prompt text and the task score.
//!
//! Checkers follow `finetune/eval/if_eval/*.py` of macrocosm-os/finetuning (afd4403) to the
//! character, including Python `str` semantics and NLTK's untrained Punkt sentence
//! splitter; `crates/eval/fixtures/ifeval/` holds golden verdicts of the original code.

pub mod all_lower_case;
pub mod all_upper_case;
pub mod bullet_count;
pub mod ends_with;
pub mod generate;
pub mod keyword_forbidden;
pub mod keyword_frequency;
pub mod keyword_inclusion;
pub mod keywords;
pub mod no_commas;
pub mod punkt;
pub mod pytext;
pub mod quotation;
pub mod rule;
pub mod score;
pub mod sentence_count_at_least;
pub mod sentence_count_at_most;
pub mod similarity;
pub mod starts_with;
pub mod word_count_at_least;
pub mod word_count_at_most;

pub use generate::{
    IfEvalSample, IfEvalVersion, QuestionAnswer, build_prompt, generate_sample, generate_samples,
    generate_samples_with_rules,
};
pub use rule::{IfEvalRule, Rule, RuleError, RuleId};
pub use score::{SampleOutcome, if_eval_task_score, response_score};
