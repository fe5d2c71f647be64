//! How a failed command ends: the message with its causes, what to do, and whose fault it is.
//!
//! Library errors say whose fault they are and what to do through `assay_errors::Diagnose`; by the
//! time they reach `main` they are wrapped in `anyhow` context. This module finds the innermost
//! library error in the chain and prints its hint and blame under the message, so the advice the
//! libraries write reaches the person at the terminal.

use assay_errors::{Blame, Diagnose};

/// A library error flattened to one line of causes that keeps its blame and hint, for commands
/// that turn an error into text before it reaches `main` (see [`explain`]).
#[derive(Debug)]
pub struct Explained {
    text: String,
    blame: Blame,
    hint: Option<String>,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Explained {}

/// A library error as an `anyhow` error whose text is its cause chain on one line, with its hint
/// and blame kept for [`render`].
pub fn explain(error: &dyn Diagnose) -> anyhow::Error {
    anyhow::Error::new(Explained {
        text: assay_errors::chain(error),
        blame: error.blame(),
        hint: error.hint(),
    })
}

/// A library error about input that the person running the command gave, blamed on them
/// whatever the library says: readers shared with the pipelines (training rows, for one) blame
/// the miner who submitted a malformed file, but a command's own `--data` is the operator's.
pub fn operator_input(error: &dyn Diagnose) -> anyhow::Error {
    anyhow::Error::new(Explained {
        text: assay_errors::chain(error),
        blame: Blame::Operator,
        hint: error.hint(),
    })
}

/// The blame and hint of the first library error found in `error`'s chain, if any.
pub fn diagnose(error: &anyhow::Error) -> Option<(Blame, Option<String>)> {
    fn of<E: Diagnose + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<(Blame, Option<String>)> {
        cause.downcast_ref::<E>().map(|e| (e.blame(), e.hint()))
    }
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<Explained>() {
            return Some((e.blame, e.hint.clone()));
        }
        let found = of::<assay_engine::EngineError>(cause)
            .or_else(|| of::<assay_tables::TableError>(cause))
            .or_else(|| of::<assay_weights::emit::EmitError>(cause))
            .or_else(|| of::<assay_eval::run::EvalError>(cause))
            .or_else(|| of::<assay_eval::registry::RegistryError>(cause))
            .or_else(|| of::<assay_eval::runner::RunError>(cause))
            .or_else(|| of::<assay_datacomp::DatacompError>(cause))
            .or_else(|| of::<assay_sn37::run::RunError>(cause))
            .or_else(|| of::<assay_sn37::round::RoundError>(cause))
            .or_else(|| of::<assay_sn37::state::StateError>(cause))
            .or_else(|| of::<assay_sn37::submission::HashError>(cause))
            .or_else(|| of::<assay_sn37::competition::CompetitionError>(cause))
            .or_else(|| of::<assay_prism::PipelineError>(cause))
            .or_else(|| of::<assay_prism::bundle::BundleError>(cause))
            .or_else(|| of::<assay_prism::runner::RunError>(cause))
            .or_else(|| of::<assay_prism::leaderboard::StateError>(cause))
            .or_else(|| of::<assay_bon::BonError>(cause))
            .or_else(|| of::<assay_ftchallenge::error::FtError>(cause))
            .or_else(|| of::<assay_service::ServiceError>(cause))
            .or_else(|| of::<assay_store::StoreError>(cause));
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The causes of `error` on one line, each said once: a library error's message often ends with
/// its source's text already (`cannot read x: No such file`), which the chain would repeat.
fn causes(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// The text printed for a failed command: `error: ...` with the causes on one line, then the hint
/// and the blame when a library error says them.
pub fn render(error: &anyhow::Error) -> String {
    let mut out = format!("error: {}", causes(error));
    if let Some((blame, hint)) = diagnose(error) {
        if let Some(hint) = hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
        let whose = match blame {
            Blame::Miner => "the submission's (scored zero by a validator)",
            Blame::Operator => "the validator's setup or input",
            Blame::Transient => "passing (trying again may work)",
            Blame::Bug => "a bug in assay (please report it)",
        };
        out.push_str(&format!("\n  fault: {whose}"));
    }
    out
}
