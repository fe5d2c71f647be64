//! How a failed command ends: the message with its causes, what to do, and whose fault it is.
//!
//! Library errors say whose fault they are and what to do through `assay_errors::Diagnose`; by the
//! time they reach `main` they are wrapped in `anyhow` context. This module finds the innermost
//! library error in the chain and prints its hint and blame under the message, so the advice the
//! libraries write reaches the person at the terminal.

use assay_errors::{Blame, Diagnose};

/// The blame and hint of the first library error found in `error`'s chain, if any.
pub fn diagnose(error: &anyhow::Error) -> Option<(Blame, Option<String>)> {
    fn of<E: Diagnose + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<(Blame, Option<String>)> {
        cause.downcast_ref::<E>().map(|e| (e.blame(), e.hint()))
    }
    for cause in error.chain() {
        let found = of::<assay_engine::EngineError>(cause)
            .or_else(|| of::<assay_eval::run::EvalError>(cause))
            .or_else(|| of::<assay_sn37::run::RunError>(cause))
            .or_else(|| of::<assay_sn37::round::RoundError>(cause))
            .or_else(|| of::<assay_sn37::competition::CompetitionError>(cause))
            .or_else(|| of::<assay_prism::PipelineError>(cause))
            .or_else(|| of::<assay_prism::bundle::BundleError>(cause))
            .or_else(|| of::<assay_prism::runner::RunError>(cause))
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

/// The text printed for a failed command: `error: ...` with the causes on one line, then the hint
/// and the blame when a library error says them.
pub fn render(error: &anyhow::Error) -> String {
    let mut out = format!("error: {error:#}");
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
