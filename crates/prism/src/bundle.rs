//! Bundle intake: a zip or a folder holding `architecture.py`, `training.py` and an optional
//! `prism.yaml`, read under PRISM's limits, then resolved into the two-script contract
//! (evaluator/components.py).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pyast::{PyFile, PySyntaxError, top_level_functions};

/// PRISM's intake limits (config.py `max_code_bytes`, source_similarity.py snapshot limits).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Limits {
    /// Largest zip accepted, in bytes.
    pub max_archive_bytes: u64,
    /// Most files in the bundle.
    pub max_files: usize,
    /// Most bytes of text over all files.
    pub max_text_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 7_500_000,
            max_files: 200,
            max_text_bytes: 2_000_000,
        }
    }
}

/// File suffixes a bundle may hold.
pub const ALLOWED_SUFFIXES: &[&str] = &["py", "toml", "yaml", "yml", "json", "txt", "md"];

/// Why a bundle was refused at intake or by the two-script contract.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading the bundle failed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The zip is malformed.
    #[error("{path}: not a valid zip archive: {detail}")]
    BadZip {
        /// The archive.
        path: String,
        /// What the zip reader said.
        detail: String,
    },
    /// A size or count limit was exceeded.
    #[error("bundle exceeds a limit: {0} (make the bundle smaller)")]
    TooLarge(String),
    /// A path escapes the bundle, is absolute, or is a link.
    #[error("unsafe entry `{entry}`: {why}")]
    UnsafeEntry {
        /// The offending entry name.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A file with a suffix outside [`ALLOWED_SUFFIXES`].
    #[error("unsupported file `{0}`: only .py .toml .yaml .yml .json .txt .md may be bundled")]
    UnsupportedFile(String),
    /// A file that is not UTF-8 text.
    #[error("`{0}` is not UTF-8 text")]
    NotUtf8(String),
    /// The two-script contract is not met.
    #[error("contract: {0}")]
    Contract(String),
    /// A Python file does not parse.
    #[error(transparent)]
    Syntax(#[from] PySyntaxError),
}

impl assay_errors::Diagnose for BundleError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            // The path is the operator's; what is in it is the miner's.
            Self::Io { source, .. } => assay_errors::io_blame(source),
            _ => assay_errors::Blame::Miner,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::TooLarge(_) => Some("limits: 7,500,000-byte archive, 200 files, 2,000,000 bytes of text".into()),
            Self::UnsafeEntry { .. } => Some("bundle entries must be plain files at relative paths inside the bundle".into()),
            Self::Contract(_) => Some("a bundle needs two distinct scripts: one with a top-level build_model(ctx), one with a top-level train(ctx)".into()),
            _ => None,
        }
    }
}

/// The bundle's files: path (forward slashes, relative) to text, sorted by path.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bundle {
    /// Path to content.
    pub files: BTreeMap<String, String>,
}

