//! Text-similarity metrics that score generated text against references.
//!
//! Each metric reproduces a named Python reference exactly (see each module's docs for the reference
//! and for any deliberate difference):
//!
//! - [`recall`]: the Datacomp interview's naive word recall (`naive_string_similarity`).
//! - [`rouge`]: ROUGE-1/2/L/Lsum as computed by Google's `rouge-score` package, with the
//!   [`porter`] stemmer matching NLTK's `PorterStemmer` in its default mode.
//! - [`bleu`]: corpus and sentence BLEU with `sacrebleu`'s defaults and its [`tokenizer_13a`].
//! - [`embedding`]: the pure vector arithmetic behind embedding similarity (cosine, mean pooling).
//! - [`embedder`]: sentence embeddings with all-MiniLM-L6-v2 on the engine's BERT encoder, and
//!   their cosine (the `embedding_cosine` metric).
//!
//! The golden fixtures under `crates/eval/fixtures/text/` come from
//! `make_text_fixtures.py`, which runs the Python references.

pub mod bleu;
pub mod embedder;
pub mod embedding;
mod interner;
pub mod porter;
mod python_str;
pub mod recall;
pub mod rouge;
pub mod tokenizer_13a;
