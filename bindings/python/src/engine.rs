//! `assay.engine`: load a model (HF folder, HF cache, GGUF, the embedded default), tokenise,
//! generate, score, and fine-tune with LoRA (or fully), with the GIL released throughout.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use assay_engine::train::{
    AdamWConfig, LoraConfig, Schedule, TrainConfig, TrainRow, attach_lora, lora_parameters, peft,
    tokenize_rows, train,
};
use assay_engine::{
    BatchLimits, ChatMessage, DeviceSpec, GenerateOptions, LoadedModel, ModelSource, Placement,
    Precision, SamplingParams, generate, score_completions, score_sequences,
};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{bad_argument, diagnosed};
use crate::{from_python, to_python};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    Ok(())
}

/// A Python progress callback called from a thread without the GIL; the first exception it
/// raises is kept and re-raised when the Rust call returns.
pub(crate) struct Callback {
    callable: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl Callback {
    pub(crate) fn new(callable: Option<Py<PyAny>>) -> Self {
        Self {
            callable,
            error: None,
        }
    }

    /// Calls the callback with a dict made by `fill` (skipped once it has failed).
    pub(crate) fn call(&mut self, fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>) {
        let Some(callable) = &self.callable else {
            return;
        };
        if self.error.is_some() {
            return;
        }
        Python::attach(|py| {
            let event = PyDict::new(py);
            if let Err(e) = fill(&event).and_then(|()| callable.call1(py, (event,)).map(drop)) {
                self.error = Some(e);
            }
        });
    }

    pub(crate) fn finish(self) -> PyResult<()> {
        self.error.map_or(Ok(()), Err)
    }
}

/// A loaded model with its tokenizer and chat template. Thread-safe: calls on one model run one
/// at a time (each releases the GIL, so other Python threads keep running).
#[pyclass(module = "assay.engine", frozen)]
struct Model {
    inner: Mutex<Inner>,
    source: String,
    placement: Placement,
}

struct Inner {
    lm: LoadedModel,
    /// The adapters attached by `train(lora=True)`, for `save_adapter`.
    lora: Option<LoraConfig>,
}

impl Model {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while training leaves the weights as they were after the last step; the
        // model stays usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn placement(device: &str, dtype: Option<&str>) -> PyResult<Placement> {
    let device: DeviceSpec = device.parse().map_err(diagnosed)?;
    let dtype = dtype
        .map(|d| d.parse::<Precision>())
        .transpose()
        .map_err(diagnosed)?;
    Ok(Placement { device, dtype })
}

/// Prompt token ids: each prompt as it is, or (with `chat`) rendered as a user turn (after an
/// optional system message) with the model's chat template and a generation prompt.
fn encode_prompts(
    lm: &LoadedModel,
    prompts: &[String],
    chat: bool,
    system: Option<&str>,
) -> assay_engine::Result<Vec<Vec<u32>>> {
    prompts
        .iter()
        .map(|prompt| {
            if chat {
                let mut messages = Vec::new();
                if let Some(system) = system {
                    messages.push(ChatMessage::new("system", system));
                }
                messages.push(ChatMessage::new("user", prompt.as_str()));
                let text = lm.tokenizer.apply_chat_template(&messages, true)?;
                lm.tokenizer.encode(&text, false)
            } else {
                lm.tokenizer.encode(prompt, true)
            }
        })
        .collect()
}

#[pymethods]
impl Model {
    /// Loads a model: `source` is a Hugging Face folder (`config.json`, safetensors,
    /// `tokenizer.json`), a `.gguf` file, `org/name[@revision]` from the local HF cache
    /// (offline), or None for the embedded default (SmolLM2-135M-Instruct, fetched and verified
    /// once). `device` is `cpu`, `cuda` or `cuda:N`; `dtype` `f32`, `bf16` or `f16` (default:
    /// f32 on the CPU, bf16 on a GPU).
    #[staticmethod]
    #[pyo3(signature = (source=None, device="cpu", dtype=None))]
    fn load(
        py: Python<'_>,
        source: Option<&str>,
        device: &str,
        dtype: Option<&str>,
    ) -> PyResult<Self> {
        let placement = placement(device, dtype)?;
        let source = source.map(str::to_owned);
        let lm = py
            .detach(|| {
                let resolved = ModelSource::resolve(source.as_deref())?;
                assay_engine::load(&resolved, &placement.load_options()?)
            })
            .map_err(diagnosed)?;
        Ok(Self {
            source: lm.source.to_string(),
            placement,
            inner: Mutex::new(Inner { lm, lora: None }),
        })
    }

