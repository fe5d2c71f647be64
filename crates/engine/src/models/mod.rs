//! The networks: the Llama/Qwen2 decoder ([`llama::Model`], one file top to bottom), its KV cache
//! ([`kv_cache::KvCache`]) beside it, and the BERT encoder ([`bert::BertModel`]) used for
//! embeddings and reward heads.

pub mod bert;
pub mod kv_cache;
pub mod llama;
