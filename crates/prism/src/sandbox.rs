//! PRISM's static sandbox (evaluator/sandbox.py), in Rust over the ruff AST.
//!
//! Differences from the reference, on purpose:
//! - every violation is reported (PRISM stops at the first), each with `file:line:col`;
//! - a few escapes PRISM lets through are rejected too, marked `extension` in the finding:
//!   a bare `__builtins__` name, `torch.from_file` / `Storage.from_file`, `torch.jit.load`,
//!   `torch.package`, `torch.serialization.load`, `load_library` (native code through
//!   `torch.ops` / `torch.classes`); frame, traceback, `__self__` and `__loader__` attributes;
//!   refused modules reached as attributes (`torch.os`, `torch.sys`); PRISM's dotted-name
//!   rules applied through import aliases too (`import torch as t; t.hub.load`); and
//!   rebinding attributes of the modules the runner itself relies on (`torch.Tensor.item = f`).

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::{AnyNodeRef, Expr, ExprCall, ExprContext};
use serde::{Deserialize, Serialize};

use crate::pyast::{PyFile, const_str, dotted_name, start_of};

/// Import roots every bundle may use.
pub const ALLOWED_IMPORT_ROOTS: &[&str] = &[
    "__future__",
    "collections",
    "dataclasses",
    "math",
    "prism_challenge",
    "torch",
    "typing",
];
const NETWORK_ROOTS: &[&str] = &[
    "aiohttp", "ftplib", "http", "httpx", "requests", "socket", "smtplib", "urllib",
];
const FILESYSTEM_ROOTS: &[&str] = &["glob", "pathlib", "shutil", "tempfile"];
const PROCESS_ROOTS: &[&str] = &[
    "multiprocessing",
    "os",
    "pty",
    "signal",
    "subprocess",
    "sys",
];
const FFI_ROOTS: &[&str] = &["_ctypes", "cffi", "ctypes"];
const DYNAMIC_IMPORT_ROOTS: &[&str] = &["importlib"];
const DESERIALIZATION_ROOTS: &[&str] = &[
    "_pickle",
    "cloudpickle",
    "cpickle",
    "dill",
    "joblib",
    "marshal",
    "pickle",
    "shelve",
];
const FORBIDDEN_CALLS: &[(&str, &str)] = &[
    ("__import__", "prism:no-dynamic-import"),
    ("compile", "prism:no-dynamic-code"),
    ("eval", "prism:no-dynamic-code"),
    ("exec", "prism:no-dynamic-code"),
    ("input", "prism:no-process"),
    ("open", "prism:no-filesystem"),
];
const INDIRECTION_CALLS: &[&str] = &["getattr", "setattr", "delattr"];
const NAMESPACE_CALLS: &[&str] = &["globals", "locals", "vars"];
const TRUSTED_PATH_ROOTS: &[&str] = &["artifacts_dir", "checkpoint_dir", "resume_checkpoint_dir"];
const BLOCKED_TORCH_PREFIXES: &[&str] = &["torch.hub", "torch.utils.cpp_extension"];
const DESERIALIZATION_CALL_ATTRS: &[&str] = &["Unpickler", "load", "loads"];
const FORBIDDEN_ATTRS: &[(&str, &str)] = &[
    ("__bases__", "prism:no-attribute-escape"),
    ("__base__", "prism:no-attribute-escape"),
    ("__builtins__", "prism:no-dynamic-code"),
    ("__class__", "prism:no-dynamic-code"),
    ("__closure__", "prism:no-attribute-escape"),
    ("__code__", "prism:no-attribute-escape"),
    ("__dict__", "prism:no-dynamic-code"),
    ("__getattribute__", "prism:no-attribute-escape"),
    ("__globals__", "prism:no-dynamic-code"),
    ("__import__", "prism:no-forbidden-import"),
    ("__mro__", "prism:no-dynamic-code"),
    ("__reduce__", "prism:no-attribute-escape"),
    ("__reduce_ex__", "prism:no-attribute-escape"),
    ("__subclasses__", "prism:no-dynamic-code"),
    ("__subclasshook__", "prism:no-attribute-escape"),
    ("fork", "prism:no-process"),
    ("popen", "prism:no-process"),
    ("remove", "prism:no-filesystem"),
    ("rmdir", "prism:no-filesystem"),
    ("spawn", "prism:no-process"),
    ("system", "prism:no-process"),
    ("unlink", "prism:no-filesystem"),
];
const EXTRA_BLOCKED_INDIRECTION: &[&str] = &[
    "FileStore",
    "TCPStore",
    "Unpickler",
    "_C",
    "_inductor",
    "benchmark",
    "bottleneck",
    "checkpoint",
    "collect_env",
    "datapipes",
    "elastic",
    "file_baton",
    "hipify",
    "launcher",
    "model_zoo",
    "multiprocessing",
    "onnx",
    "profiler",
    "rpc",
    "show_pickle",
    "tensorboard",
    "attrgetter",
    "cpp_extension",
    "hub",
    "import_module",
    "itemgetter",
    "load",
    "loads",
    "methodcaller",
    "save",
];
/// Assay extensions: dotted calls PRISM does not block that read files, deserialize or load
/// native code through the otherwise-allowed torch namespace.
const EXTENSION_CALLS: &[(&str, &str)] = &[
    ("torch.from_file", "prism:no-filesystem"),
    ("torch.jit.load", "prism:no-deserialization"),
    ("torch.ops.load_library", "prism:no-ffi"),
    ("torch.classes.load_library", "prism:no-ffi"),
];

