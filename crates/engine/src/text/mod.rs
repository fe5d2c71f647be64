//! Text in and out of the model: the tokenizer ([`tokenizer::TextTokenizer`], with its special
//! tokens) and chat templates ([`chat::ChatTemplate`], Jinja as transformers renders them).

pub mod chat;
pub mod tokenizer;
