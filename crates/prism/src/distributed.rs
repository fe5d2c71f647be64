//! PRISM's multi-GPU static contract (evaluator/distributed_contract.py, "Gate A") and its
//! single-node bound, over the training script's AST.
//!
//! The scored run goes through `torchrun --standalone --nnodes=1 --nproc-per-node=N`, so the
//! training script must carry the distributed code path even when it runs on one GPU: a
//! process-group init, a device binding, a DDP/FSDP wrap, per-rank data sharding, a rank-0 write
//! guard and a process-group teardown; every `torch.save` must sit under a `rank == 0` test.
//! PRISM reports every missing piece under one rule id; here each piece has its own rule id
//! (`prism:distributed-<piece>`), so a miner sees exactly what to add. The checks match PRISM's:
//! references by name anywhere in the file, not data flow.

use std::collections::BTreeSet;

use ruff_python_ast::{AnyNodeRef, CmpOp, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange};
use serde::{Deserialize, Serialize};

use crate::pyast::{PyFile, dotted_name, expr_nodes};
use crate::sandbox::Finding;

/// What a training script that breaks the contract gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Refused before any run (PRISM's production default).
    #[default]
    Reject,
    /// Run, with the findings recorded as flags.
    Flag,
    /// Not checked.
    Off,
}

/// The most GPUs a submission may ask for (one node).
pub const MAX_GPU_COUNT: u32 = 8;

/// One required piece: its key, its rule id, and what a miner must add.
pub const PIECES: &[(&str, &str, &str)] = &[
    (
        "init_process_group",
        "prism:distributed-init-process-group",
        "call torch.distributed.init_process_group (under `if ctx.world_size > 1:` to keep world size 1 working)",
    ),
    (
        "device_binding",
        "prism:distributed-device-binding",
        "bind each rank to its device: torch.cuda.set_device(ctx.local_rank), or an explicit cuda device",
    ),
    (
        "ddp_or_fsdp",
        "prism:distributed-wrap",
        "wrap the model in DistributedDataParallel or FullyShardedDataParallel",
    ),
    (
        "data_sharding",
        "prism:distributed-data-sharding",
        "shard the data per rank: DistributedSampler, or rank-strided windows such as tokens[ctx.rank::ctx.world_size]",
    ),
    (
        "rank0_guard",
        "prism:distributed-rank0-guard",
        "guard writes with `if ctx.rank == 0:`",
    ),
    (
        "destroy_process_group",
        "prism:distributed-destroy-process-group",
        "call torch.distributed.destroy_process_group at the end",
    ),
];

/// Rule id of a `torch.save` outside a `rank == 0` test.
pub const UNGUARDED_WRITE_RULE: &str = "prism:distributed-unguarded-write";
/// Rule id of a request for more than one node or more than [`MAX_GPU_COUNT`] GPUs.
pub const SINGLE_NODE_RULE: &str = "prism:single-node-bound";

const RANK_NAMES: &[&str] = &[
    "rank",
    "local_rank",
    "global_rank",
    "RANK",
    "LOCAL_RANK",
    "GLOBAL_RANK",
];
const RANK_ATTRS: &[&str] = &["rank", "local_rank", "global_rank"];
const RANK_CALLS: &[&str] = &["get_rank", "get_local_rank"];
const WORLD_NAMES: &[&str] = &["world_size", "WORLD_SIZE", "num_replicas", "world"];
const WORLD_ATTRS: &[&str] = &["world_size", "num_replicas"];
const WRAP_NAMES: &[&str] = &["DistributedDataParallel", "FullyShardedDataParallel"];
const WRAP_ALIASES: &[&str] = &["DDP", "FSDP"];