    /// Where the model was loaded from (a folder or a GGUF file).
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// The device, as `cpu` or `cuda:N`.
    #[getter]
    fn device(&self) -> String {
        self.placement.device.to_string()
    }

    /// The weight dtype (`f32`, `bf16`, `f16`).
    #[getter]
    fn dtype(&self) -> String {
        self.placement.precision().to_string()
    }

    /// Token ids of `text`; `add_special_tokens` applies the tokenizer's post-processor (a BOS).
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn encode(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        self.lock()
            .lm
            .tokenizer
            .encode(text, add_special_tokens)
            .map_err(diagnosed)
    }

    /// The text of token ids.
    #[pyo3(signature = (ids, skip_special_tokens=true))]
    fn decode(&self, ids: Vec<u32>, skip_special_tokens: bool) -> PyResult<String> {
        self.lock()
            .lm
            .tokenizer
            .decode(&ids, skip_special_tokens)
            .map_err(diagnosed)
    }

    /// Renders `messages` (dicts with `role` and `content`) with the model's chat template, as
    /// transformers' `apply_chat_template(..., tokenize=False)` does.
    #[pyo3(signature = (messages, add_generation_prompt=true))]
    fn apply_chat_template(
        &self,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
    ) -> PyResult<String> {
        let messages: Vec<ChatMessage> = from_python(messages, "chat messages")?;
        self.lock()
            .lm
            .tokenizer
            .apply_chat_template(&messages, add_generation_prompt)
            .map_err(diagnosed)
    }

    /// Generates `n` samples per prompt, batched, and returns their texts: a list of `str` per
    /// prompt when `n == 1`, else a list of `n` lists. Greedy when `temperature` is 0; sampling
    /// is keyed by (seed, prompt, sample), so results do not depend on batch size. `chat`
    /// renders each prompt as a user turn with the chat template. `progress` is called with
    /// `{"tokens": k}` after each decode step.
    #[pyo3(signature = (
        prompts, *, max_new_tokens=256, temperature=0.0, top_p=1.0, top_k=None, n=1, stop=None,
        repetition_penalty=1.0, seed=0, chat=false, system=None, max_batch_rows=32, progress=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prompts: Vec<String>,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        top_k: Option<usize>,
        n: usize,
        stop: Option<Vec<String>>,
        repetition_penalty: f32,
        seed: u64,
        chat: bool,
        system: Option<String>,
        max_batch_rows: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let params = SamplingParams {
            temperature,
            top_k,
            top_p,
            max_new_tokens,
            stop_token_ids: vec![],
            stop_strings: stop.unwrap_or_default(),
            n,
            repetition_penalty,
        };
        let options = GenerateOptions {
            seed,
            max_batch_rows: max_batch_rows.max(1),
        };
        let mut callback = Callback::new(progress);
        let result = py.detach(|| {
            let inner = self.lock();
            let lm = &inner.lm;
            let ids = encode_prompts(lm, &prompts, chat, system.as_deref())?;
            generate(&lm.model, &lm.tokenizer, &ids, &params, options, |tokens| {
                callback.call(|e| e.set_item("tokens", tokens));
            })
        });
        callback.finish()?;
        let completions = result.map_err(diagnosed)?;
        if n == 1 {
            let texts: Vec<String> = completions
                .into_iter()
                .map(|mut c| c.remove(0).text)
                .collect();
            return Ok(texts.into_pyobject(py)?.into_any().unbind());
        }
        let texts: Vec<Vec<String>> = completions
            .into_iter()
            .map(|c| c.into_iter().map(|s| s.text).collect())
            .collect();
        Ok(texts.into_pyobject(py)?.into_any().unbind())
    }

