//! One call that runs every row check for a whole round of miners, and one for model submissions.
//!
//! Submissions are ordered by [`Priority`] (chain block, then validator receipt time, then miner
//! name so the order is total); rows are compared only with rows before them in that order, so the
//! first submitter keeps the credit and every later copy is rejected. Nothing the miner writes in
//! the file influences the order.

use crate::alignment::{AlignmentParams, CopyEvidence, is_aligned_copy, names_agree, proper_nouns};
use crate::arithmetic::{ArithmeticError, problem_signature, verify_row};
use crate::canonical::canonical_form;
use crate::contamination::ContaminationIndex;
use crate::dedup::{NearMatch, exact_duplicates, near_duplicates};
use crate::minhash::ParamError;
use crate::models::{ModelReport, ModelRules, fingerprint_similarity};
use crate::policy::{Policy, RowCounts};
use crate::report::{
    IntegrityReport, MinerReport, ModelVerdict, Priority, RejectReason, RejectedRow, RowRef,
};
use crate::schema::{Problem, ProblemKind, Row, RowContent, SubmissionIntake};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// One miner's data for the round.
#[derive(Debug, Clone)]
pub struct MinerSubmission {
    /// The miner (hotkey or name).
    pub miner: String,
    /// When the submission arrived.
    pub priority: Priority,
    /// The result of [`crate::schema::read_submission`].
    pub intake: SubmissionIntake,
}

/// The rows of one miner that passed every check.
#[derive(Debug, Clone)]
pub struct KeptRows {
    /// The miner.
    pub miner: String,
    /// The rows, in file order.
    pub rows: Vec<Row>,
}

/// The result of [`check_round`].
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// Why each row was kept or rejected, and the penalties.
    pub report: IntegrityReport,
    /// Kept rows per miner, in the same (priority) order as `report.miners`.
    pub kept: Vec<KeptRows>,
}

/// A row in the round-wide order: which submission, which row.
struct RowSlot {
    submission: usize,
    row: usize,
}