impl Bundle {
    /// Reads a `.zip` file or a folder.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self, BundleError> {
        if path.is_dir() {
            Self::from_dir(path, limits)
        } else {
            let bytes = read_capped(path, limits.max_archive_bytes)?;
            Self::from_zip_bytes(&path.display().to_string(), &bytes, limits)
        }
    }

    /// Reads a zip held in memory; `name` is only used in messages.
    pub fn from_zip_bytes(name: &str, bytes: &[u8], limits: &Limits) -> Result<Self, BundleError> {
        if bytes.len() as u64 > limits.max_archive_bytes {
            return Err(BundleError::TooLarge(format!(
                "archive is {} bytes, limit {}",
                bytes.len(),
                limits.max_archive_bytes
            )));
        }
        let bad = |e: zip::result::ZipError| BundleError::BadZip {
            path: name.to_string(),
            detail: e.to_string(),
        };
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(bad)?;
        let mut bundle = Collecting::new(limits);
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(bad)?;
            if entry.is_dir() {
                continue;
            }
            let raw_name = entry.name().map_err(bad)?.to_string();
            if entry.is_symlink() || entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
                return Err(unsafe_entry(&raw_name, "symbolic links are not allowed"));
            }
            let path = safe_relative_path(&raw_name)?;
            let budget = bundle.remaining_bytes();
            let mut data = Vec::new();
            (&mut entry)
                .take(budget + 1)
                .read_to_end(&mut data)
                .map_err(|source| BundleError::Io {
                    path: raw_name.clone().into(),
                    source,
                })?;
            bundle.add(path, data)?;
        }
        bundle.finish()
    }

    /// Reads a folder recursively; links anywhere inside are refused.
    pub fn from_dir(root: &Path, limits: &Limits) -> Result<Self, BundleError> {
        let mut bundle = Collecting::new(limits);
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let io = |source| BundleError::Io {
                path: dir.clone(),
                source,
            };
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(io)?
                .collect::<Result<_, _>>()
                .map_err(io)?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let full = entry.path();
                let rel = full
                    .strip_prefix(root)
                    .unwrap_or(&full)
                    .to_string_lossy()
                    .replace('\\', "/");
                let kind = entry.file_type().map_err(|source| BundleError::Io {
                    path: full.clone(),
                    source,
                })?;
                if kind.is_symlink() {
                    return Err(unsafe_entry(&rel, "symbolic links are not allowed"));
                }
                if kind.is_dir() {
                    if !is_ignorable_dir(&rel) {
                        stack.push(full);
                    }
                    continue;
                }
                let path = safe_relative_path(&rel)?;
                let data = read_capped(&full, bundle.remaining_bytes() + 1)?;
                bundle.add(path, data)?;
            }
        }
        bundle.finish()
    }

    /// The Python files, each parsed.
    pub fn parse_python(&self) -> Result<Vec<PyFile>, BundleError> {
        self.python_paths()
            .map(|path| PyFile::parse(path, &self.files[path]).map_err(BundleError::from))
            .collect()
    }

    /// Paths of the `.py` files.
    pub fn python_paths(&self) -> impl Iterator<Item = &String> {
        self.files.keys().filter(|p| p.ends_with(".py"))
    }

    /// Stems of the bundle's own modules (allowed as local imports), `__init__` excluded.
    pub fn local_import_roots(&self) -> BTreeSet<String> {
        self.python_paths()
            .filter_map(|p| {
                Path::new(p)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
            })
            .filter(|stem| stem != "__init__")
            .collect()
    }
}

fn is_ignorable_dir(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == "__pycache__" || name.starts_with('.')
}

fn unsafe_entry(entry: &str, why: &'static str) -> BundleError {
    BundleError::UnsafeEntry {
        entry: entry.to_string(),
        why,
    }
}

/// Normalises an entry name; absolute paths, drive letters and `..` are refused.
pub fn safe_relative_path(raw: &str) -> Result<String, BundleError> {
    let unified = raw.replace('\\', "/");
    if unified.starts_with('/') || unified.as_bytes().get(1) == Some(&b':') {
        return Err(unsafe_entry(raw, "absolute paths are not allowed"));
    }
    let parts: Vec<&str> = unified
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return Err(unsafe_entry(raw, "empty path"));
    }
    if parts.contains(&"..") {
        return Err(unsafe_entry(raw, "`..` would escape the bundle (zip-slip)"));
    }
    if unified.contains('\0') {
        return Err(unsafe_entry(raw, "NUL in path"));
    }
    Ok(parts.join("/"))
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, BundleError> {
    let io = |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut data = Vec::new();
    file.take(cap + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > cap {
        return Err(BundleError::TooLarge(format!(
            "{} is larger than {cap} bytes",
            path.display()
        )));
    }
    Ok(data)
}

struct Collecting<'a> {
    limits: &'a Limits,
    files: BTreeMap<String, String>,
    total: u64,
}

impl<'a> Collecting<'a> {
    fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            files: BTreeMap::new(),
            total: 0,
        }
    }

    fn remaining_bytes(&self) -> u64 {
        self.limits.max_text_bytes.saturating_sub(self.total)
    }

    fn add(&mut self, path: String, data: Vec<u8>) -> Result<(), BundleError> {
        let suffix = path.rsplit_once('.').map(|(_, s)| s.to_ascii_lowercase());
        if !suffix.is_some_and(|s| ALLOWED_SUFFIXES.contains(&s.as_str())) {
            return Err(BundleError::UnsupportedFile(path));
        }
        if self.files.len() >= self.limits.max_files {
            return Err(BundleError::TooLarge(format!(
                "more than {} files",
                self.limits.max_files
            )));
        }
        self.total += data.len() as u64;
        if self.total > self.limits.max_text_bytes {
            return Err(BundleError::TooLarge(format!(
                "more than {} bytes of text",
                self.limits.max_text_bytes
            )));
        }
        let text = String::from_utf8(data).map_err(|_| BundleError::NotUtf8(path.clone()))?;
        self.files.insert(path, text);
        Ok(())
    }

    fn finish(self) -> Result<Bundle, BundleError> {
        if self.files.is_empty() {
            return Err(BundleError::Contract("the bundle holds no files".into()));
        }
        Ok(Bundle { files: self.files })
    }
}