/// Assay extension (issue #19): torch's own helpers that start processes, open sockets, or read
/// and write files at paths the sandbox cannot anchor, each family with its rule id. Matched as
/// dotted names (through import aliases) and as imports, like PRISM's `torch.hub` rule.
/// (`torch.compile` stays allowed: its compile workers run torch's code, not the bundle's.)
pub const TORCH_HELPER_RULES: &[(&str, &str, &str)] = &[
    (
        "torch.utils.collect_env",
        "prism:no-torch-collect-env",
        "runs shell commands (collect_env.run)",
    ),
    (
        "torch.multiprocessing",
        "prism:no-torch-process",
        "starts processes",
    ),
    (
        "torch.distributed.run",
        "prism:no-torch-process",
        "is torchrun: starts processes",
    ),
    (
        "torch.distributed.launch",
        "prism:no-torch-process",
        "starts processes",
    ),
    (
        "torch.distributed.launcher",
        "prism:no-torch-process",
        "starts processes",
    ),
    (
        "torch.distributed.elastic",
        "prism:no-torch-process",
        "starts and supervises processes",
    ),
    (
        "torch.utils.bottleneck",
        "prism:no-torch-process",
        "re-runs a script under profilers in new processes",
    ),
    (
        "torch.utils.benchmark",
        "prism:no-torch-native-build",
        "compiles and loads C++ (cpp_jit)",
    ),
    (
        "torch._inductor",
        "prism:no-torch-internals",
        "spawns compiler subprocesses and writes code caches",
    ),
    (
        "torch._C",
        "prism:no-torch-internals",
        "is the raw native binding, with file, process and library loaders behind no rule",
    ),
    (
        "torch.testing._internal",
        "prism:no-torch-internals",
        "runs subprocesses and opens files for torch's own tests",
    ),
    (
        "torch.distributed.rpc",
        "prism:no-torch-socket",
        "opens sockets to other processes and hosts",
    ),
    (
        "torch.distributed.TCPStore",
        "prism:no-torch-socket",
        "opens a listening or connecting socket",
    ),
    (
        "torch.distributed.FileStore",
        "prism:no-torch-file",
        "opens a file at any path",
    ),
    (
        "torch.distributed.checkpoint",
        "prism:no-torch-file",
        "writes and reads checkpoints at any path (torch.save's path rule does not see it)",
    ),
    (
        "torch.utils.tensorboard",
        "prism:no-torch-file",
        "writes event files at any path",
    ),
    (
        "torch.profiler",
        "prism:no-torch-file",
        "writes trace files at any path",
    ),
    (
        "torch.autograd.profiler",
        "prism:no-torch-file",
        "writes trace files at any path",
    ),
    (
        "torch.onnx",
        "prism:no-torch-file",
        "writes model files at any path",
    ),
    (
        "torch.jit.save",
        "prism:no-torch-file",
        "writes a file at any path",
    ),
    (
        "torch.export.save",
        "prism:no-torch-file",
        "writes a file at any path",
    ),
    (
        "torch.export.load",
        "prism:no-torch-file",
        "reads a file at any path",
    ),
    (
        "torch.utils.file_baton",
        "prism:no-torch-file",
        "creates and deletes files at any path",
    ),
    (
        "torch.utils.show_pickle",
        "prism:no-torch-file",
        "reads and unpickles files",
    ),
    (
        "torch.utils.hipify",
        "prism:no-torch-file",
        "rewrites source files",
    ),
    (
        "torch.utils.data.datapipes",
        "prism:no-torch-file",
        "lists and opens files (FileLister, FileOpener)",
    ),
    (
        "torch.cuda.memory._dump_snapshot",
        "prism:no-torch-file",
        "writes a file at any path",
    ),
    (
        "torch.utils.model_zoo",
        "prism:no-torch-download",
        "downloads weights over the network",
    ),
];

