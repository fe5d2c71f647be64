//! Where a model comes from: a Hugging Face folder, the local HF cache (offline), a GGUF file, or the
//! embedded default. [`load`] turns any of them into a ready [`LoadedModel`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::assets;
use crate::error::{EngineError, Result};
use crate::formats::config::ModelConfig;
use crate::formats::gguf::GgufFile;
use crate::formats::safetensors::WeightMap;
use crate::models::llama::Model;
use crate::text::tokenizer::TextTokenizer;

/// A model location, resolved to files on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A folder with `config.json`, `*.safetensors` and `tokenizer.json`.
    HfFolder(PathBuf),
    /// A single GGUF file carrying weights, config and tokenizer.
    Gguf(PathBuf),
}

impl ModelSource {
    /// Resolves what a user typed after `--model`:
    /// - nothing: the embedded default (SmolLM2-135M-Instruct, fetched and verified on first use);
    /// - a `.gguf` file; a model folder;
    /// - `org/name` or `org/name@revision`: a snapshot in the local Hugging Face cache.
    pub fn resolve(spec: Option<&str>) -> Result<Self> {
        let Some(spec) = spec else {
            return Ok(Self::Gguf(assets::default_model_gguf()?));
        };
        let path = Path::new(spec);
        if path.is_file() {
            return Ok(Self::Gguf(path.to_path_buf()));
        }
        if path.is_dir() {
            return Ok(Self::HfFolder(path.to_path_buf()));
        }
        if let Some((repo, revision)) = parse_repo_id(spec) {
            return hf_cache_snapshot(&hf_hub_cache_dir(), repo, revision).map(Self::HfFolder);
        }
        Err(EngineError::NotFound(format!(
            "`{spec}` is neither a file, a folder, nor an `org/name[@revision]` repo id"
        )))
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HfFolder(dir) => write!(f, "{}", dir.display()),
            Self::Gguf(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `org/name` or `org/name@rev`, with no path-like parts.
pub(crate) fn parse_repo_id(spec: &str) -> Option<(&str, &str)> {
    let (repo, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let (org, name) = repo.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
    (ok(org) && ok(name) && ok(revision)).then_some((repo, revision))
}

/// The hub cache folder, as huggingface_hub computes it: `HF_HUB_CACHE`, else `HF_HOME/hub`,
/// else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn hf_hub_cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return p;
    }
    if let Some(home) = var("HF_HOME") {
        return home.join("hub");
    }
    let cache =
        var("XDG_CACHE_HOME").unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"));
    cache.join("huggingface").join("hub")
}

/// The snapshot folder of `repo` at `revision` (a branch or tag under `refs/`, or a commit hash).
pub fn hf_cache_snapshot(cache: &Path, repo: &str, revision: &str) -> Result<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !repo_dir.is_dir() {
        return Err(EngineError::NotFound(format!(
            "{repo} is not in the Hugging Face cache at {} (download it there first, or pass a folder)",
            cache.display()
        )));
    }
    let ref_file = repo_dir.join("refs").join(revision);
    let commit = if ref_file.is_file() {
        std::fs::read_to_string(&ref_file)
            .map_err(|e| EngineError::read(&ref_file, e))?
            .trim()
            .to_string()
    } else {
        revision.to_string()
    };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(EngineError::NotFound(format!(
            "{repo}@{revision}: no snapshot {} in the cache",
            snapshot.display()
        )));
    }
    Ok(snapshot)
}

/// A model ready to run, with its tokenizer.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network.
    pub model: Model,
    /// Its tokenizer, special tokens and chat template.
    pub tokenizer: TextTokenizer,
    /// Where it came from.
    pub source: ModelSource,
}

/// How to place the weights.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Device for the weights.
    pub device: Device,
    /// Weight dtype (f32 on the CPU; bf16 is the usual choice on a GPU).
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
        }
    }
}