/// The contract's verdict on one training script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractReport {
    /// True when every piece is there and every write is guarded.
    pub compliant: bool,
    /// Keys of the pieces found (see [`PIECES`]).
    pub present: BTreeSet<String>,
    /// Keys of the pieces missing.
    pub missing: Vec<String>,
    /// `torch.save` calls outside a `rank == 0` test.
    pub unguarded_writes: usize,
    /// One finding per missing piece and per unguarded write.
    pub findings: Vec<Finding>,
}

fn last_segment(expr: &Expr) -> String {
    let name = dotted_name(expr);
    name.rsplit('.').next().unwrap_or_default().to_string()
}

fn is_rank_ref(expr: &Expr) -> bool {
    match expr {
        Expr::Name(n) => RANK_NAMES.contains(&n.id.as_str()),
        Expr::Attribute(a) => RANK_ATTRS.contains(&a.attr.as_str()),
        Expr::Call(c) => RANK_CALLS.contains(&last_segment(&c.func).as_str()),
        _ => false,
    }
}

fn is_zero(file: &PyFile, expr: &Expr) -> bool {
    matches!(expr, Expr::NumberLiteral(_)) && file.source[expr.range()].trim() == "0"
}

/// `rank == 0` / `0 == ctx.local_rank` / `dist.get_rank() == 0`, possibly inside `and`/`or`.
fn is_rank0_test(file: &PyFile, test: &Expr) -> bool {
    match test {
        Expr::BoolOp(b) => b.values.iter().any(|v| is_rank0_test(file, v)),
        Expr::Compare(c) if c.ops.len() == 1 && c.ops[0] == CmpOp::Eq => {
            let (left, right) = (&*c.left, &c.comparators[0]);
            (is_rank_ref(left) && is_zero(file, right))
                || (is_rank_ref(right) && is_zero(file, left))
        }
        _ => false,
    }
}

fn refs(expr: &Expr, names: &[&str], attrs: &[&str]) -> bool {
    expr_nodes(expr).into_iter().any(|node| match node {
        AnyNodeRef::ExprName(n) => names.contains(&n.id.as_str()),
        AnyNodeRef::ExprAttribute(a) => attrs.contains(&a.attr.as_str()),
        _ => false,
    })
}

fn is_rank_strided(expr: &Expr) -> bool {
    refs(expr, RANK_NAMES, RANK_ATTRS) && refs(expr, WORLD_NAMES, WORLD_ATTRS)
}

fn has_cuda_arg(call: &ruff_python_ast::ExprCall) -> bool {
    call.arguments
        .args
        .iter()
        .chain(call.arguments.keywords.iter().map(|k| &k.value))
        .any(|arg| matches!(arg, Expr::StringLiteral(s) if s.value.to_str().contains("cuda")))
}

fn is_rank_strided_call(call: &ruff_python_ast::ExprCall) -> bool {
    let args = &call.arguments.args;
    args.iter().any(|a| refs(a, RANK_NAMES, RANK_ATTRS))
        && args.iter().any(|a| refs(a, WORLD_NAMES, WORLD_ATTRS))
}

