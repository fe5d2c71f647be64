//! Reward models: a causal-LM backbone plus a linear value head, scored with Skywork's input recipe.
//!
//! Skywork-o1-Open-PRM (`model_utils/io_utils.py::prepare_input`, `prm_model.py`) reads the final
//! normalised hidden state of every token, applies `v_head.summary` (Linear(H, 1) with bias) and a
//! sigmoid, and keeps the values at the newline token that closes each line of the response. No chat
//! template is used: the input is `bos + problem + "\n"` followed by the response, split on `"\n"`,
//! every piece tokenised on its own with the newline token appended (so BPE never merges across lines
//! and a blank line still gets its own reward).
//!
//! An outcome reward model uses the same backbone and head but reads one value, at the last token of
//! `bos + problem + "\n" + response` tokenised as a whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assay_engine::{LoadOptions, LoadedModel, ModelSource, Pass, TextTokenizer, load};
use candle_core::{D, DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{BonError, Result};

/// Checkpoint name of the head's weight, `[1, H]` (Skywork's layout).
pub const HEAD_WEIGHT: &str = "v_head.summary.weight";
/// Checkpoint name of the head's bias, `[1]`.
pub const HEAD_BIAS: &str = "v_head.summary.bias";
/// File name of a head trained by `assay prm train`, next to its `prm.json`.
pub const HEAD_FILE: &str = "value_head.safetensors";
/// File that marks a folder as a head on a separate backbone.
pub const PRM_MANIFEST: &str = "prm.json";

/// Where a reward is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// One reward per response line (Skywork's recipe).
    Process,
    /// One reward for the whole response, at its last token.
    Outcome,
}

impl RewardKind {
    /// The name used in flags and files (`process`, `outcome`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Outcome => "outcome",
        }
    }
}

impl std::fmt::Display for RewardKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `prm.json`: a value head trained on top of a backbone that lives elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmManifest {
    /// What `ModelSource::resolve` is given to find the backbone (`null`: the embedded default).
    pub backbone: Option<String>,
    /// Process or outcome model.
    pub kind: RewardKind,
    /// Free-form notes on how the head was made.
    #[serde(default)]
    pub notes: serde_json::Value,
}

/// A linear head on hidden states: `sigmoid(h · w + b)`.
#[derive(Debug, Clone)]
pub struct ValueHead {
    /// Weight `[H]`, f32.
    pub weight: Tensor,
    /// Bias.
    pub bias: f32,
}

impl ValueHead {
    /// Reads `v_head.summary.weight` `[1, H]` and `v_head.summary.bias` `[1]` from safetensors files.
    pub fn from_safetensors(files: &[PathBuf], hidden: usize, device: &Device) -> Result<Self> {
        for file in files {
            let tensors = candle_core::safetensors::load(file, device)
                .map_err(|e| BonError::bad_file(file, format!("not readable safetensors: {e}")))?;
            if let Some(w) = tensors.get(HEAD_WEIGHT) {
                return Self::from_tensors(w, tensors.get(HEAD_BIAS), hidden)
                    .map_err(|e| BonError::bad_file(file, e.to_string()));
            }
        }
        Err(BonError::Input(format!(
            "no `{HEAD_WEIGHT}` in {} safetensors file(s): not a Skywork-style reward model",
            files.len()
        )))
    }

    fn from_tensors(w: &Tensor, b: Option<&Tensor>, hidden: usize) -> Result<Self> {
        if w.dims() != [1, hidden] {
            return Err(BonError::Input(format!(
                "`{HEAD_WEIGHT}` has shape {}, expected [1, {hidden}]",
                shape(w.dims())
            )));
        }
        let bias = match b {
            Some(b) if b.dims() == [1] => b.to_dtype(DType::F32)?.to_vec1::<f32>()?[0],
            Some(b) => {
                return Err(BonError::Input(format!(
                    "`{HEAD_BIAS}` has shape {}, expected [1]",
                    shape(b.dims())
                )));
            }
            None => return Err(BonError::Input(format!("`{HEAD_BIAS}` is missing"))),
        };
        Ok(Self {
            weight: w.to_dtype(DType::F32)?.flatten_all()?,
            bias,
        })
    }

