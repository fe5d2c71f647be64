//! AST fingerprints for PRISM's near-duplicate penalty (evaluator/anti_cheat.py), component
//! hashes for the architecture lab, and the `ARCHITECTURE_NAME` moderation (components.py).

use std::collections::BTreeSet;

use ruff_python_ast::token::TokenKind;
use ruff_python_ast::{AnyNodeRef, Expr, Stmt};
use ruff_text_size::Ranged;
use sha2::{Digest, Sha256};

use crate::pyast::{PyFile, dotted_name, python_child_singletons, python_class_name};

/// Similarity at or above which a submission is a near-duplicate.
pub const NEAR_DUPLICATE_SIMILARITY: f64 = 0.96;
/// Severity PRISM adds for a near-duplicate; the multiplier becomes `1 - 0.8 = 0.2`.
pub const NEAR_DUPLICATE_SEVERITY: f64 = 0.8;

/// PRISM's fingerprint of one file: the `ast` class names of every node, `class_base:<bases>`
/// for each class, `function:<name>` for each sync `def`, and `call:<dotted name>` for each call.
pub fn file_fingerprint(file: &PyFile) -> BTreeSet<String> {
    let mut set = BTreeSet::from(["Module".to_string()]);
    for node in file.nodes() {
        if let Some(name) = python_class_name(node) {
            set.insert(name.to_string());
        }
        set.extend(
            python_child_singletons(node)
                .into_iter()
                .map(str::to_string),
        );
        match node {
            AnyNodeRef::StmtClassDef(class) => {
                let bases: Vec<String> = class.bases().iter().map(dotted_name).collect();
                set.insert(format!("class_base:{}", bases.join(",")));
            }
            AnyNodeRef::StmtFunctionDef(f) if !f.is_async => {
                set.insert(format!("function:{}", f.name));
            }
            AnyNodeRef::ExprCall(call) => {
                set.insert(format!("call:{}", dotted_name(&call.func)));
            }
            _ => {}
        }
    }
    set
}

/// Union of the fingerprints of several files (a bundle's Python files).
pub fn bundle_fingerprint<'a>(files: impl IntoIterator<Item = &'a PyFile>) -> BTreeSet<String> {
    files.into_iter().flat_map(file_fingerprint).collect()
}

/// Jaccard similarity of two fingerprints; 0 when either is empty (PRISM's `ast_similarity`).
pub fn jaccard(left: &BTreeSet<String>, right: &BTreeSet<String>) -> f64 {
    if left.is_empty() || right.is_empty() {
        return 0.0;
    }
    let shared = left.intersection(right).count();
    let union = left.union(right).count();
    shared as f64 / union as f64
}

/// Structural similarity at or above which a submission is a renamed copy (assay's check beside
/// PRISM's; renamed copies score 1.0, independent bundles far below).
pub const STRUCTURAL_NEAR_DUPLICATE_SIMILARITY: f64 = 0.9;
/// Tokens per window of the structural fingerprint.
pub const STRUCTURE_WINDOW: usize = 8;