/// Checks the training script against the contract.
pub fn check(file: &PyFile) -> ContractReport {
    let nodes = file.nodes();
    let mut wrap_aliases: BTreeSet<String> = BTreeSet::new();
    for node in &nodes {
        if let AnyNodeRef::StmtImportFrom(i) = node {
            for alias in &i.names {
                if WRAP_NAMES.contains(&alias.name.as_str()) {
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name);
                    wrap_aliases.insert(bound.to_string());
                }
            }
        }
    }
    let mut present = BTreeSet::new();
    let mut guarded: Vec<TextRange> = Vec::new();
    let mut saves: Vec<TextRange> = Vec::new();
    for node in &nodes {
        match node {
            AnyNodeRef::ExprCall(call) => {
                let last = last_segment(&call.func);
                match last.as_str() {
                    "init_process_group" => {
                        present.insert("init_process_group");
                    }
                    "destroy_process_group" => {
                        present.insert("destroy_process_group");
                    }
                    "set_device" | "cuda" => {
                        present.insert("device_binding");
                    }
                    "device" | "to" if has_cuda_arg(call) => {
                        present.insert("device_binding");
                    }
                    "DistributedSampler" => {
                        present.insert("data_sharding");
                    }
                    "range" if is_rank_strided_call(call) => {
                        present.insert("data_sharding");
                    }
                    _ => {}
                }
                if WRAP_NAMES.contains(&last.as_str())
                    || WRAP_ALIASES.contains(&last.as_str())
                    || wrap_aliases.contains(&last)
                {
                    present.insert("ddp_or_fsdp");
                }
                if dotted_name(&call.func) == "torch.save" {
                    saves.push(call.range());
                }
            }
            AnyNodeRef::ExprName(n) => {
                let id = n.id.as_str();
                if WRAP_NAMES.contains(&id) || wrap_aliases.contains(id) {
                    present.insert("ddp_or_fsdp");
                }
                if id == "DistributedSampler" {
                    present.insert("data_sharding");
                }
            }
            AnyNodeRef::ExprAttribute(a) => {
                if WRAP_NAMES.contains(&a.attr.as_str()) {
                    present.insert("ddp_or_fsdp");
                }
                if a.attr.as_str() == "DistributedSampler" {
                    present.insert("data_sharding");
                }
            }
            AnyNodeRef::ExprSubscript(s) if is_rank_strided(&s.slice) => {
                present.insert("data_sharding");
            }
            AnyNodeRef::StmtIf(stmt) => {
                let mut add = |test: &Expr, body: &[Stmt]| {
                    if is_rank0_test(file, test) {
                        present.insert("rank0_guard");
                        if let (Some(first), Some(last)) = (body.first(), body.last()) {
                            guarded.push(TextRange::new(first.start(), last.end()));
                        }
                    }
                };
                add(&stmt.test, &stmt.body);
                for clause in &stmt.elif_else_clauses {
                    if let Some(test) = &clause.test {
                        add(test, &clause.body);
                    }
                }
            }
            _ => {}
        }
    }
    let mut findings = Vec::new();
    let mut missing = Vec::new();
    for (key, rule, what) in PIECES {
        if !present.contains(key) {
            missing.push(key.to_string());
            findings.push(Finding {
                path: file.path.clone(),
                line: 1,
                col: 1,
                rule: rule.to_string(),
                message: format!("multi-GPU contract: the training script must {what}"),
                extension: false,
            });
        }
    }
    let mut unguarded_writes = 0;
    for save in saves {
        if !guarded.iter().any(|g| g.contains_range(save)) {
            unguarded_writes += 1;
            let (line, col) = file.line_col(save.start());
            findings.push(Finding {
                path: file.path.clone(),
                line,
                col,
                rule: UNGUARDED_WRITE_RULE.into(),
                message: "multi-GPU contract: torch.save outside a `rank == 0` test (every rank would write)".into(),
                extension: false,
            });
        }
    }
    ContractReport {
        compliant: findings.is_empty(),
        present: present.into_iter().map(str::to_string).collect(),
        missing,
        unguarded_writes,
        findings,
    }
}

/// PRISM's single-node bound: more than one node, or more than [`MAX_GPU_COUNT`] GPUs.
pub fn single_node_bound(gpu_count: Option<u32>, num_nodes: Option<u32>) -> Option<Finding> {
    let message = match (gpu_count, num_nodes) {
        (_, Some(nodes)) if nodes > 1 => {
            format!("multi-node runs are refused (num_nodes = {nodes}); one node only")
        }
        (Some(gpus), _) if gpus > MAX_GPU_COUNT => {
            format!("gpu_count {gpus} exceeds the single-node bound of {MAX_GPU_COUNT}")
        }
        _ => return None,
    };
    Some(Finding {
        path: "prism.yaml".into(),
        line: 1,
        col: 1,
        rule: SINGLE_NODE_RULE.into(),
        message,
        extension: false,
    })
}
