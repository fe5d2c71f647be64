//! `assay.metrics`: word recall, ROUGE, BLEU, math answers and IF-eval rules, exactly as the
//! Rust crate `assay-eval` computes them (and as its golden fixtures check).

use assay_eval::ifeval::punkt::sentence_count as punkt_sentence_count;
use assay_eval::ifeval::{IfEvalRule, Rule};
use assay_eval::math;
use assay_eval::text::bleu;
use assay_eval::text::recall;
use assay_eval::text::rouge::{RougeScore, RougeTokenizer, rouge_scores};
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyDict;

use crate::errors::bad_argument;

/// Picks one ROUGE variant's scores out of all four.
type PickRouge = fn(&assay_eval::text::rouge::RougeScores) -> RougeScore;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(word_recall, m)?)?;
    m.add_function(wrap_pyfunction!(word_recall_batch, m)?)?;
    m.add_function(wrap_pyfunction!(mean_word_recall, m)?)?;
    m.add_function(wrap_pyfunction!(rouge, m)?)?;
    m.add_function(wrap_pyfunction!(rouge_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sentence_bleu, m)?)?;
    m.add_function(wrap_pyfunction!(corpus_bleu, m)?)?;
    m.add_function(wrap_pyfunction!(extract_answer, m)?)?;
    m.add_function(wrap_pyfunction!(strip_string, m)?)?;
    m.add_function(wrap_pyfunction!(math_equal, m)?)?;
    m.add_function(wrap_pyfunction!(grade_completion, m)?)?;
    m.add_function(wrap_pyfunction!(ifeval_check, m)?)?;
    m.add_function(wrap_pyfunction!(ifeval_prompt, m)?)?;
    m.add_function(wrap_pyfunction!(sentence_count, m)?)?;
    m.add_function(wrap_pyfunction!(_word_recall_rust_seconds, m)?)?;
    Ok(())
}

/// Pairs `outputs[i]` with `references[i]`, refusing lists of different lengths.
fn zip_pairs<'a>(
    outputs: &'a [PyBackedStr],
    references: &'a [PyBackedStr],
) -> PyResult<Vec<(&'a str, &'a str)>> {
    if outputs.len() != references.len() {
        return Err(bad_argument(format!(
            "{} outputs but {} references: pass one reference per output",
            outputs.len(),
            references.len()
        )));
    }
    Ok(outputs
        .iter()
        .zip(references)
        .map(|(o, r)| (&**o, &**r))
        .collect())
}

/// Worker threads for a batch: the caller's choice, else every core.
fn thread_count(threads: Option<usize>) -> PyResult<usize> {
    match threads {
        Some(0) => Err(bad_argument("threads must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Fraction of the distinct lower-cased words of `reference` found in `output` (the Datacomp
/// interview's `naive_string_similarity`); 0.0 when the reference has no words.
#[pyfunction]
fn word_recall(output: &str, reference: &str) -> f64 {
    recall::word_recall(output, reference)
}

/// `word_recall` of every `(outputs[i], references[i])` pair as a float64 array, computed on
/// `threads` threads (default: all cores) with the GIL released. Same values as one at a time.
#[pyfunction]
#[pyo3(signature = (outputs, references, threads=None))]
fn word_recall_batch<'py>(
    py: Python<'py>,
    outputs: Vec<PyBackedStr>,
    references: Vec<PyBackedStr>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let pairs = zip_pairs(&outputs, &references)?;
    let threads = thread_count(threads)?;
    let scores = py.detach(|| recall::word_recall_parallel(&pairs, threads));
    Ok(scores.into_pyarray(py))
}

/// Mean word recall over the pairs, summed left to right as the interview's
/// `validate_and_score` does (bit-identical to Python's float result); 0.0 for no pairs.
#[pyfunction]
fn mean_word_recall(
    py: Python<'_>,
    outputs: Vec<PyBackedStr>,
    references: Vec<PyBackedStr>,
) -> PyResult<f64> {
    let pairs = zip_pairs(&outputs, &references)?;
    Ok(py.detach(|| recall::mean_word_recall(pairs.iter().copied())))
}

fn score_dict<'py>(py: Python<'py>, score: &RougeScore) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("precision", score.precision)?;
    d.set_item("recall", score.recall)?;
    d.set_item("fmeasure", score.fmeasure)?;
    Ok(d)
}

/// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of `prediction` against `target`, as Google's
/// `rouge-score` computes them: `{"rouge1": {"precision", "recall", "fmeasure"}, ...,
/// "rougeL": ..., "rougeLsum": ...}`.
#[pyfunction]
#[pyo3(signature = (target, prediction, use_stemmer=false))]
fn rouge<'py>(
    py: Python<'py>,
    target: &str,
    prediction: &str,
    use_stemmer: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let tokenizer = RougeTokenizer::new(use_stemmer);
    let s = py.detach(|| rouge_scores(target, prediction, &tokenizer));
    let d = PyDict::new(py);
    d.set_item("rouge1", score_dict(py, &s.rouge1)?)?;
    d.set_item("rouge2", score_dict(py, &s.rouge2)?)?;
    d.set_item("rougeL", score_dict(py, &s.rouge_l)?)?;
    d.set_item("rougeLsum", score_dict(py, &s.rouge_lsum)?)?;
    Ok(d)
}