/// The resolved two-script contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contract {
    /// `full`, `architecture_only` or `training_for_arch`.
    pub kind: String,
    /// Optional `architecture_id` from prism.yaml.
    pub architecture_id: Option<String>,
    /// Path of the architecture script.
    pub architecture_entrypoint: String,
    /// Path of the training script.
    pub training_entrypoint: String,
    /// Factory symbol (default `build_model`).
    pub build_model_symbol: String,
    /// Training symbol (default `train`).
    pub train_symbol: String,
    /// Files of the architecture component (entrypoint plus declared `files`).
    pub architecture_files: Vec<String>,
    /// Files of the training component.
    pub training_files: Vec<String>,
    /// Declared tokenizer, if any (informational: scoring is byte-level here).
    pub tokenizer: Option<String>,
    /// Moderated `ARCHITECTURE_NAME`, if declared.
    pub architecture_name: Option<String>,
}

const PROJECT_KINDS: &[&str] = &["full", "architecture_only", "training_for_arch"];

/// Resolves the contract as PRISM does: prism.yaml when present (declared entrypoints must
/// resolve, `path::symbol`, `factory`/`function`/`entry` overrides, basename fallback), defaults
/// otherwise; two distinct scripts, each defining its symbol at top level.
pub fn resolve_contract(bundle: &Bundle) -> Result<Contract, BundleError> {
    let manifest_path = bundle
        .files
        .keys()
        .find(|p| matches!(basename(p), "prism.yaml" | "prism.yml"))
        .cloned();
    let manifest = match &manifest_path {
        Some(path) => parse_manifest(path, &bundle.files[path])?,
        None => serde_yaml::Mapping::new(),
    };
    let root = manifest_path
        .as_deref()
        .and_then(|p| p.rsplit_once('/').map(|(dir, _)| dir.to_string()))
        .unwrap_or_default();
    let kind = yaml_str(&manifest, "kind").unwrap_or_else(|| "full".into());
    if !PROJECT_KINDS.contains(&kind.as_str()) {
        return Err(contract(format!(
            "prism.yaml kind `{kind}` is not one of {PROJECT_KINDS:?}"
        )));
    }
    let explicit = manifest_path.is_some();
    let arch = Role::from_manifest(&manifest, "architecture", "architecture.py", "build_model")?;
    let train = Role::from_manifest(&manifest, "training", "training.py", "train")?;
    let arch_entry = resolve_role(bundle, &arch, &root, explicit)?;
    let train_entry = resolve_role(bundle, &train, &root, explicit)?;
    if arch_entry == train_entry {
        return Err(contract(
            "architecture and training must be two distinct scripts".into(),
        ));
    }
    require_symbol(bundle, &arch_entry, &arch.symbol, "architecture")?;
    require_symbol(bundle, &train_entry, &train.symbol, "training")?;
    Ok(Contract {
        kind,
        architecture_id: yaml_str(&manifest, "architecture_id"),
        architecture_files: component_files(bundle, &arch, &root, &arch_entry)?,
        training_files: component_files(bundle, &train, &root, &train_entry)?,
        architecture_name: crate::fingerprint::architecture_name(&bundle.files[&arch_entry]),
        architecture_entrypoint: arch_entry,
        training_entrypoint: train_entry,
        build_model_symbol: arch.symbol,
        train_symbol: train.symbol,
        tokenizer: yaml_str(&manifest, "tokenizer"),
    })
}

fn contract(message: String) -> BundleError {
    BundleError::Contract(message)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parse_manifest(path: &str, text: &str) -> Result<serde_yaml::Mapping, BundleError> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| contract(format!("{path}: not valid YAML: {e}")))?;
    match value {
        serde_yaml::Value::Null => Ok(serde_yaml::Mapping::new()),
        serde_yaml::Value::Mapping(map) => Ok(map),
        _ => Err(contract(format!("{path} must contain a mapping"))),
    }
}

