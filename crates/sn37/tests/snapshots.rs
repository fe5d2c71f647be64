//! Text people read, locked by insta snapshots: a round's leaderboard and weights file (the demo
//! submissions' real checks, with each model's loss set per folder so that no model runs) and
//! typical errors with their blame and hint. Review a change with `cargo insta review` (or
//! `INSTA_UPDATE=always` and `git diff`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_errors::{Diagnose, chain};
use assay_eval::runner::{LanguageModel, ModelError};
use assay_eval::task_def::GenParams;
use assay_sn37::competition::Constraints;
use assay_sn37::round::{LoadError, ModelLoader};
use assay_sn37::run::{RoundSettings, RunError, files, run_with_loader};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sn37")
}

/// A model whose every loss is the same number (and whose generations are empty).
struct ConstantLm(f64);

impl LanguageModel for ConstantLm {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        Ok(vec![(-self.0, false); requests.len()])
    }
    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        Ok(vec![String::new(); requests.len()])
    }
    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        Ok(vec![self.0; requests.len()])
    }
}

/// Gives each folder its loss; folders absent from the table fail to load.
struct TableLoader(BTreeMap<String, f64>);

impl ModelLoader for TableLoader {
    fn load(&self, dir: &Path, _: &Constraints) -> Result<Box<dyn LanguageModel>, LoadError> {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match self.0.get(&name) {
            Some(&loss) => Ok(Box::new(ConstantLm(loss))),
            None => Err(format!("no weights found in {name}").into()),
        }
    }
}

fn settings(out: &Path) -> RoundSettings {
    RoundSettings {
        competition: "TINY_DEMO".into(),
        models: examples_dir().join("models"),
        block: 2000,
        block_hash: None,
        data: examples_dir().join("data"),
        state: None,
        out: out.to_path_buf(),
        placement: Default::default(),
        policy: Default::default(),
    }
}

#[test]
fn round_leaderboard_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let loader = TableLoader(
        [("alice", 1.0), ("bob", 1.2), ("carol", 1.0), ("erin", 0.9)]
            .map(|(k, v)| (k.to_string(), v))
            .into_iter()
            .collect(),
    );
    let output = run_with_loader(&settings(dir.path()), &loader, |_| {}).expect("round runs");
    let written = std::fs::read_to_string(dir.path().join(files::LEADERBOARD)).unwrap();
    assert_eq!(written, output.leaderboard);
    assert!(
        !written.contains("Some(") && !written.contains("None"),
        "{written}"
    );
    // The reasons name each submission's folder: the examples folder is redacted.
    let examples = examples_dir().display().to_string();
    insta::assert_snapshot!("leaderboard", written.replace(&examples, "EXAMPLES"));
    let weights = std::fs::read_to_string(dir.path().join(files::WEIGHTS)).unwrap();
    insta::assert_snapshot!("weights", weights);
}

fn described(e: &RunError, tmp: &Path) -> String {
    format!(
        "{}\nblame: {}\nhint: {}",
        chain(e),
        e.blame(),
        e.hint().unwrap_or_else(|| "-".into())
    )
    .replace(&tmp.display().to_string(), "TMP")
    .replace(&examples_dir().display().to_string(), "EXAMPLES")
}

#[test]
fn error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let loader = TableLoader(BTreeMap::new());
    let fail = |s: &RoundSettings| run_with_loader(s, &loader, |_| {}).expect_err("bad input");
    let mut texts = Vec::new();
    // An unknown competition.
    let unknown = RoundSettings {
        competition: "NO_SUCH_COMPETITION".into(),
        ..settings(tmp)
    };
    texts.push(described(&fail(&unknown), tmp));
    // A competition file that is not TOML.
    std::fs::write(tmp.join("competition.toml"), "id = [\n").unwrap();
    let bad_toml = RoundSettings {
        competition: tmp.join("competition.toml").display().to_string(),
        ..settings(tmp)
    };
    texts.push(described(&fail(&bad_toml), tmp));
    // A models folder that does not exist.
    let no_models = RoundSettings {
        models: tmp.join("models"),
        ..settings(tmp)
    };
    texts.push(described(&fail(&no_models), tmp));
    // A data folder that does not exist.
    let no_data = RoundSettings {
        data: tmp.join("data"),
        ..settings(tmp)
    };
    texts.push(described(&fail(&no_data), tmp));
    // A state file that is not JSON.
    std::fs::write(tmp.join("state.json"), "{\"competitions\": \n").unwrap();
    let bad_state = RoundSettings {
        state: Some(tmp.join("state.json")),
        ..settings(&tmp.join("out"))
    };
    std::fs::create_dir(tmp.join("out")).unwrap();
    texts.push(described(&fail(&bad_state), tmp));
    insta::assert_snapshot!(texts.join("\n\n"));
}
