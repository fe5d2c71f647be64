//! The [`ModelLoader`] that runs submitted folders on `assay-engine`.

use std::path::Path;

use assay_engine::gguf::GgufFile;
use assay_engine::{ModelSource, Placement, TextTokenizer};
use assay_eval::engine_lm::EngineLm;
use assay_eval::runner::LanguageModel;

use crate::competition::{Constraints, TokenizerRule};
use crate::round::{LoadError, ModelLoader};

/// Loads Hugging Face model folders with the engine, on the placement's device and dtype
/// (default: the CPU in f32).
#[derive(Debug, Clone, Default)]
pub struct EngineLoader {
    /// Device and dtype every model is loaded with.
    pub placement: Placement,
}

impl EngineLoader {
    /// A loader that puts every model on `placement`.
    pub fn new(placement: Placement) -> Self {
        Self { placement }
    }
}

/// Reads the competition's fixed tokenizer: a model folder, a GGUF file, or `org/name` in the
/// local Hugging Face cache.
fn fixed_tokenizer(spec: &str, eos_ids: &[u32]) -> Result<TextTokenizer, LoadError> {
    let source = ModelSource::resolve(Some(spec)).map_err(|e| {
        LoadError::Tokenizer(format!(
            "the competition's tokenizer `{spec}` is not available locally: {e}"
        ))
    })?;
    let tokenizer = match source {
        ModelSource::HfFolder(dir) => TextTokenizer::from_hf_folder(&dir, eos_ids),
        ModelSource::Gguf(path) => {
            GgufFile::open(&path).and_then(|file| TextTokenizer::from_gguf(&file))
        }
    };
    tokenizer.map_err(|e| {
        LoadError::Tokenizer(format!(
            "cannot read the competition's tokenizer `{spec}`: {e}"
        ))
    })
}

impl ModelLoader for EngineLoader {
    fn load(
        &self,
        dir: &Path,
        constraints: &Constraints,
    ) -> Result<Box<dyn LanguageModel>, LoadError> {
        let options = self.placement.load_options().map_err(|e| {
            LoadError::Device(format!("cannot open the device {}: {e}", self.placement))
        })?;
        let source = ModelSource::HfFolder(dir.to_path_buf());
        let mut loaded = assay_engine::load(&source, &options).map_err(LoadError::Engine)?;
        if let TokenizerRule::Fixed { model } = &constraints.tokenizer {
            let tokenizer = fixed_tokenizer(model, &loaded.tokenizer.eos_token_ids)?;
            let rows = loaded.model.config().vocab_size;
            if tokenizer.vocab_size() > rows {
                return Err(LoadError::Unfit(format!(
                    "the competition's tokenizer has {} tokens but the model's embedding only {rows} rows",
                    tokenizer.vocab_size()
                )));
            }
            loaded.tokenizer = tokenizer;
        }
        Ok(Box::new(
            EngineLm::new(loaded).with_max_length(constraints.sequence_length),
        ))
    }

    fn device(&self) -> Option<assay_engine::candle_core::Device> {
        self.placement
            .load_options()
            .ok()
            .map(|options| options.device)
    }
}