    /// Log-probabilities of each `completions[i]` after `prompts[i]` (only completion tokens are
    /// scored; the prompt gets the tokenizer's special tokens, the completion none): one dict per
    /// pair with `logprobs` (float32 array), `sum_logprob`, `mean_nll` and `is_greedy`.
    #[pyo3(signature = (prompts, completions, *, max_batch_tokens=4096, progress=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        completions: Vec<String>,
        max_batch_tokens: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        if prompts.len() != completions.len() {
            return Err(bad_argument(format!(
                "{} prompts but {} completions: pass one completion per prompt",
                prompts.len(),
                completions.len()
            )));
        }
        let mut callback = Callback::new(progress);
        let result = py.detach(|| {
            let inner = self.lock();
            let lm = &inner.lm;
            let pairs = prompts
                .iter()
                .zip(&completions)
                .map(|(p, c)| {
                    Ok((
                        lm.tokenizer.encode(p, true)?,
                        lm.tokenizer.encode(c, false)?,
                    ))
                })
                .collect::<assay_engine::Result<Vec<_>>>()?;
            let limits = BatchLimits {
                max_tokens: max_batch_tokens.max(1),
            };
            score_completions(&lm.model, &pairs, limits, |done| {
                callback.call(|e| e.set_item("sequences", done));
            })
        });
        callback.finish()?;
        let scores = result.map_err(diagnosed)?;
        scores
            .into_iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("logprobs", s.logprobs.into_pyarray(py))?;
                d.set_item("sum_logprob", s.sum_logprob)?;
                d.set_item("mean_nll", s.mean_nll)?;
                d.set_item("is_greedy", s.is_greedy)?;
                Ok(d)
            })
            .collect()
    }

    /// Log-probabilities of token sequences (ids): one float32 array per sequence, entry `i`
    /// being log p(token `i + 1` | tokens `0..=i`), so one shorter than the sequence.
    #[pyo3(signature = (sequences, *, max_batch_tokens=4096))]
    fn score_tokens<'py>(
        &self,
        py: Python<'py>,
        sequences: Vec<Vec<u32>>,
        max_batch_tokens: usize,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray1<f32>>>> {
        let limits = BatchLimits {
            max_tokens: max_batch_tokens.max(1),
        };
        let scores = py
            .detach(|| score_sequences(&self.lock().lm.model, &sequences, limits, |_| {}))
            .map_err(diagnosed)?;
        Ok(scores
            .into_iter()
            .map(|s| s.logprobs.into_pyarray(py))
            .collect())
    }

    /// Fine-tunes the model in place on `rows` (dicts `{"prompt", "completion"}` or
    /// `{"messages": [...]}`; only the completion / last assistant turn is learned) and returns
    /// the run's report (`steps`, `tokens`, `train_loss`, `history`, ...). With `lora` (the
    /// default) LoRA adapters of `rank`/`alpha` on `targets` (default: all projections) of
    /// `layers` (default: all) are trained, else every weight. `progress` gets each step's log
    /// (`step`, `loss`, `lr`, `grad_norm`, `tokens`, `planned_steps`, ...).
    #[pyo3(signature = (
        rows, *, lora=true, rank=16, alpha=32.0, targets=None, layers=None, lr=2e-4,
        weight_decay=0.0, steps=None, epochs=1, batch_tokens=2048, grad_accum=1, warmup_steps=0,
        schedule="cosine", max_grad_norm=1.0, token_budget=None, time_budget_s=None, seed=0,
        chat=false, max_len=4096, progress=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn train<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
        lora: bool,
        rank: usize,
        alpha: f64,
        targets: Option<Vec<String>>,
        layers: Option<Vec<usize>>,
        lr: f64,
        weight_decay: f64,
        steps: Option<usize>,
        epochs: usize,
        batch_tokens: usize,
        grad_accum: usize,
        warmup_steps: usize,
        schedule: &str,
        max_grad_norm: f64,
        token_budget: Option<usize>,
        time_budget_s: Option<f64>,
        seed: u64,
        chat: bool,
        max_len: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows: Vec<TrainRow> = from_python(rows, "training rows")?;
        let schedule = match schedule {
            "constant" => Schedule::Constant,
            "linear" => Schedule::Linear,
            "cosine" => Schedule::Cosine,
            other => {
                return Err(bad_argument(format!(
                    "unknown schedule `{other}`: use constant, linear or cosine"
                )));
            }
        };
        let lora_config = LoraConfig {
            rank,
            alpha,
            layers,
            target_modules: targets.unwrap_or_else(|| LoraConfig::default().target_modules),
            ..LoraConfig::default()
        };
        let config = TrainConfig {
            optimizer: AdamWConfig {
                lr,
                weight_decay,
                ..AdamWConfig::default()
            },
            schedule,
            warmup_steps,
            batch_tokens,
            grad_accum: grad_accum.max(1),
            max_grad_norm,
            epochs,
            max_steps: steps,
            token_budget,
            time_budget_s,
            eval_every: None,
            seed,
        };
        let mut callback = Callback::new(progress);
        let result = py.detach(|| {
            let mut inner = self.lock();
            let examples = tokenize_rows(&rows, &inner.lm.tokenizer, chat, max_len, "rows")?;
            let params = if lora {
                lora_config.validate()?;
                if inner.lora.is_some() {
                    return Err(assay_engine::EngineError::Request(
                        "this model already has LoRA adapters from an earlier train(); load it \
                         again to train fresh ones"
                            .into(),
                    ));
                }
                attach_lora(&mut inner.lm.model, &lora_config, seed)?;
                inner.lora = Some(lora_config.clone());
                lora_parameters(&mut inner.lm.model)
            } else {
                inner.lm.model.make_trainable()?
            };
            train(&inner.lm.model, &params, &examples, &[], &config, |step| {
                callback.call(|e| {
                    e.set_item("step", step.step)?;
                    e.set_item("planned_steps", step.planned_steps)?;
                    e.set_item("loss", step.loss)?;
                    e.set_item("lr", step.lr)?;
                    e.set_item("grad_norm", step.grad_norm)?;
                    e.set_item("tokens", step.tokens)?;
                    e.set_item("elapsed_s", step.elapsed_s)
                });
            })
        });
        callback.finish()?;
        let report = result.map_err(diagnosed)?;
        to_python(py, &report)
    }

    /// Writes the LoRA adapters of the last `train(lora=True)` to `path` in PEFT's format
    /// (`adapter_config.json`, `adapter_model.safetensors`).
    #[pyo3(signature = (path, base_model=None))]
    fn save_adapter(
        &self,
        py: Python<'_>,
        path: PathBuf,
        base_model: Option<String>,
    ) -> PyResult<()> {
        let base = base_model.unwrap_or_else(|| self.source.clone());
        py.detach(|| {
            let mut inner = self.lock();
            let Some(config) = inner.lora.clone() else {
                return Err(assay_engine::EngineError::Request(
                    "this model has no LoRA adapters: call train(rows, lora=True) first".into(),
                ));
            };
            peft::save_adapter(&mut inner.lm.model, &config, &base, &path)
        })
        .map_err(diagnosed)
    }

    fn __repr__(&self) -> String {
        format!("Model({}, {})", self.source, self.placement)
    }
}