/// The helper rule a dotted name falls under, if any.
pub fn torch_helper_rule(
    dotted: &str,
) -> Option<&'static (&'static str, &'static str, &'static str)> {
    TORCH_HELPER_RULES
        .iter()
        .find(|(prefix, _, _)| dotted == *prefix || dotted.starts_with(&format!("{prefix}.")))
}

/// Assay extension: attributes that reach frames (and so any function's globals), the builtins
/// module behind a builtin function, or a module's loader (which reads files). PRISM blocks the
/// `__globals__` / `__builtins__` routes but not these.
const EXTENSION_ATTRS: &[(&str, &str)] = &[
    ("__loader__", "prism:no-filesystem"),
    ("__self__", "prism:no-attribute-escape"),
    ("__spec__", "prism:no-filesystem"),
    ("__traceback__", "prism:no-attribute-escape"),
    ("ag_frame", "prism:no-attribute-escape"),
    ("cr_frame", "prism:no-attribute-escape"),
    ("f_back", "prism:no-attribute-escape"),
    ("f_builtins", "prism:no-attribute-escape"),
    ("f_globals", "prism:no-attribute-escape"),
    ("f_locals", "prism:no-attribute-escape"),
    ("gi_frame", "prism:no-attribute-escape"),
    ("tb_frame", "prism:no-attribute-escape"),
    ("tb_next", "prism:no-attribute-escape"),
];
/// Assay extension: modules outside the import rules that other modules hand out as attributes
/// (`torch` imports `os` and `sys`, so `torch.sys.modules` is every module). The refused import
/// roots count too, except `signal`, too common a word for an attribute.
const ESCAPE_MODULE_ATTRS: &[(&str, &str)] = &[
    ("__main__", "prism:no-attribute-escape"),
    ("builtins", "prism:no-dynamic-code"),
    ("gc", "prism:no-attribute-escape"),
    ("inspect", "prism:no-attribute-escape"),
    ("io", "prism:no-filesystem"),
    ("posix", "prism:no-process"),
    ("runpy", "prism:no-dynamic-import"),
];
/// Module roots whose attributes the trusted runner uses: a bundle may not rebind them.
const RUNNER_MODULE_ROOTS: &[&str] = &[
    "collections",
    "dataclasses",
    "math",
    "prism_challenge",
    "torch",
    "typing",
];
/// Rebinding these is configuration, not tampering (`torch.backends.cudnn.benchmark = True`).
const REBINDABLE_PREFIXES: &[&str] = &["torch.backends."];

/// One rule violation, located.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// File inside the bundle.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// PRISM rule id, e.g. `prism:no-network`.
    pub rule: String,
    /// What was found and why it is refused.
    pub message: String,
    /// True for the checks assay adds on top of PRISM's rules.
    pub extension: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} {}",
            self.path, self.line, self.col, self.rule, self.message
        )
    }
}

/// Checks one parsed file. `local_roots` are the stems of the bundle's own `.py` files, which
/// count as allowed imports.
pub fn check_file(file: &PyFile, local_roots: &BTreeSet<String>) -> Vec<Finding> {
    let nodes = file.nodes();
    let mut checker = Checker {
        file,
        trusted: trusted_roots(&nodes),
        aliases: import_aliases(&nodes),
        local_roots,
        findings: BTreeSet::new(),
    };
    for node in &nodes {
        checker.visit(*node);
    }
    checker.findings.into_iter().collect()
}

