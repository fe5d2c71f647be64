//! Python source as a ruff AST, flattened into the node list that Python's `ast.walk` would visit,
//! plus the small name helpers PRISM's rules are written in terms of (`_node_name`, `_const_str`).

use ruff_python_ast::visitor::source_order::{SourceOrderVisitor, TraversalSignal};
use ruff_python_ast::{
    AnyNodeRef, BoolOp, CmpOp, ElifElseClause, Expr, ExprContext, FStringPart,
    InterpolatedStringElement, ModModule, Operator, Stmt, UnaryOp,
};
use ruff_text_size::{Ranged, TextSize};

/// One parsed Python file: its source, its AST and a line index for `line:col` positions.
pub struct PyFile {
    /// Path inside the bundle (forward slashes).
    pub path: String,
    /// The file's text.
    pub source: String,
    /// The parsed module.
    pub module: ModModule,
    line_starts: Vec<usize>,
}

/// A Python syntax error, located.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}:{line}:{col}: Python syntax error: {message}")]
pub struct PySyntaxError {
    /// File inside the bundle.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What the parser said.
    pub message: String,
}

impl PyFile {
    /// Parses `source`; a syntax error comes back with its position.
    pub fn parse(path: &str, source: &str) -> Result<Self, PySyntaxError> {
        let line_starts = line_starts(source);
        match ruff_python_parser::parse_module(source) {
            Ok(parsed) => Ok(Self {
                path: path.to_string(),
                source: source.to_string(),
                module: parsed.into_syntax(),
                line_starts,
            }),
            Err(err) => {
                let (line, col) = position(source, &line_starts, err.location.start());
                Err(PySyntaxError {
                    path: path.to_string(),
                    line,
                    col,
                    message: err.error.to_string(),
                })
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: TextSize) -> (usize, usize) {
        position(&self.source, &self.line_starts, offset)
    }

    /// Every node of the module in source order (the same set `ast.walk` yields, visited in a
    /// different order; PRISM's rules do not depend on the order).
    pub fn nodes(&self) -> Vec<AnyNodeRef<'_>> {
        let mut collector = Collector::default();
        collector.visit_body(&self.module.body);
        collector.nodes
    }
}

fn line_starts(source: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn position(source: &str, starts: &[usize], offset: TextSize) -> (usize, usize) {
    let offset = usize::from(offset).min(source.len());
    let line = starts.partition_point(|&s| s <= offset).max(1);
    let start = starts[line - 1];
    let col = source
        .get(start..offset)
        .map_or(offset - start, |s| s.chars().count());
    (line, col + 1)
}

#[derive(Default)]
struct Collector<'a> {
    nodes: Vec<AnyNodeRef<'a>>,
}

impl<'a> SourceOrderVisitor<'a> for Collector<'a> {
    fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
        self.nodes.push(node);
        TraversalSignal::Traverse
    }
}

/// PRISM's `_node_name`: `a.b.c` for attribute chains, the value's name for subscripts, and the
/// Python AST class name for anything else (so `f().x` is `Call.x`).
pub fn dotted_name(expr: &Expr) -> String {
    match expr {
        Expr::Name(name) => name.id.to_string(),
        Expr::Attribute(attr) => {
            let prefix = dotted_name(&attr.value);
            if prefix.is_empty() {
                attr.attr.to_string()
            } else {
                format!("{prefix}.{}", attr.attr)
            }
        }
        Expr::Subscript(sub) => dotted_name(&sub.value),
        other => python_class_name(AnyNodeRef::from(other))
            .unwrap_or("expr")
            .to_string(),
    }
}