/// ROUGE of every `(targets[i], predictions[i])` pair: `{"rouge1": array (n, 3), ...}` with
/// columns precision, recall, F-measure.
#[pyfunction]
#[pyo3(signature = (targets, predictions, use_stemmer=false))]
fn rouge_batch<'py>(
    py: Python<'py>,
    targets: Vec<PyBackedStr>,
    predictions: Vec<PyBackedStr>,
    use_stemmer: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let pairs = zip_pairs(&targets, &predictions)?;
    let tokenizer = RougeTokenizer::new(use_stemmer);
    let all: Vec<_> = py.detach(|| {
        pairs
            .iter()
            .map(|(t, p)| rouge_scores(t, p, &tokenizer))
            .collect()
    });
    let d = PyDict::new(py);
    let variants: [(&str, PickRouge); 4] = [
        ("rouge1", |s| s.rouge1),
        ("rouge2", |s| s.rouge2),
        ("rougeL", |s| s.rouge_l),
        ("rougeLsum", |s| s.rouge_lsum),
    ];
    for (name, pick) in variants {
        let rows: Vec<Vec<f64>> = all
            .iter()
            .map(|s| {
                let r = pick(s);
                vec![r.precision, r.recall, r.fmeasure]
            })
            .collect();
        let array = if rows.is_empty() {
            PyArray2::<f64>::zeros(py, [0, 3], false)
        } else {
            PyArray2::from_vec2(py, &rows).map_err(|e| bad_argument(e.to_string()))?
        };
        d.set_item(name, array)?;
    }
    Ok(d)
}

fn bleu_dict<'py>(py: Python<'py>, b: &bleu::BleuScore) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("score", b.score)?;
    d.set_item("counts", b.counts.to_vec())?;
    d.set_item("totals", b.totals.to_vec())?;
    d.set_item("precisions", b.precisions.to_vec())?;
    d.set_item("bp", b.bp)?;
    d.set_item("sys_len", b.sys_len)?;
    d.set_item("ref_len", b.ref_len)?;
    Ok(d)
}

/// sacrebleu's `sentence_bleu` (13a tokenizer, exp smoothing, effective order): a dict with
/// `score` (0–100), `counts`, `totals`, `precisions`, `bp`, `sys_len`, `ref_len`.
#[pyfunction]
fn sentence_bleu<'py>(
    py: Python<'py>,
    hypothesis: &str,
    references: Vec<PyBackedStr>,
) -> PyResult<Bound<'py, PyDict>> {
    let score =
        bleu::sentence_bleu(hypothesis, &references).map_err(|e| bad_argument(e.to_string()))?;
    bleu_dict(py, &score)
}