    /// Writes the head in Skywork's layout.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        map.insert(HEAD_WEIGHT.to_string(), self.weight.unsqueeze(0)?);
        let bias = Tensor::new(&[self.bias], self.weight.device())?;
        map.insert(HEAD_BIAS.to_string(), bias);
        candle_core::safetensors::save(&map, path).map_err(|e| match e {
            candle_core::Error::Io(source) => BonError::write(path, source),
            other => BonError::bad_file(path, format!("cannot write the value head: {other}")),
        })
    }

    /// Logits `[..]` for hidden states `[.., H]` (cast to f32 first, as Skywork casts to the head's dtype).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let h = hidden.to_dtype(DType::F32)?;
        let w = self.weight.to_device(h.device())?;
        Ok((h.broadcast_mul(&w)?.sum(D::Minus1)? + self.bias as f64)?)
    }
}

/// Token ids of one (problem, response) pair and the positions where rewards are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardInput {
    /// The full sequence.
    pub input_ids: Vec<u32>,
    /// Indices into `input_ids` of the reward positions, in order.
    pub reward_positions: Vec<usize>,
}

/// Builds Skywork's process-reward input (see the module docs). `bos` is the backbone's BOS text.
pub fn process_input(
    tokenizer: &TextTokenizer,
    bos: &str,
    newline_id: u32,
    problem: &str,
    response: &str,
) -> Result<RewardInput> {
    let mut input_ids = tokenizer.encode(&format!("{bos}{problem}\n"), false)?;
    let mut reward_positions = Vec::new();
    for piece in response.split('\n') {
        // The reference tokenises "" as no tokens, then appends the newline to every piece.
        if !piece.is_empty() {
            input_ids.extend(tokenizer.encode(piece, false)?);
        }
        input_ids.push(newline_id);
        reward_positions.push(input_ids.len() - 1);
    }
    Ok(RewardInput {
        input_ids,
        reward_positions,
    })
}

/// The outcome-reward input: everything tokenised at once, the reward read at the last token.
pub fn outcome_input(
    tokenizer: &TextTokenizer,
    bos: &str,
    problem: &str,
    response: &str,
) -> Result<RewardInput> {
    let input_ids = tokenizer.encode(&format!("{bos}{problem}\n{response}"), false)?;
    let last = input_ids
        .len()
        .checked_sub(1)
        .ok_or_else(|| BonError::Input("problem and response tokenise to nothing".into()))?;
    Ok(RewardInput {
        input_ids,
        reward_positions: vec![last],
    })
}

/// A loaded reward model.
pub struct RewardModel {
    /// Backbone and tokenizer.
    pub backbone: LoadedModel,
    /// The value head.
    pub head: ValueHead,
    /// Process or outcome.
    pub kind: RewardKind,
    /// BOS text prepended to every input.
    pub bos: String,
    /// The newline token that closes each step.
    pub newline_id: u32,
    /// Longest sequence the backbone accepts.
    pub max_positions: usize,
}

impl std::fmt::Debug for RewardModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardModel")
            .field("kind", &self.kind)
            .field("bos", &self.bos)
            .field("newline_id", &self.newline_id)
            .finish()
    }
}

impl RewardModel {
    /// Loads a reward model from a folder: either Skywork's layout (a Qwen2/Llama checkpoint whose
    /// safetensors also hold `v_head.summary.*`), or a `prm.json` + `value_head.safetensors` pair whose
    /// manifest names the backbone. `kind` overrides the manifest's kind (Skywork folders default to
    /// process).
    pub fn load(spec: &str, kind: Option<RewardKind>, options: &LoadOptions) -> Result<Self> {
        let dir = Path::new(spec);
        let manifest_path = dir.join(PRM_MANIFEST);
        if manifest_path.is_file() {
            let text = std::fs::read_to_string(&manifest_path)
                .map_err(|e| BonError::read(&manifest_path, e))?;
            let manifest: PrmManifest = serde_json::from_str(&text)
                .map_err(|e| BonError::bad_file(&manifest_path, e.to_string()))?;
            let source = ModelSource::resolve(manifest.backbone.as_deref())?;
            let backbone = load(&source, options)?;
            let hidden = backbone.model.config().hidden_size;
            let head =
                ValueHead::from_safetensors(&[dir.join(HEAD_FILE)], hidden, &options.device)?;
            return Self::new(backbone, head, kind.unwrap_or(manifest.kind));
        }
        let source = ModelSource::resolve(Some(spec))?;
        let ModelSource::HfFolder(folder) = &source else {
            return Err(BonError::Input(format!(
                "`{spec}` is not a folder: a reward model is a Skywork-style folder or a `prm.json` folder"
            )));
        };
        let files = assay_engine::source::safetensors_files(folder)?;
        let backbone = load(&source, options)?;
        let hidden = backbone.model.config().hidden_size;
        let head = ValueHead::from_safetensors(&files, hidden, &options.device)?;
        Self::new(backbone, head, kind.unwrap_or(RewardKind::Process))
    }