fn yaml_str(map: &serde_yaml::Mapping, key: &str) -> Option<String> {
    match map.get(key)? {
        serde_yaml::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Role {
    name: &'static str,
    entrypoint: String,
    symbol: String,
    files: Vec<String>,
}

impl Role {
    fn from_manifest(
        manifest: &serde_yaml::Mapping,
        name: &'static str,
        default_entry: &str,
        default_symbol: &str,
    ) -> Result<Self, BundleError> {
        let section = match manifest.get(name) {
            None | Some(serde_yaml::Value::Null) => serde_yaml::Mapping::new(),
            Some(serde_yaml::Value::Mapping(m)) => m.clone(),
            Some(_) => return Err(contract(format!("prism.yaml `{name}` must be a mapping"))),
        };
        let mut entrypoint =
            yaml_str(&section, "entrypoint").unwrap_or_else(|| default_entry.into());
        let mut symbol = default_symbol.to_string();
        if let Some((path, declared)) = entrypoint.clone().split_once("::") {
            entrypoint = path.to_string();
            if !declared.is_empty() {
                symbol = declared.to_string();
            }
        }
        if let Some(declared) = ["factory", "function", "entry"]
            .iter()
            .find_map(|k| yaml_str(&section, k))
        {
            symbol = declared;
        }
        let files = match section.get("files") {
            None | Some(serde_yaml::Value::Null) => Vec::new(),
            Some(serde_yaml::Value::String(s)) => vec![s.clone()],
            Some(serde_yaml::Value::Sequence(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        contract(format!("prism.yaml `{name}.files` must list strings"))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(contract(format!(
                    "prism.yaml `{name}.files` must be a list"
                )));
            }
        };
        Ok(Self {
            name,
            entrypoint,
            symbol,
            files,
        })
    }
}

fn find_path(bundle: &Bundle, path: &str, root: &str) -> Option<String> {
    let trimmed = path.trim_start_matches('/');
    let mut candidates = vec![trimmed.to_string()];
    if !root.is_empty() {
        candidates.push(format!("{root}/{trimmed}"));
    }
    let normalized: Vec<String> = candidates
        .iter()
        .filter_map(|c| safe_relative_path(c).ok())
        .collect();
    if let Some(hit) = normalized.iter().find(|c| bundle.files.contains_key(*c)) {
        return Some(hit.clone());
    }
    normalized.iter().find_map(|c| {
        let base = basename(c);
        bundle.files.keys().find(|p| basename(p) == base).cloned()
    })
}

fn resolve_role(
    bundle: &Bundle,
    role: &Role,
    root: &str,
    explicit: bool,
) -> Result<String, BundleError> {
    find_path(bundle, &role.entrypoint, root).ok_or_else(|| {
        if explicit {
            contract(format!(
                "declared {} entrypoint `{}` not found (declared entrypoints are honoured with no fallback)",
                role.name, role.entrypoint
            ))
        } else {
            contract(format!("missing {} ({} script is required)", role.entrypoint, role.name))
        }
    })
}

fn require_symbol(
    bundle: &Bundle,
    path: &str,
    symbol: &str,
    role: &str,
) -> Result<(), BundleError> {
    let text = &bundle.files[path];
    if text.trim().is_empty() {
        return Err(contract(format!("{role} script {path} is empty")));
    }
    let parsed = PyFile::parse(path, text)?;
    if !top_level_functions(&parsed.module)
        .iter()
        .any(|f| f == symbol)
    {
        return Err(contract(format!(
            "{role} script {path} is missing the top-level function `{symbol}`"
        )));
    }
    Ok(())
}

fn component_files(
    bundle: &Bundle,
    role: &Role,
    root: &str,
    entry: &str,
) -> Result<Vec<String>, BundleError> {
    let mut paths = BTreeSet::from([entry.to_string()]);
    for file in &role.files {
        let found = find_path(bundle, file, root).ok_or_else(|| {
            contract(format!(
                "{} file `{file}` declared in prism.yaml not found",
                role.name
            ))
        })?;
        paths.insert(found);
    }
    Ok(paths.into_iter().collect())
}