/// sacrebleu's `corpus_bleu`, with `references[i]` the list of references of `hypotheses[i]`
/// (sacrebleu itself takes reference streams, `refs[k][i]`; transpose to call it the same way).
#[pyfunction]
fn corpus_bleu<'py>(
    py: Python<'py>,
    hypotheses: Vec<PyBackedStr>,
    references: Vec<Vec<PyBackedStr>>,
) -> PyResult<Bound<'py, PyDict>> {
    let score = py
        .detach(|| bleu::corpus_bleu(&hypotheses, &references))
        .map_err(|e| bad_argument(e.to_string()))?;
    bleu_dict(py, &score)
}

/// The final answer of a math solution (the last `\boxed{}`, "the answer is ...", else the
/// last number), as Qwen2.5-Math's evaluation extracts it.
#[pyfunction]
fn extract_answer(text: &str) -> String {
    math::extract_answer(text)
}

/// Qwen2.5-Math's `strip_string` normalisation of an answer.
#[pyfunction]
#[pyo3(signature = (answer, skip_unit=false))]
fn strip_string(answer: &str, skip_unit: bool) -> String {
    math::strip_string(answer, skip_unit)
}

/// Whether two answers are mathematically equal (numbers, fractions, LaTeX, symbolic forms).
#[pyfunction]
fn math_equal(prediction: &str, reference: &str) -> bool {
    math::math_equal(prediction, reference)
}

/// Whether a whole completion's extracted answer equals the gold solution's.
#[pyfunction]
fn grade_completion(completion: &str, gold_solution: &str) -> bool {
    math::grade_completion(completion, gold_solution)
}

fn parse_rule(rule: &Bound<'_, PyAny>) -> PyResult<Rule> {
    let json: String = rule
        .py()
        .import("json")?
        .call_method1("dumps", (rule,))?
        .extract()?;
    serde_json::from_str(&json).map_err(|e| {
        bad_argument(format!(
            "not an IF-eval rule ({e}); write e.g. {{\"rule\": \"word_count_at_most\", \"count\": 25}}"
        ))
    })
}

/// Whether `response` (the `index`-th response of a sample) satisfies the SN37 IF-eval `rule`,
/// given as a dict such as `{"rule": "keyword_inclusion", "keywords": ["cat"]}`.
#[pyfunction]
#[pyo3(signature = (rule, response, index=0))]
fn ifeval_check(rule: &Bound<'_, PyAny>, response: &str, index: usize) -> PyResult<bool> {
    let rule = parse_rule(rule)?;
    rule.matches(response, index)
        .map_err(|e| bad_argument(e.to_string()))
}

/// The instruction `rule` adds to the prompt of response `index`.
#[pyfunction]
#[pyo3(signature = (rule, index=0))]
fn ifeval_prompt(rule: &Bound<'_, PyAny>, index: usize) -> PyResult<String> {
    let rule = parse_rule(rule)?;
    rule.prompt(index).map_err(|e| bad_argument(e.to_string()))
}

/// Sentences in `text` as NLTK's untrained `PunktSentenceTokenizer` counts them (SN37's rule).
#[pyfunction]
fn sentence_count(text: &str) -> usize {
    punkt_sentence_count(text)
}

/// For the benchmark (`bench/bench_metrics.py`): seconds the Rust call of `word_recall_batch`
/// takes on these pairs, timed inside Rust after the arguments are converted (the best of
/// `repeats` runs), so the Python-facing overhead is the rest of the Python call's time.
#[pyfunction]
#[pyo3(signature = (outputs, references, threads=None, repeats=5))]
fn _word_recall_rust_seconds(
    py: Python<'_>,
    outputs: Vec<PyBackedStr>,
    references: Vec<PyBackedStr>,
    threads: Option<usize>,
    repeats: usize,
) -> PyResult<f64> {
    let pairs = zip_pairs(&outputs, &references)?;
    let threads = thread_count(threads)?;
    Ok(py.detach(|| {
        (0..repeats.max(1))
            .map(|_| {
                let start = std::time::Instant::now();
                let scores = recall::word_recall_parallel(&pairs, threads);
                let elapsed = start.elapsed().as_secs_f64();
                std::hint::black_box(scores);
                elapsed
            })
            .fold(f64::INFINITY, f64::min)
    }))
}
