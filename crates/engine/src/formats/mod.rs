//! The files a model is made of, read and written: the safetensors weight map
//! ([`safetensors::WeightMap`], Hugging Face names), GGUF files ([`gguf::GgufFile`]) and the model
//! configuration ([`config::ModelConfig`], from `config.json` or GGUF metadata).
//!
//! Files the engine writes (adapters, exported models) go through [`write_atomic`]: a reader never
//! sees a half-written file, and a crash leaves either the old file or the new one.

pub mod config;
pub mod gguf;
pub mod safetensors;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// Writes `path` atomically: `fill` writes a temporary file beside it, which is synced and then
/// renamed over `path` (and the folder synced, where the platform allows). Errors name `path`.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        fill(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::write(path, e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename durable; not every platform lets a folder be opened and synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.flush()
    })
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_name_the_target_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_bytes_atomic(&path, b"old").unwrap();
        write_bytes_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");

        let failed = write_atomic(&path, |_| Err(std::io::Error::other("disk gone")));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"new",
            "a failed write keeps the old file"
        );
        match failed {
            Err(EngineError::Write { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected a write error, got {other:?}"),
        }
        let missing = dir.path().join("no-such-folder").join("b.json");
        let err = write_bytes_atomic(&missing, b"x").unwrap_err();
        assert!(err.to_string().starts_with("cannot write "), "{err}");
    }
}