/// The import rule for a refused root, by category.
pub fn import_rule(root: &str) -> &'static str {
    let categories: [(&[&str], &str); 6] = [
        (NETWORK_ROOTS, "prism:no-network"),
        (FILESYSTEM_ROOTS, "prism:no-filesystem"),
        (PROCESS_ROOTS, "prism:no-process"),
        (FFI_ROOTS, "prism:no-ffi"),
        (DYNAMIC_IMPORT_ROOTS, "prism:no-dynamic-import"),
        (DESERIALIZATION_ROOTS, "prism:no-deserialization"),
    ];
    categories
        .iter()
        .find(|(roots, _)| roots.contains(&root))
        .map_or("prism:no-forbidden-import", |(_, rule)| rule)
}

struct Checker<'a> {
    file: &'a PyFile,
    trusted: BTreeSet<&'static str>,
    /// Names bound by import statements and the dotted path each stands for.
    aliases: BTreeMap<String, String>,
    local_roots: &'a BTreeSet<String>,
    findings: BTreeSet<Finding>,
}

impl Checker<'_> {
    fn report(&mut self, node: AnyNodeRef<'_>, rule: &str, message: String, extension: bool) {
        let (line, col) = self.file.line_col(start_of(node));
        self.findings.insert(Finding {
            path: self.file.path.clone(),
            line,
            col,
            rule: rule.to_string(),
            message,
            extension,
        });
    }

    fn visit(&mut self, node: AnyNodeRef<'_>) {
        match node {
            AnyNodeRef::StmtImport(import) => {
                for alias in &import.names {
                    self.check_import_root(node, alias.name.as_str());
                    self.check_imported_escape(node, alias.name.as_str());
                }
            }
            AnyNodeRef::StmtImportFrom(import) => {
                if let Some(module) = &import.module {
                    self.check_import_root(node, module.as_str());
                    for alias in &import.names {
                        self.check_imported_escape(node, &format!("{module}.{}", alias.name));
                        self.check_escape_module(node, alias.name.as_str());
                    }
                }
            }
            AnyNodeRef::ExprCall(call) => self.check_call(node, call),
            AnyNodeRef::ExprAttribute(attr) => {
                let name = attr.attr.as_str();
                if let Some((_, rule)) = FORBIDDEN_ATTRS.iter().find(|(a, _)| *a == name) {
                    self.report(
                        node,
                        rule,
                        format!("attribute `{name}` is not allowed"),
                        false,
                    );
                }
                if let Some((_, rule)) = EXTENSION_ATTRS.iter().find(|(a, _)| *a == name) {
                    let message = format!("attribute `{name}` reaches frames, builtins or files");
                    self.report(node, rule, message, true);
                }
                self.check_escape_module(node, name);
                let dotted = dotted_name(&Expr::Attribute(attr.clone()));
                self.check_torch_escape(node, &dotted);
                if attr.ctx != ExprContext::Load {
                    self.check_rebinding(node, &dotted);
                }
            }
            AnyNodeRef::ExprName(name) if name.id.as_str() == "__builtins__" => self.report(
                node,
                "prism:no-dynamic-code",
                "the name `__builtins__` reaches every builtin by string".into(),
                true,
            ),
            _ => {}
        }
    }

    fn check_import_root(&mut self, node: AnyNodeRef<'_>, module: &str) {
        let root = module.split('.').next().unwrap_or(module);
        if ALLOWED_IMPORT_ROOTS.contains(&root) || self.local_roots.contains(root) {
            return;
        }
        let rule = import_rule(root);
        let message = format!(
            "import root `{root}` is not allowed (allowed: torch, math, typing, collections, dataclasses, __future__, prism_challenge and the bundle's own modules)"
        );
        self.report(node, rule, message, false);
    }

    /// Assay extension: `import torch.hub` / `from torch.utils.cpp_extension import load` reach
    /// the same escapes as the dotted names PRISM blocks, without ever spelling them.
    fn check_imported_escape(&mut self, node: AnyNodeRef<'_>, dotted: &str) {
        if let Some((prefix, rule, why)) = torch_helper_rule(dotted) {
            let message = format!("importing `{dotted}`: `{prefix}` {why}");
            self.report(node, rule, message, true);
        }
        let escapes = BLOCKED_TORCH_PREFIXES
            .iter()
            .any(|p| dotted == *p || dotted.starts_with(&format!("{p}.")));
        if escapes {
            let message = format!("importing `{dotted}` reaches the network or native code");
            self.report(node, "prism:no-torch-escape", message, true);
        }
    }

    fn check_torch_escape(&mut self, node: AnyNodeRef<'_>, dotted: &str) {
        let full = self.canonical(dotted).unwrap_or_else(|| dotted.to_string());
        if let Some((prefix, rule, why)) = torch_helper_rule(&full) {
            let message = if full == dotted {
                format!("`{dotted}`: `{prefix}` {why}")
            } else {
                format!("`{dotted}` (that is `{full}`): `{prefix}` {why}")
            };
            self.report(node, rule, message, true);
        }
        let escapes = |name: &str| {
            BLOCKED_TORCH_PREFIXES
                .iter()
                .any(|p| name == *p || name.starts_with(&format!("{p}.")))
        };
        if escapes(dotted) {
            let message = format!("`{dotted}` reaches the network or native code through torch");
            self.report(node, "prism:no-torch-escape", message, false);
        } else if let Some(full) = self.canonical(dotted).filter(|f| escapes(f)) {
            let message = format!(
                "`{dotted}` (that is `{full}`) reaches the network or native code through torch"
            );
            self.report(node, "prism:no-torch-escape", message, true);
        }
    }

    /// Assay extension: a refused module reached as an attribute or imported from a module.
    fn check_escape_module(&mut self, node: AnyNodeRef<'_>, name: &str) {
        let rule = match ESCAPE_MODULE_ATTRS.iter().find(|(m, _)| *m == name) {
            Some((_, rule)) => *rule,
            None if name != "signal" && import_rule(name) != "prism:no-forbidden-import" => {
                import_rule(name)
            }
            None => return,
        };
        let message = format!("`{name}` reached through another module is still a refused module");
        self.report(node, rule, message, true);
    }

    /// Assay extension: rebinding or deleting an attribute of a module the runner relies on
    /// (torch, math, ...) could change how the instrument computes the loss.
    fn check_rebinding(&mut self, node: AnyNodeRef<'_>, dotted: &str) {
        let Some(full) = self.canonical(dotted) else {
            return;
        };
        let root = full.split('.').next().unwrap_or_default();
        if RUNNER_MODULE_ROOTS.contains(&root)
            && !REBINDABLE_PREFIXES.iter().any(|p| full.starts_with(p))
        {
            let message =
                format!("rebinding `{full}` changes a module the scoring instrument relies on");
            self.report(node, "prism:no-monkeypatch", message, true);
        }
    }

    /// `dotted` with its first name replaced by what an import bound it to, when it was.
    fn canonical(&self, dotted: &str) -> Option<String> {
        let (first, rest) = match dotted.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (dotted, None),
        };
        let target = self.aliases.get(first)?;
        Some(match rest {
            Some(rest) => format!("{target}.{rest}"),
            None => target.clone(),
        })
    }

    fn check_call(&mut self, node: AnyNodeRef<'_>, call: &ExprCall) {
        if let Expr::Name(func) = call.func.as_ref() {
            let name = func.id.as_str();
            if let Some((_, rule)) = FORBIDDEN_CALLS.iter().find(|(c, _)| *c == name) {
                self.report(node, rule, format!("call `{name}()` is not allowed"), false);
            }
            self.check_indirection(node, name, call);
            // `from torch import load` makes `load(...)` a torch.load call.
            if let Some(full) = self.canonical(name).filter(|f| f.contains('.')) {
                self.check_aliased_call(node, call, name, &full);
            }
        } else {
            self.check_dotted_call(node, call);
        }
    }

    /// Assay extension: the dotted-call rules on the name an import alias stands for.
    fn check_aliased_call(
        &mut self,
        node: AnyNodeRef<'_>,
        call: &ExprCall,
        written: &str,
        full: &str,
    ) {
        self.check_torch_escape(node, written);
        if let Some(rule) = extension_rule(full) {
            let message = format!(
                "`{written}` (that is `{full}`) reads files or loads code outside the sandbox"
            );
            self.report(node, rule, message, true);
        }
        self.check_torch_load_save(node, call, full, true);
    }

    fn check_indirection(&mut self, node: AnyNodeRef<'_>, name: &str, call: &ExprCall) {
        if NAMESPACE_CALLS.contains(&name) {
            let message = format!("`{name}()` namespace introspection is not allowed");
            self.report(node, "prism:no-dynamic-attr", message, false);
        }
        if !INDIRECTION_CALLS.contains(&name) {
            return;
        }
        let args = &call.arguments.args;
        if args.first().is_some_and(references_builtins) {
            let message = format!("`{name}` on the builtins namespace");
            self.report(node, "prism:no-dynamic-attr", message, false);
        }
        if name != "getattr"
            && let Some(target) = args.first()
        {
            self.check_rebinding(node, &dotted_name(target));
        }
        if let Some(attr_arg) = args.get(1) {
            match const_str(attr_arg) {
                None => self.report(
                    node,
                    "prism:no-dynamic-attr",
                    format!("`{name}` with a computed attribute name; use a string literal"),
                    false,
                ),
                Some(attr) if blocked_indirection(&attr) => self.report(
                    node,
                    "prism:no-dynamic-attr",
                    format!("`{name}` reaches the blocked symbol `{attr}`"),
                    false,
                ),
                Some(_) => {}
            }
        }
    }

    fn check_dotted_call(&mut self, node: AnyNodeRef<'_>, call: &ExprCall) {
        let dotted = dotted_name(&call.func);
        if !dotted.contains('.') {
            return;
        }
        let root = dotted.split('.').next().unwrap_or_default();
        let last = dotted.rsplit('.').next().unwrap_or_default();
        self.check_torch_escape(node, &dotted);
        if DYNAMIC_IMPORT_ROOTS.contains(&root) {
            let message = format!("`{dotted}` performs a dynamic import");
            self.report(node, "prism:no-dynamic-import", message, false);
        }
        if root == "operator" && ["attrgetter", "itemgetter", "methodcaller"].contains(&last) {
            let message = format!("`{dotted}` is a string-built attribute indirection");
            self.report(node, "prism:no-dynamic-attr", message, false);
        }
        if DESERIALIZATION_ROOTS.contains(&root) && DESERIALIZATION_CALL_ATTRS.contains(&last) {
            let message = format!("`{dotted}` deserializes untrusted data");
            self.report(node, "prism:no-deserialization", message, false);
        }
        self.check_torch_load_save(node, call, &dotted, false);
        if let Some(rule) = extension_rule(&dotted) {
            let message = format!("`{dotted}` reads files or loads code outside the sandbox");
            self.report(node, rule, message, true);
        } else if let Some(full) = self.canonical(&dotted).filter(|f| *f != dotted) {
            self.check_aliased_call(node, call, &dotted, &full);
        }
    }

    /// PRISM's anchoring rule for `torch.load` / `torch.save`; `extension` when the call was
    /// only recognised through an alias or as `torch.serialization.load/save`.
    fn check_torch_load_save(
        &mut self,
        node: AnyNodeRef<'_>,
        call: &ExprCall,
        dotted: &str,
        extension: bool,
    ) {
        let (index, rule, what, extension) = match dotted {
            "torch.load" => (
                0,
                "prism:no-deserialization",
                "torch.load may only read",
                extension,
            ),
            "torch.save" => (
                1,
                "prism:no-filesystem",
                "torch.save may only write",
                extension,
            ),
            "torch.serialization.load" => (
                0,
                "prism:no-deserialization",
                "torch.load may only read",
                true,
            ),
            "torch.serialization.save" => {
                (1, "prism:no-filesystem", "torch.save may only write", true)
            }
            _ => return,
        };
        let trusted = call
            .arguments
            .args
            .get(index)
            .is_some_and(|path| path_is_trusted(path, &self.trusted));
        if !trusted {
            let message = format!(
                "{what} under ctx.artifacts_dir / checkpoint_dir / resume_checkpoint_dir \
                 (the path must start at one of them, and they must never be reassigned)"
            );
            self.report(node, rule, message, extension);
        }
    }
}