/// PRISM's `_const_str`: a string literal, a `+` of constant strings, or an f-string without
/// interpolations; anything else is not a compile-time constant.
pub fn const_str(expr: &Expr) -> Option<String> {
    match expr {
        Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
        Expr::BinOp(bin) if bin.op == Operator::Add => {
            Some(const_str(&bin.left)? + &const_str(&bin.right)?)
        }
        Expr::FString(f) => {
            let mut out = String::new();
            for part in f.value.iter() {
                match part {
                    FStringPart::Literal(lit) => out.push_str(&lit.value),
                    FStringPart::FString(fs) => {
                        for element in fs.elements.iter() {
                            match element {
                                InterpolatedStringElement::Literal(l) => out.push_str(&l.value),
                                InterpolatedStringElement::Interpolation(_) => return None,
                            }
                        }
                    }
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// The class name CPython's `ast` module gives this node, or `None` for ruff nodes that have no
/// counterpart there (call argument lists, decorators, string parts, identifiers).
pub fn python_class_name(node: AnyNodeRef<'_>) -> Option<&'static str> {
    use AnyNodeRef as N;
    Some(match node {
        N::ModModule(_) => "Module",
        N::ModExpression(_) => "Expression",
        N::StmtFunctionDef(f) if f.is_async => "AsyncFunctionDef",
        N::StmtFunctionDef(_) => "FunctionDef",
        N::StmtClassDef(_) => "ClassDef",
        N::StmtReturn(_) => "Return",
        N::StmtDelete(_) => "Delete",
        N::StmtTypeAlias(_) => "TypeAlias",
        N::StmtAssign(_) => "Assign",
        N::StmtAugAssign(_) => "AugAssign",
        N::StmtAnnAssign(_) => "AnnAssign",
        N::StmtFor(f) if f.is_async => "AsyncFor",
        N::StmtFor(_) => "For",
        N::StmtWhile(_) => "While",
        N::StmtIf(_) => "If",
        N::StmtWith(w) if w.is_async => "AsyncWith",
        N::StmtWith(_) => "With",
        N::StmtMatch(_) => "Match",
        N::StmtRaise(_) => "Raise",
        N::StmtTry(t) if t.is_star => "TryStar",
        N::StmtTry(_) => "Try",
        N::StmtAssert(_) => "Assert",
        N::StmtImport(_) => "Import",
        N::StmtImportFrom(_) => "ImportFrom",
        N::StmtGlobal(_) => "Global",
        N::StmtNonlocal(_) => "Nonlocal",
        N::StmtExpr(_) => "Expr",
        N::StmtPass(_) => "Pass",
        N::StmtBreak(_) => "Break",
        N::StmtContinue(_) => "Continue",
        N::ExprBoolOp(_) => "BoolOp",
        N::ExprNamed(_) => "NamedExpr",
        N::ExprBinOp(_) => "BinOp",
        N::ExprUnaryOp(_) => "UnaryOp",
        N::ExprLambda(_) => "Lambda",
        N::ExprIf(_) => "IfExp",
        N::ExprDict(_) => "Dict",
        N::ExprSet(_) => "Set",
        N::ExprListComp(_) => "ListComp",
        N::ExprSetComp(_) => "SetComp",
        N::ExprDictComp(_) => "DictComp",
        N::ExprGenerator(_) => "GeneratorExp",
        N::ExprAwait(_) => "Await",
        N::ExprYield(_) => "Yield",
        N::ExprYieldFrom(_) => "YieldFrom",
        N::ExprCompare(_) => "Compare",
        N::ExprCall(_) => "Call",
        N::ExprFString(_) | N::InterpolatedStringFormatSpec(_) => "JoinedStr",
        N::ExprTString(_) => "TemplateStr",
        N::ExprStringLiteral(_)
        | N::ExprBytesLiteral(_)
        | N::ExprNumberLiteral(_)
        | N::ExprBooleanLiteral(_)
        | N::ExprNoneLiteral(_)
        | N::ExprEllipsisLiteral(_)
        | N::InterpolatedStringLiteralElement(_) => "Constant",
        N::ExprAttribute(_) => "Attribute",
        N::ExprSubscript(_) => "Subscript",
        N::ExprStarred(_) => "Starred",
        N::ExprName(_) => "Name",
        N::ExprList(_) => "List",
        N::ExprTuple(_) => "Tuple",
        N::ExprSlice(_) => "Slice",
        N::ExceptHandlerExceptHandler(_) => "ExceptHandler",
        N::InterpolatedElement(_) => "FormattedValue",
        N::PatternMatchValue(_) => "MatchValue",
        N::PatternMatchSingleton(_) => "MatchSingleton",
        N::PatternMatchSequence(_) => "MatchSequence",
        N::PatternMatchMapping(_) => "MatchMapping",
        N::PatternMatchClass(_) => "MatchClass",
        N::PatternMatchStar(_) => "MatchStar",
        N::PatternMatchAs(_) => "MatchAs",
        N::PatternMatchOr(_) => "MatchOr",
        N::TypeParamTypeVar(_) => "TypeVar",
        N::TypeParamTypeVarTuple(_) => "TypeVarTuple",
        N::TypeParamParamSpec(_) => "ParamSpec",
        N::Comprehension(_) => "comprehension",
        N::Parameters(_) => "arguments",
        N::Parameter(_) => "arg",
        N::Keyword(_) => "keyword",
        N::Alias(_) => "alias",
        N::WithItem(_) => "withitem",
        N::MatchCase(_) => "match_case",
        N::ElifElseClause(ElifElseClause { test: Some(_), .. }) => "If",
        _ => return None,
    })
}

/// The extra singleton nodes `ast.walk` yields for a node: its load/store/del context and its
/// operators (`Add`, `Not`, `Eq`, ...), plus the empty `arguments` of a parameterless lambda.
pub fn python_child_singletons(node: AnyNodeRef<'_>) -> Vec<&'static str> {
    use AnyNodeRef as N;
    match node {
        N::ExprName(n) => vec![ctx_name(n.ctx)],
        N::ExprAttribute(n) => vec![ctx_name(n.ctx)],
        N::ExprSubscript(n) => vec![ctx_name(n.ctx)],
        N::ExprStarred(n) => vec![ctx_name(n.ctx)],
        N::ExprList(n) => vec![ctx_name(n.ctx)],
        N::ExprTuple(n) => vec![ctx_name(n.ctx)],
        N::ExprBinOp(n) => vec![operator_name(n.op)],
        N::StmtAugAssign(n) => vec![operator_name(n.op)],
        N::ExprUnaryOp(n) => vec![match n.op {
            UnaryOp::Invert => "Invert",
            UnaryOp::Not => "Not",
            UnaryOp::UAdd => "UAdd",
            UnaryOp::USub => "USub",
        }],
        N::ExprBoolOp(n) => vec![match n.op {
            BoolOp::And => "And",
            BoolOp::Or => "Or",
        }],
        N::ExprCompare(n) => n.ops.iter().map(|op| cmp_name(*op)).collect(),
        N::ExprLambda(l) if l.parameters.is_none() => vec!["arguments"],
        _ => Vec::new(),
    }
}

fn ctx_name(ctx: ExprContext) -> &'static str {
    match ctx {
        ExprContext::Store => "Store",
        ExprContext::Del => "Del",
        _ => "Load",
    }
}

fn operator_name(op: Operator) -> &'static str {
    match op {
        Operator::Add => "Add",
        Operator::Sub => "Sub",
        Operator::Mult => "Mult",
        Operator::MatMult => "MatMult",
        Operator::Div => "Div",
        Operator::Mod => "Mod",
        Operator::Pow => "Pow",
        Operator::LShift => "LShift",
        Operator::RShift => "RShift",
        Operator::BitOr => "BitOr",
        Operator::BitXor => "BitXor",
        Operator::BitAnd => "BitAnd",
        Operator::FloorDiv => "FloorDiv",
    }
}

fn cmp_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "Eq",
        CmpOp::NotEq => "NotEq",
        CmpOp::Lt => "Lt",
        CmpOp::LtE => "LtE",
        CmpOp::Gt => "Gt",
        CmpOp::GtE => "GtE",
        CmpOp::Is => "Is",
        CmpOp::IsNot => "IsNot",
        CmpOp::In => "In",
        CmpOp::NotIn => "NotIn",
    }
}

/// Names of the module's top-level `def`s (sync or async): PRISM checks the contract symbols this
/// way, without running anything.
pub fn top_level_functions(module: &ModModule) -> Vec<String> {
    module
        .body
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::FunctionDef(f) => Some(f.name.to_string()),
            _ => None,
        })
        .collect()
}

/// Start offset of any node.
pub fn start_of(node: AnyNodeRef<'_>) -> TextSize {
    node.range().start()
}

/// Every node of one expression (the expression itself first), for rules that look inside it.
pub fn expr_nodes(expr: &Expr) -> Vec<AnyNodeRef<'_>> {
    let mut collector = Collector::default();
    collector.visit_expr(expr);
    collector.nodes
}