/// Loads a model and its tokenizer from `source`.
///
/// ```
/// use assay_engine::{LoadOptions, ModelSource, load};
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama");
/// let lm = load(&ModelSource::HfFolder(dir), &LoadOptions::default())?;
/// assert_eq!(lm.model.config().num_hidden_layers, 2);
/// let ids = lm.tokenizer.encode("The quick brown fox", false)?;
/// assert!(!ids.is_empty());
/// # Ok::<(), assay_engine::EngineError>(())
/// ```
///
/// With nothing named, [`ModelSource::resolve`] gives the embedded default (fetched on first use):
///
/// ```no_run
/// use assay_engine::{ModelSource, Placement, load};
/// let lm = load(&ModelSource::resolve(None)?, &Placement::cpu().load_options()?)?;
/// # Ok::<(), assay_engine::EngineError>(())
/// ```
pub fn load(source: &ModelSource, options: &LoadOptions) -> Result<LoadedModel> {
    let (config, weights, tokenizer) = match source {
        ModelSource::HfFolder(dir) => load_hf_folder(dir, options)?,
        ModelSource::Gguf(path) => load_gguf(path, options)?,
    };
    check_vocab(&config, &tokenizer)?;
    Ok(LoadedModel {
        model: Model::new(config, &weights)?,
        tokenizer,
        source: source.clone(),
    })
}

fn check_vocab(config: &ModelConfig, tokenizer: &TextTokenizer) -> Result<()> {
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(EngineError::Tokenizer(format!(
            "the tokenizer has {} tokens but the model's embedding only {} rows: they do not belong together",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    Ok(())
}

/// Reads `config.json` of a folder.
pub fn read_hf_config(dir: &Path) -> Result<ModelConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::read(&path, e))?;
    ModelConfig::from_hf_json(&text).map_err(|e| EngineError::bad_file(&path, e.to_string()))
}

fn load_hf_folder(dir: &Path, o: &LoadOptions) -> Result<(ModelConfig, WeightMap, TextTokenizer)> {
    let config = read_hf_config(dir)?;
    let files = safetensors_files(dir)?;
    let weights = WeightMap::from_safetensors(&files, o.dtype, &o.device)?;
    let tokenizer = TextTokenizer::from_hf_folder(dir, &config.eos_token_ids)?;
    Ok((config, weights, tokenizer))
}

/// The weight files of a folder: the shards named by `model.safetensors.index.json`, else
/// `model.safetensors`, else every `*.safetensors`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| EngineError::read(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EngineError::bad_file(&index, format!("not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| EngineError::bad_file(&index, "has no `weight_map` object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        return files
            .into_iter()
            .map(|f| {
                if f.contains(['/', '\\']) || f == ".." {
                    return Err(EngineError::bad_file(
                        &index,
                        format!("shard name `{f}` is not a plain file name"),
                    ));
                }
                let p = dir.join(&f);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(EngineError::bad_file(
                        &index,
                        format!("names shard `{f}`, which is missing"),
                    ))
                }
            })
            .collect();
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    all.sort();
    if all.is_empty() {
        return Err(EngineError::NotFound(format!(
            "no *.safetensors weights in {}",
            dir.display()
        )));
    }
    Ok(all)
}

fn load_gguf(path: &Path, o: &LoadOptions) -> Result<(ModelConfig, WeightMap, TextTokenizer)> {
    let file = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let weights = WeightMap::from_gguf(&file, &config, o.dtype, &o.device)?;
    let tokenizer = TextTokenizer::from_gguf(&file)?;
    Ok((config, weights, tokenizer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_from_paths() {
        assert_eq!(
            parse_repo_id("Qwen/Qwen2.5-0.5B"),
            Some(("Qwen/Qwen2.5-0.5B", "main"))
        );
        assert_eq!(parse_repo_id("a/b@v1.0"), Some(("a/b", "v1.0")));
        assert_eq!(parse_repo_id("a/b/c"), None);
        assert_eq!(parse_repo_id("../x"), None);
        assert_eq!(parse_repo_id("noslash"), None);
    }

    #[test]
    fn resolves_refs_in_the_hf_cache() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--tiny");
        let snap = repo.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123\n").unwrap();
        assert_eq!(
            hf_cache_snapshot(cache.path(), "org/tiny", "main").unwrap(),
            snap
        );
        assert_eq!(
            hf_cache_snapshot(cache.path(), "org/tiny", "abc123").unwrap(),
            snap
        );
        let err = hf_cache_snapshot(cache.path(), "org/tiny", "v2").unwrap_err();
        assert!(err.to_string().contains("no snapshot"), "{err}");
        let err = hf_cache_snapshot(cache.path(), "org/other", "main").unwrap_err();
        assert!(
            err.to_string().contains("not in the Hugging Face cache"),
            "{err}"
        );
    }
}