fn extension_rule(dotted: &str) -> Option<&'static str> {
    if dotted == "torch.package" || dotted.starts_with("torch.package.") {
        return Some("prism:no-deserialization");
    }
    // Storage classes map files too: torch.UntypedStorage.from_file, torch.storage....from_file.
    if dotted.starts_with("torch.") && dotted.ends_with(".from_file") {
        return Some("prism:no-filesystem");
    }
    EXTENSION_CALLS
        .iter()
        .find(|(call, _)| *call == dotted)
        .map(|(_, rule)| *rule)
}

/// Every name an import statement in the file binds, mapped to the dotted path it stands for:
/// `import torch` binds `torch`, `import torch.nn.functional as F` binds `F` to
/// `torch.nn.functional`, `from torch import load as L` binds `L` to `torch.load`. Relative and
/// star imports bind nothing here.
fn import_aliases(nodes: &[AnyNodeRef<'_>]) -> BTreeMap<String, String> {
    let mut aliases = BTreeMap::new();
    for node in nodes {
        match node {
            AnyNodeRef::StmtImport(import) => {
                for alias in &import.names {
                    let module = alias.name.to_string();
                    match &alias.asname {
                        Some(bound) => aliases.insert(bound.to_string(), module),
                        None => {
                            let root = module.split('.').next().unwrap_or_default().to_string();
                            aliases.insert(root.clone(), root)
                        }
                    };
                }
            }
            AnyNodeRef::StmtImportFrom(import) if import.level == 0 => {
                let Some(module) = &import.module else {
                    continue;
                };
                for alias in import.names.iter().filter(|a| a.name.as_str() != "*") {
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name).to_string();
                    aliases.insert(bound, format!("{module}.{}", alias.name));
                }
            }
            _ => {}
        }
    }
    aliases
}

