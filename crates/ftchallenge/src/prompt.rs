//! The one text layout used for training, intent scoring and reply generation, so the three see
//! exactly the same tokens:
//!
//! ```text
//! <chat prompt: system (the intents), user (the ticket)> "Intent:" | " <intent>\n" | "Reply:" | " <reply>" <eos>
//! ```
//!
//! Each part is tokenised on its own, so the intent tokens scored at inference are the very tokens
//! learned in training (BPE merges never cross a part boundary).

use assay_engine::{ChatMessage, TextTokenizer};

use crate::error::Result;

/// Tokenises the parts of the layout for one model.
pub struct PromptFormat<'a> {
    tokenizer: &'a TextTokenizer,
    system: String,
}

impl<'a> PromptFormat<'a> {
    /// The format for one model. The system message stays short (it is paid on every training
    /// and scoring pass); the candidate intents are enforced by scoring, not by listing them.
    pub fn new(tokenizer: &'a TextTokenizer) -> Self {
        let system = "You are the support assistant of Northstar Workspaces. Give the ticket's intent, then a short, accurate reply.".to_string();
        Self { tokenizer, system }
    }

    /// The context before the intent: the rendered chat prompt (or a plain layout for models
    /// without a chat template) followed by `Intent:`.
    pub fn prompt_ids(&self, ticket: &str) -> Result<Vec<u32>> {
        if self.tokenizer.chat_template.is_none() {
            let text = format!("{}\n\nTicket: {ticket}\nIntent:", self.system);
            return Ok(self.tokenizer.encode(&text, true)?);
        }
        let messages = [
            ChatMessage::new("system", self.system.clone()),
            ChatMessage::new("user", ticket.to_string()),
        ];
        let mut text = self.tokenizer.apply_chat_template(&messages, true)?;
        text.push_str("Intent:");
        Ok(self.tokenizer.encode(&text, false)?)
    }

    /// The tokens of one intent label, as scored and as learned.
    pub fn intent_ids(&self, intent: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(&format!(" {intent}\n"), false)?)
    }

    /// The tokens that open the reply.
    pub fn reply_prefix_ids(&self) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode("Reply:", false)?)
    }

    /// The tokens of a reply, ended by the end-of-sequence token so the model learns to stop.
    pub fn reply_ids(&self, reply: &str) -> Result<Vec<u32>> {
        let mut ids = self
            .tokenizer
            .encode(&format!(" {}", reply.trim()), false)?;
        ids.extend(self.tokenizer.eos_token_ids.first().copied());
        Ok(ids)
    }

    /// Decodes generated reply tokens to text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(ids, true)?.trim().to_string())
    }
}
