//! The workspace's dependency rules, checked on `cargo metadata`:
//! - library crates carry no front-end dependency (clap, anyhow, indicatif) among their normal,
//!   non-optional dependencies: those belong to the CLI crate (and to optional `cli`/`clap`
//!   features a front end turns on);
//! - dependencies point one way: front ends on pipelines, pipelines on eval/integrity, all on the
//!   engine; nothing below depends on anything above it.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's layer: a crate may depend only on crates of a lower layer.
fn layer(name: &str) -> Option<u32> {
    Some(match name {
        "assay-errors" => 0,
        "assay-tables" | "assay-plot" | "assay-weights" => 1,
        "assay-engine" => 2,
        "assay-eval" | "assay-integrity" => 3,
        "assay-datacomp" | "assay-sn37" | "assay-ftchallenge" | "assay-bon" | "assay-prism" => 4,
        "assay-store" => 5,
        "assay-pages" => 6,
        "assay-service" => 7,
        "assay-cli" | "assay-python" => 8,
        _ => return None,
    })
}

/// The front ends, which may use the front-end crates.
const FRONT_ENDS: &[&str] = &["assay-cli", "assay-python", "assay-service"];
const FRONT_END_DEPS: &[&str] = &["clap", "anyhow", "indicatif"];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// (package, [(dependency, kind, optional)]) for every workspace member.
fn packages() -> BTreeMap<String, Vec<(String, Option<String>, bool)>> {
    let meta = metadata();
    let mut out = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_string(),
                    d["kind"].as_str().map(str::to_string),
                    d["optional"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        out.insert(p["name"].as_str().unwrap_or_default().to_string(), deps);
    }
    out
}

#[test]
fn library_crates_have_no_front_end_dependencies() {
    let mut offences = Vec::new();
    for (name, deps) in packages() {
        if FRONT_ENDS.contains(&name.as_str()) || layer(&name).is_none() {
            continue;
        }
        for (dep, kind, optional) in deps {
            if kind.is_none() && !optional && FRONT_END_DEPS.contains(&dep.as_str()) {
                offences.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "front-end dependencies in library crates: {offences:?}"
    );
}

#[test]
fn dependencies_point_down_the_layers() {
    let packages = packages();
    let mut offences = Vec::new();
    let mut unknown = Vec::new();
    for (name, deps) in &packages {
        let Some(own) = layer(name) else {
            if name.starts_with("assay") && !name.contains("fuzz") {
                unknown.push(name.clone());
            }
            continue;
        };
        for (dep, kind, _) in deps {
            if kind.as_deref() == Some("dev") {
                continue;
            }
            if let Some(theirs) = layer(dep)
                && theirs >= own
                && dep != name
            {
                offences.push(format!("{name} (layer {own}) -> {dep} (layer {theirs})"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "crates without a layer in this test: {unknown:?}"
    );
    assert!(
        offences.is_empty(),
        "dependencies pointing up or sideways: {offences:?}"
    );
}