fn blocked_indirection(attr: &str) -> bool {
    FORBIDDEN_ATTRS.iter().any(|(a, _)| *a == attr)
        || FORBIDDEN_CALLS.iter().any(|(c, _)| *c == attr)
        || EXTRA_BLOCKED_INDIRECTION.contains(&attr)
}

fn references_builtins(expr: &Expr) -> bool {
    match expr {
        Expr::Name(n) => matches!(n.id.as_str(), "__builtins__" | "builtins"),
        Expr::Attribute(a) => matches!(a.attr.as_str(), "__builtins__" | "builtins"),
        _ => false,
    }
}

/// Trusted path roots minus those the file rebinds (a store, or `setattr`/`delattr` by name):
/// a rebound name no longer points at the harness directory.
fn trusted_roots(nodes: &[AnyNodeRef<'_>]) -> BTreeSet<&'static str> {
    let mut trusted: BTreeSet<&'static str> = TRUSTED_PATH_ROOTS.iter().copied().collect();
    for node in nodes {
        let rebound = match node {
            AnyNodeRef::ExprName(n) if n.ctx == ExprContext::Store => Some(n.id.to_string()),
            AnyNodeRef::ExprAttribute(a) if a.ctx == ExprContext::Store => Some(a.attr.to_string()),
            AnyNodeRef::ExprCall(call) => setattr_target(call),
            _ => None,
        };
        if let Some(name) = rebound {
            trusted.retain(|root| *root != name);
        }
    }
    trusted
}

fn setattr_target(call: &ExprCall) -> Option<String> {
    let Expr::Name(func) = call.func.as_ref() else {
        return None;
    };
    if !matches!(func.id.as_str(), "setattr" | "delattr") {
        return None;
    }
    call.arguments.args.get(1).and_then(const_str)
}

/// A path is trusted only when its leftmost base (through `/`, `+` and subscripts) is a trusted
/// root name or attribute.
fn path_is_trusted(expr: &Expr, trusted: &BTreeSet<&'static str>) -> bool {
    match expr {
        Expr::Name(n) => trusted.contains(n.id.as_str()),
        Expr::Attribute(a) => trusted.contains(a.attr.as_str()),
        Expr::BinOp(b) => path_is_trusted(&b.left, trusted),
        Expr::Subscript(s) => path_is_trusted(&s.value, trusted),
        _ => false,
    }
}