/// Runs schema results, contamination, exact and near duplicate checks for all miners of a round.
/// Fails only on invalid near-duplicate parameters in the policy.
pub fn check_round(
    submissions: &[MinerSubmission],
    eval: Option<&ContaminationIndex>,
    policy: &Policy,
) -> Result<RoundOutcome, ParamError> {
    let mut order: Vec<usize> = (0..submissions.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&submissions[a], &submissions[b]);
        (a.priority, &a.miner).cmp(&(b.priority, &b.miner))
    });
    let ordered: Vec<&MinerSubmission> = order.iter().map(|&i| &submissions[i]).collect();
    let slots: Vec<RowSlot> = ordered
        .iter()
        .enumerate()
        .flat_map(|(submission, s)| {
            (0..s.intake.rows.len()).map(move |row| RowSlot { submission, row })
        })
        .collect();
    let row_of = |slot: &RowSlot| &ordered[slot.submission].intake.rows[slot.row];
    let canonical: Vec<String> = slots
        .par_iter()
        .map(|slot| canonical_form(&row_of(slot).content.joined_text()))
        .collect();
    let contamination: Vec<_> = match eval {
        Some(index) => slots
            .par_iter()
            .map(|slot| index.check_row(&row_of(slot).content))
            .collect(),
        None => vec![None; slots.len()],
    };
    let exact = exact_duplicates(&canonical);
    let cot = |slot: &RowSlot| match &row_of(slot).content {
        RowContent::ChainOfThought {
            prompt,
            chain_of_thought,
            final_answer,
        } => Some((
            prompt.clone(),
            chain_of_thought.clone(),
            final_answer.clone(),
        )),
        _ => None,
    };
    // A near duplicate of another miner's row is a copy only if the two questions name the same
    // people: rows drawn from one public template with the same numbers by chance differ in
    // little but their names (see `crate::alignment`). Within one miner a near duplicate stays
    // one (the miner's own repeat).
    let names = |slot: &RowSlot| cot(slot).map(|(p, _, _)| proper_nouns(&p));
    let near: Vec<Option<NearMatch>> = near_duplicates(&canonical, &policy.near_duplicates)?
        .into_par_iter()
        .enumerate()
        .map(|(p, found)| {
            found.filter(|m| {
                slots[m.id].submission == slots[p].submission
                    || match (names(&slots[p]), names(&slots[m.id])) {
                        (Some(a), Some(b)) => names_agree(&a, &b),
                        _ => true,
                    }
            })
        })
        .collect();
    let wrong: Vec<Option<ArithmeticError>> = slots
        .par_iter()
        .map(|slot| cot(slot).and_then(|(_, c, a)| verify_row(&c, &a).err()))
        .collect();
    // Paraphrase copies: a row with the same numbers and equations as an earlier row (its
    // signature), naming the same people, whose reasoning also lines up with that row's. Two
    // honest solvers of one problem share the signature but not the wording, and template-mates
    // name other people, so both keep their rows. Rows that copy an evaluation item are left
    // out: the problem is the evaluation's, and they are rejected as contaminated already.
    let signatures: Vec<Option<String>> = slots
        .par_iter()
        .zip(&contamination)
        .map(|(slot, contaminated)| {
            if contaminated.is_some() {
                return None;
            }
            cot(slot)
                .and_then(|(p, c, _)| problem_signature(&p, &c, 2).filter(|s| !s.ends_with('|')))
        })
        .collect();
    let same_problem = same_problem_copies(&slots, &signatures, &policy.alignment, |slot| {
        cot(slot).map(|(p, c, _)| (p, c))
    });
    let reference = |position: usize| {
        let slot = &slots[position];
        RowRef {
            miner: ordered[slot.submission].miner.clone(),
            line: row_of(slot).line,
        }
    };
    let mut reasons: Vec<Vec<RejectReason>> = vec![Vec::new(); slots.len()];
    for position in 0..slots.len() {
        // A row that copies an evaluation item is rejected for that alone: the problem is the
        // evaluation's, so which miner copied it first does not matter.
        if let Some(evidence) = contamination[position].clone() {
            reasons[position].push(RejectReason::Contaminated { evidence });
        } else if let Some(first) = exact[position] {
            reasons[position].push(RejectReason::ExactDuplicate {
                of: reference(first),
            });
        } else if let Some(found) = near[position] {
            reasons[position].push(RejectReason::NearDuplicate {
                of: reference(found.id),
                jaccard: found.jaccard,
            });
        } else if let Some((first, alignment)) = same_problem[position] {
            reasons[position].push(RejectReason::SameProblem {
                of: reference(first),
                signature: signatures[position].clone().unwrap_or_default(),
                alignment,
            });
        }
        if let Some(error) = wrong[position].clone() {
            reasons[position].push(RejectReason::WrongAnswer { error });
        }
    }

    let duplicate_of: Vec<Option<usize>> = (0..slots.len())
        .map(|p| {
            if contamination[p].is_some() {
                return None;
            }
            exact[p]
                .or(near[p].map(|m| m.id))
                .or(same_problem[p].map(|(first, _)| first))
        })
        .collect();
    let flags: Vec<RowFlags> = (0..slots.len())
        .map(|p| RowFlags {
            duplicate: duplicate_of[p].is_some(),
            copied_from_other: duplicate_of[p]
                .is_some_and(|o| slots[o].submission != slots[p].submission),
            contaminated: contamination[p].is_some(),
            wrong: wrong[p].is_some(),
        })
        .collect();

    let mut outcome = RoundOutcome {
        report: IntegrityReport::default(),
        kept: Vec::new(),
    };
    let mut position = 0;
    for submission in &ordered {
        let range = position..position + submission.intake.rows.len();
        let (report, kept) = miner_outcome(
            submission,
            &mut reasons[range.clone()],
            &flags[range.clone()],
            policy,
        );
        outcome.report.miners.push(report);
        outcome.kept.push(kept);
        position = range.end;
    }
    Ok(outcome)
}

/// For each row, the earliest row before it (in priority order) with the same signature that it
/// copies ([`is_aligned_copy`]), and the alignment. Rows are compared only within a signature
/// group, with at most `params.max_candidates` earlier rows each.
fn same_problem_copies(
    slots: &[RowSlot],
    signatures: &[Option<String>],
    params: &AlignmentParams,
    prompt_and_reasoning: impl Fn(&RowSlot) -> Option<(String, String)> + Sync,
) -> Vec<Option<(usize, f32)>> {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, signature) in signatures.iter().enumerate() {
        if let Some(s) = signature {
            groups.entry(s.as_str()).or_default().push(position);
        }
    }
    // Only rows in a group of two or more need their evidence read.
    let evidence: Vec<Option<CopyEvidence>> = (0..slots.len())
        .into_par_iter()
        .map(|p| {
            let shared = signatures[p]
                .as_deref()
                .is_some_and(|s| groups.get(s).is_some_and(|g| g.len() > 1));
            if !shared {
                return None;
            }
            let (prompt, reasoning) = prompt_and_reasoning(&slots[p])?;
            Some(CopyEvidence::new(&prompt, &reasoning, params.max_tokens))
        })
        .collect();
    let later_rows: Vec<(&Vec<usize>, usize)> = groups
        .values()
        .filter(|g| g.len() > 1)
        .flat_map(|g| (1..g.len()).map(move |k| (g, k)))
        .collect();
    let copies: Vec<(usize, Option<(usize, f32)>)> = later_rows
        .into_par_iter()
        .map(|(group, k)| {
            let position = group[k];
            let copy = evidence[position].as_ref().and_then(|mine| {
                group[..k]
                    .iter()
                    .take(params.max_candidates)
                    .find_map(|&earlier| {
                        let alignment = is_aligned_copy(mine, evidence[earlier].as_ref()?, params)?;
                        Some((earlier, alignment))
                    })
            });
            (position, copy)
        })
        .collect();
    let mut found = vec![None; slots.len()];
    for (position, copy) in copies {
        found[position] = copy;
    }
    found
}

