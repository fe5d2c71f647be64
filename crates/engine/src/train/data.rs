//! Supervised fine-tuning data: JSONL rows of `{prompt, completion}` or `{messages}`, tokenised with
//! the loss on completion tokens only, and grouped into length-bucketed batches.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::text::chat::ChatMessage;
use crate::text::tokenizer::TextTokenizer;

/// One training row as written in a JSONL file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TrainRow {
    /// A prompt and the completion to learn.
    Completion {
        /// Text before the completion (a user turn when chat formatting is on).
        prompt: String,
        /// Text to learn.
        completion: String,
    },
    /// A conversation: the last message must come from the assistant and is what is learned.
    Chat {
        /// The messages in order.
        messages: Vec<ChatMessage>,
    },
}

/// A tokenised example: `tokens[prompt_len..]` are learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt then completion token ids.
    pub tokens: Vec<u32>,
    /// How many leading tokens are context only.
    pub prompt_len: usize,
}

impl Example {
    /// Number of tokens whose prediction is scored (completion tokens).
    pub fn target_count(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Reads JSONL training rows; every bad line is reported with its number and what is wrong.
pub fn read_rows(path: &Path) -> Result<Vec<TrainRow>> {
    let text = std::fs::read(path).map_err(|e| EngineError::read(path, e))?;
    let text = String::from_utf8(text).map_err(|e| {
        EngineError::bad_file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: TrainRow = serde_json::from_str(line).map_err(|e| {
            EngineError::bad_file(
                path,
                format!(
                    "line {}: not a training row ({e}); expected {{\"prompt\", \"completion\"}} or {{\"messages\": [...]}}",
                    i + 1
                ),
            )
        })?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(EngineError::bad_file(path, "holds no training rows"));
    }
    Ok(rows)
}

/// Tokenises rows. With `chat`, prompts are rendered with the model's chat template and the
/// completion ends with the end-of-sequence token; rows longer than `max_len` or with nothing to
/// learn are errors naming the row (`source` names the file in messages).
pub fn tokenize_rows(
    rows: &[TrainRow],
    tokenizer: &TextTokenizer,
    chat: bool,
    max_len: usize,
    source: &str,
) -> Result<Vec<Example>> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let where_ = || format!("{source}: row {}", i + 1);
            let (prompt, completion) = row_texts(row, tokenizer, chat).map_err(|e| prefix(e, &where_()))?;
            let mut prompt_ids = tokenizer.encode(&prompt, !chat)?;
            let mut completion_ids = tokenizer.encode(&completion, false)?;
            if chat && let Some(&eos) = tokenizer.eos_token_ids.first() {
                completion_ids.push(eos);
            }
            if completion_ids.is_empty() {
                return Err(EngineError::Request(format!("{}: the completion is empty: nothing to learn", where_())));
            }
            if prompt_ids.is_empty() {
                // A row with no context still needs one token to predict its first completion token from.
                prompt_ids.push(completion_ids.remove(0));
                if completion_ids.is_empty() {
                    return Err(EngineError::Request(format!("{}: a one-token row has nothing to learn", where_())));
                }
            }
            let total = prompt_ids.len() + completion_ids.len();
            if total > max_len {
                return Err(EngineError::Request(format!(
                    "{}: {total} tokens, longer than the training context of {max_len} (shorten the row or raise --max-len)",
                    where_()
                )));
            }
            let prompt_len = prompt_ids.len();
            prompt_ids.extend(completion_ids);
            Ok(Example { tokens: prompt_ids, prompt_len })
        })
        .collect()
}

fn prefix(e: EngineError, at: &str) -> EngineError {
    EngineError::Request(format!("{at}: {e}"))
}

fn row_texts(row: &TrainRow, tokenizer: &TextTokenizer, chat: bool) -> Result<(String, String)> {
    match row {
        TrainRow::Completion { prompt, completion } if !chat => {
            Ok((prompt.clone(), completion.clone()))
        }
        TrainRow::Completion { prompt, completion } => Ok((
            render(tokenizer, &[ChatMessage::new("user", prompt.clone())])?,
            completion.clone(),
        )),
        TrainRow::Chat { messages } => {
            let (last, context) = messages
                .split_last()
                .ok_or_else(|| EngineError::Request("`messages` is empty".into()))?;
            if last.role != "assistant" {
                return Err(EngineError::Request(format!(
                    "the last message is from `{}`; it must be the assistant's reply to learn",
                    last.role
                )));
            }
            Ok((render(tokenizer, context)?, last.content.clone()))
        }
    }
}

fn render(tokenizer: &TextTokenizer, messages: &[ChatMessage]) -> Result<String> {
    tokenizer.apply_chat_template(messages, true)
}

/// Groups example indices into batches of at most `batch_tokens` padded tokens, similar lengths
/// together (less padding), in a seeded random order.
pub fn batches(examples: &[Example], batch_tokens: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    // Sort within windows of 64 so batches mix across the data but pad little.
    for window in order.chunks_mut(64) {
        window.sort_by_key(|&i| examples[i].tokens.len());
    }
    let mut out = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let len = examples[i].tokens.len();
        let new_longest = longest.max(len);
        if !current.is_empty() && new_longest * (current.len() + 1) > batch_tokens {
            out.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.shuffle(&mut rng);
    out
}