/// Names the file defines: functions, classes, parameters, assigned names and attributes,
/// import aliases, exception names. These are the miner's own identifiers, which a copier
/// renames; everything else (torch's API, builtins, keywords) stays as written.
fn defined_names(file: &PyFile) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for node in file.nodes() {
        match node {
            AnyNodeRef::StmtFunctionDef(f) => {
                names.insert(f.name.to_string());
            }
            AnyNodeRef::StmtClassDef(c) => {
                names.insert(c.name.to_string());
            }
            AnyNodeRef::Parameter(p) => {
                names.insert(p.name.to_string());
            }
            AnyNodeRef::ExprName(n) if n.ctx == ruff_python_ast::ExprContext::Store => {
                names.insert(n.id.to_string());
            }
            AnyNodeRef::ExprAttribute(a) if a.ctx == ruff_python_ast::ExprContext::Store => {
                names.insert(a.attr.to_string());
            }
            AnyNodeRef::Alias(a) => {
                if let Some(asname) = &a.asname {
                    names.insert(asname.to_string());
                }
            }
            AnyNodeRef::ExceptHandlerExceptHandler(h) => {
                if let Some(name) = &h.name {
                    names.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
    // `self` is a convention, not a choice worth normalising away; neither are dunders.
    names.retain(|n| n != "self" && !n.starts_with("__"));
    names
}

fn fnv1a(parts: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The alpha-renamed token stream of one file: the miner's identifiers become `$0`, `$1`, ...
/// in order of first use, numbered afresh in each `def` (so reordering functions keeps them);
/// numbers become `N`, strings `S`; comments and layout-only newlines are dropped.
pub fn normalised_tokens(file: &PyFile) -> Vec<String> {
    let Ok(parsed) = ruff_python_parser::parse_module(&file.source) else {
        return Vec::new();
    };
    let defined = defined_names(file);
    let mut canonical: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for token in parsed.tokens().iter() {
        let kind = token.kind();
        let text = &file.source[token.range()];
        let normal = match kind {
            TokenKind::Comment | TokenKind::NonLogicalNewline => continue,
            TokenKind::Def => {
                canonical.clear();
                "def".to_string()
            }
            TokenKind::Name if defined.contains(text) => {
                let next = canonical.len();
                format!("${}", canonical.entry(text).or_insert(next))
            }
            TokenKind::Name => text.to_string(),
            TokenKind::Int | TokenKind::Float | TokenKind::Complex => "N".to_string(),
            TokenKind::String | TokenKind::FStringMiddle | TokenKind::TStringMiddle => {
                "S".to_string()
            }
            other => format!("{other:?}"),
        };
        out.push(normal);
    }
    out
}

/// assay's structural fingerprint of a bundle: hashes of every window of
/// [`STRUCTURE_WINDOW`] alpha-renamed tokens (see [`normalised_tokens`]), per file.
pub fn structural_fingerprint<'a>(files: impl IntoIterator<Item = &'a PyFile>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for file in files {
        let tokens = normalised_tokens(file);
        if tokens.len() < STRUCTURE_WINDOW {
            if !tokens.is_empty() {
                set.insert(format!("{:016x}", fnv1a(&tokens)));
            }
            continue;
        }
        for window in tokens.windows(STRUCTURE_WINDOW) {
            set.insert(format!("{:016x}", fnv1a(window)));
        }
    }
    set
}

/// The near-duplicate multiplier against earlier submissions, by PRISM's AST fingerprint
/// (Jaccard ≥ 0.96) or by assay's structural one (Jaccard ≥ 0.9, which renaming does not
/// lower): 0.2 for a near-duplicate, else 1. Returns the multiplier and the highest similarity
/// of each kind.
pub fn near_duplicate<'a>(
    fingerprint: &BTreeSet<String>,
    structure: &BTreeSet<String>,
    previous: impl IntoIterator<Item = crate::Prior<'a>>,
) -> (f64, f64, f64) {
    let (mut ast, mut shape) = (0.0f64, 0.0f64);
    for prior in previous {
        ast = ast.max(jaccard(fingerprint, prior.fingerprint));
        shape = shape.max(jaccard(structure, prior.structure));
    }
    let duplicate =
        ast >= NEAR_DUPLICATE_SIMILARITY || shape >= STRUCTURAL_NEAR_DUPLICATE_SIMILARITY;
    let severity = if duplicate {
        NEAR_DUPLICATE_SEVERITY
    } else {
        0.0
    };
    ((1.0 - severity).max(0.0), ast, shape)
}

/// Near-duplicate multiplier against earlier fingerprints: 0.2 when the closest reaches 0.96,
/// else 1. Returns the multiplier and the highest similarity seen.
pub fn near_duplicate_multiplier<'a>(
    current: &BTreeSet<String>,
    previous: impl IntoIterator<Item = &'a BTreeSet<String>>,
) -> (f64, f64) {
    let max = previous
        .into_iter()
        .map(|p| jaccard(current, p))
        .fold(0.0, f64::max);
    let severity = if max >= NEAR_DUPLICATE_SIMILARITY {
        NEAR_DUPLICATE_SEVERITY
    } else {
        0.0
    };
    ((1.0 - severity).max(0.0), max)
}

/// SHA-256 over a component's files (sorted by path, shared top folder removed), each as
/// `path\n<normalised content>`, joined with `\n---\n`. Python files are normalised to their
/// token stream without comments or layout, so reformatting or commenting keeps the hash.
/// (PRISM normalises with CPython's `ast.dump`; the hashes differ, the intent is the same.)
pub fn component_hash(files: &[(&str, &str)]) -> String {
    let root = shared_root(files);
    let mut sorted: Vec<_> = files.to_vec();
    sorted.sort_by_key(|(path, _)| *path);
    let parts: Vec<String> = sorted
        .iter()
        .map(|(path, content)| {
            let rel = match &root {
                Some(r) => path.strip_prefix(&format!("{r}/")).unwrap_or(path),
                None => path,
            };
            let body = if path.ends_with(".py") {
                normalised_python(content)
            } else {
                content.to_string()
            };
            format!("{rel}\n{body}")
        })
        .collect();
    // A digest formats itself as lower-case hex (this crate does not depend on the engine's `hex`).
    format!("{:x}", Sha256::digest(parts.join("\n---\n").as_bytes()))
}

fn shared_root(files: &[(&str, &str)]) -> Option<String> {
    let roots: BTreeSet<&str> = files
        .iter()
        .filter_map(|(p, _)| p.split_once('/').map(|(r, _)| r))
        .collect();
    let root = (roots.len() == 1).then(|| *roots.iter().next().unwrap_or(&""))?;
    files
        .iter()
        .all(|(p, _)| p.starts_with(&format!("{root}/")))
        .then(|| root.to_string())
}

fn normalised_python(source: &str) -> String {
    let Ok(parsed) = ruff_python_parser::parse_module(source) else {
        return source.to_string();
    };
    parsed
        .tokens()
        .iter()
        .filter(|t| !matches!(t.kind(), TokenKind::Comment | TokenKind::NonLogicalNewline))
        .map(|t| &source[t.range()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The moderated module-level `ARCHITECTURE_NAME = "..."` of an architecture script: whitespace
/// collapsed, only letters, digits, spaces and `-_.()[]/+&` kept, at most 48 characters.
pub fn architecture_name(source: &str) -> Option<String> {
    let parsed = ruff_python_parser::parse_module(source).ok()?;
    let raw = parsed.syntax().body.iter().find_map(|stmt| {
        let (targets, value): (Vec<&Expr>, Option<&Expr>) = match stmt {
            Stmt::Assign(a) => (a.targets.iter().collect(), Some(&*a.value)),
            Stmt::AnnAssign(a) => (vec![&*a.target], a.value.as_deref()),
            _ => return None,
        };
        let named = targets
            .iter()
            .any(|t| matches!(t, Expr::Name(n) if n.id.as_str() == "ARCHITECTURE_NAME"));
        if !named {
            return None;
        }
        Some(match value {
            Some(Expr::StringLiteral(s)) => Some(s.value.to_str().to_string()),
            _ => None,
        })
    })??;
    moderate_name(&raw)
}

/// PRISM's deterministic display-name moderation.
pub fn moderate_name(raw: &str) -> Option<String> {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let filtered: String = collapsed
        .chars()
        .filter(|c| *c == ' ' || "-_.()[]/+&".contains(*c) || c.is_ascii_alphanumeric())
        .collect();
    let normalized = filtered.split_whitespace().collect::<Vec<_>>().join(" ");
    let truncated: String = normalized.chars().take(48).collect();
    let trimmed = truncated.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}