/// What the round-wide checks decided about one row.
#[derive(Clone, Copy)]
struct RowFlags {
    duplicate: bool,
    copied_from_other: bool,
    contaminated: bool,
    wrong: bool,
}

/// Builds one miner's report and kept rows from the per-row reasons.
fn miner_outcome(
    submission: &MinerSubmission,
    row_reasons: &mut [Vec<RejectReason>],
    flags: &[RowFlags],
    policy: &Policy,
) -> (MinerReport, KeptRows) {
    let rows = &submission.intake.rows;
    let mut rejected: BTreeMap<usize, Vec<RejectReason>> = BTreeMap::new();
    let mut file_problems = Vec::new();
    for problem in &submission.intake.problems {
        match problem.line {
            Some(line) if !is_row_limit_notice(problem) => {
                rejected
                    .entry(line)
                    .or_default()
                    .push(RejectReason::Schema {
                        problem: problem.clone(),
                    })
            }
            _ => file_problems.push(problem.clone()),
        }
    }
    let mut counts = RowCounts {
        rows: rows.len() + rejected.len(),
        invalid: rejected.len(),
        ..Default::default()
    };
    let mut kept = Vec::new();
    for ((row, reasons), flag) in rows.iter().zip(row_reasons.iter_mut()).zip(flags) {
        if reasons.is_empty() {
            kept.push(row.clone());
            continue;
        }
        counts.duplicate += usize::from(flag.duplicate);
        counts.copied_from_others += usize::from(flag.copied_from_other);
        counts.contaminated += usize::from(flag.contaminated);
        counts.wrong += usize::from(flag.wrong);
        rejected.entry(row.line).or_default().append(reasons);
    }
    let penalty = policy.penalties.multiplier(&counts);
    let report = MinerReport {
        miner: submission.miner.clone(),
        priority: submission.priority,
        counts,
        kept_lines: kept.iter().map(|r| r.line).collect(),
        rejected: rejected
            .into_iter()
            .map(|(line, reasons)| RejectedRow { line, reasons })
            .collect(),
        file_problems,
        penalty,
    };
    (
        report,
        KeptRows {
            miner: submission.miner.clone(),
            rows: kept,
        },
    )
}

/// The "too many rows" notice names a line but is about the file, not a bad row.
fn is_row_limit_notice(problem: &Problem) -> bool {
    problem.kind == ProblemKind::TooManyRows
}

/// One miner's model for the round, already checked with [`crate::models::check_model_folder`].
#[derive(Debug, Clone)]
pub struct ModelSubmission {
    /// The miner (hotkey or name).
    pub miner: String,
    /// When the submission arrived.
    pub priority: Priority,
    /// The model checks' result.
    pub report: ModelReport,
}

/// Orders model submissions by priority and flags each model whose weights are identical to, or
/// fingerprint-similar to, an earlier one. `base` is the common base model's fingerprint, if any.
pub fn check_model_round(
    submissions: &[ModelSubmission],
    rules: &ModelRules,
    base: Option<&crate::models::WeightFingerprint>,
) -> Vec<ModelVerdict> {
    let mut ordered: Vec<&ModelSubmission> = submissions.iter().collect();
    ordered.sort_by(|a, b| (a.priority, &a.miner).cmp(&(b.priority, &b.miner)));
    let mut verdicts: Vec<ModelVerdict> = Vec::with_capacity(ordered.len());
    for (index, model) in ordered.iter().enumerate() {
        let copy_of = ordered[..index].iter().find_map(|earlier| {
            if !earlier.report.content_hash.is_empty()
                && earlier.report.content_hash == model.report.content_hash
            {
                return Some((earlier.miner.clone(), 1.0));
            }
            let similarity = fingerprint_similarity(
                &model.report.fingerprint,
                &earlier.report.fingerprint,
                base,
            );
            (similarity >= rules.copy_similarity).then(|| (earlier.miner.clone(), similarity))
        });
        verdicts.push(ModelVerdict {
            miner: model.miner.clone(),
            priority: model.priority,
            parameters: model.report.parameters,
            content_hash: model.report.content_hash.clone(),
            violations: model.report.violations.clone(),
            copy_of,
        });
    }
    verdicts
}