    /// Puts a backbone and a head together, checking the special tokens the recipe needs.
    pub fn new(backbone: LoadedModel, head: ValueHead, kind: RewardKind) -> Result<Self> {
        let hidden = backbone.model.config().hidden_size;
        if head.weight.dims() != [hidden] {
            return Err(BonError::Input(format!(
                "value head has weights of shape {} for a backbone of hidden size {hidden}",
                shape(head.weight.dims())
            )));
        }
        // Skywork concatenates `tokenizer.bos_token` as text, so the tokenizer must define one.
        let bos = backbone.tokenizer.bos_token.clone().ok_or_else(|| {
            BonError::Input(
                "the reward model's tokenizer has no bos_token (tokenizer_config.json); Skywork's recipe needs one"
                    .into(),
            )
        })?;
        let newline_id = *backbone
            .tokenizer
            .encode("\n", false)?
            .last()
            .ok_or_else(|| BonError::Input("the tokenizer encodes \"\\n\" as nothing".into()))?;
        let max_positions = backbone.model.config().max_position_embeddings;
        Ok(Self {
            backbone,
            head,
            kind,
            bos,
            newline_id,
            max_positions,
        })
    }

    /// The reward input of one response.
    pub fn input(&self, problem: &str, response: &str) -> Result<RewardInput> {
        let tok = &self.backbone.tokenizer;
        let input = match self.kind {
            RewardKind::Process => {
                process_input(tok, &self.bos, self.newline_id, problem, response)?
            }
            RewardKind::Outcome => outcome_input(tok, &self.bos, problem, response)?,
        };
        if input.input_ids.len() > self.max_positions {
            return Err(BonError::Input(format!(
                "problem + response is {} tokens; the reward model takes at most {}",
                input.input_ids.len(),
                self.max_positions
            )));
        }
        Ok(input)
    }

    /// Final hidden states at the reward positions of each input, `[positions, H]` per input (f32).
    /// Inputs are right-padded and run `batch` at a time.
    pub fn features(&self, inputs: &[RewardInput], batch: usize) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(batch.max(1)) {
            let hidden = self.hidden_states(chunk)?;
            for (row, input) in chunk.iter().enumerate() {
                let index = positions_tensor(&input.reward_positions, hidden.device())?;
                out.push(
                    hidden
                        .get(row)?
                        .index_select(&index, 0)?
                        .to_dtype(DType::F32)?,
                );
            }
        }
        Ok(out)
    }

    fn hidden_states(&self, chunk: &[RewardInput]) -> Result<Tensor> {
        let longest = chunk.iter().map(|i| i.input_ids.len()).max().unwrap_or(0);
        let pad = self.backbone.tokenizer.pad_token_id.unwrap_or(0);
        let mut flat = Vec::with_capacity(chunk.len() * longest);
        for input in chunk {
            flat.extend_from_slice(&input.input_ids);
            flat.extend(std::iter::repeat_n(pad, longest - input.input_ids.len()));
        }
        let device = self.backbone.model.device();
        let ids = Tensor::from_vec(flat, (chunk.len(), longest), device)?;
        Ok(self.backbone.model.hidden_states(&ids, Pass::Inference)?)
    }

    /// Step rewards (sigmoid of the head) of every response to `problem`, `batch` sequences per pass.
    pub fn score(
        &self,
        problem: &str,
        responses: &[String],
        batch: usize,
    ) -> Result<Vec<Vec<f64>>> {
        let inputs = responses
            .iter()
            .map(|r| self.input(problem, r))
            .collect::<Result<Vec<_>>>()?;
        self.features(&inputs, batch)?
            .iter()
            .map(|f| probabilities(&self.head, f))
            .collect()
    }
}

/// A tensor shape as people write it: `[1, 64]`.
pub fn shape(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// `sigmoid(head(features))` as f64 values.
pub fn probabilities(head: &ValueHead, features: &Tensor) -> Result<Vec<f64>> {
    let logits = head.logits(features)?.to_vec1::<f32>()?;
    Ok(logits
        .iter()
        .map(|&z| 1.0 / (1.0 + (-(z as f64)).exp()))
        .collect())
}

fn positions_tensor(positions: &[usize], device: &Device) -> Result<Tensor> {
    let p: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
    Ok(Tensor::new(p.as_slice(), device)?)
}
