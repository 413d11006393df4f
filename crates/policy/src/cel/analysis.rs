//! What a rule refers to and what it may cost, found before it ever runs.
//!
//! The analysis walks the rule as written (macros not expanded, so `x.exists(v, p)` is still
//! visible as such) and:
//! - checks every evidence path against [`evidence::SHAPE`], so `vulnerabilites.critical` or
//!   `image.tagg` is a compile error with a position instead of an evaluation error (which a
//!   surrounding `||` or an empty `exists` could absorb into a verdict);
//! - follows comprehension variables: in `vulnerabilities.findings.exists(f, f.severty ==
//!   'critical')` the variable `f` is a finding, so the typo is caught too;
//! - allows only known functions, with the helpers' argument counts, a literal range for
//!   `semver_satisfies` and a literal, size-limited pattern for `matches` (the pattern would
//!   otherwise be compiled on every call, and could come from a pushed image's labels);
//! - refuses presence tests on facts (`has(image.created)`, `vulnerabilities.?critical`):
//!   whether a fact is known is not the rule's to decide; a missing fact makes the rule
//!   pending. Presence tests on label keys and list indexes are allowed, since the labels
//!   and lists themselves are known;
//! - lists the evidence paths the rule reads (the facts a decision records) and the helper
//!   calls with literal arguments (whose results are recorded too);
//! - builds a [`CostPlan`]: an upper bound on evaluation steps, computed from the sizes of
//!   the evidence lists, maps and strings the rule touches.
//!
//! Why a cost plan: CEL has no loops or recursion, but cel-spec (langdef.md, "Macro
//! Performance") warns that macros "can lead to exponential behavior when nested or
//! chained", as in `[0,1].all(x, [0,1].all(x, ...))` or `["foo","bar"].map(x, [x+x,x+x])
//! .map(x, [x+x,x+x])...`, and leaves limits to the application ("Performance Limits"). Even
//! without literals, `packages.exists(p, vulnerabilities.findings.exists(f, f.package ==
//! p.name))` costs |packages| x |findings| steps. The `cel` crate has no step counter and no
//! way to interrupt an evaluation, so the bound is computed before running, following the
//! spec's model ("Time Complexity"): an expression costs its sub-expressions' costs plus the
//! sizes of their values plus a constant, and a comprehension costs its range's size times
//! its body's cost. Sizes of evidence values are read from the evidence; any other value is
//! no larger than the steps spent building it, so that bounds list literals and `map`
//! results, and a comprehension variable is no larger than the largest item of its range.
//! The plan is a DAG in an arena, so a variable used many times does not copy its range's
//! plan.

use std::collections::BTreeMap;

use ::cel::common::ast::{
    CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SelectExpr, SourceInfo, operators,
};
use semver::VersionReq;

use super::evidence::{self, FactTree, Shape};
use super::helpers::{Helper, JOIN, LiteralCall};
use super::{Position, RuleError};

/// How deep a rule's syntax tree may nest.
pub const MAX_DEPTH: usize = 64;

/// The largest compiled program a `matches` pattern may need (the `regex` crate's
/// `size_limit`).
const PATTERN_SIZE_LIMIT: usize = 64 * 1024;

/// Steps charged for one `matches` call (compiling a small pattern, then a linear scan).
const MATCHES_STEPS: u64 = 64;

/// Standard CEL functions a rule may call (cel-spec, "Standard Definitions"). The helpers,
/// `has`, the comprehension macros and the optional operators are handled separately.
const STANDARD_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "timestamp",
    "duration",
    "dyn",
    "type",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "orValue",
    "hasValue",
    "value",
    "or",
];

/// The operators the parser produces for the syntax rules use.
const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::IN,
];

/// Type names a rule may write, as in `type(x) == string`.
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The comprehension macros, with the argument counts they take after the variable.
const COMPREHENSIONS: &[(&str, usize)] = &[
    ("all", 1),
    ("exists", 1),
    ("exists_one", 1),
    ("existsOne", 1),
    ("filter", 1),
    ("map", 1),
    ("map", 2),
];

/// One step of an evidence path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Segment {
    Field(&'static str),
    /// A label key.
    Key(String),
    /// Every element of a list.
    Element,
    /// Every value of a map, when the key is computed.
    AnyKey,
}

/// A path into the evidence document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Path(Vec<Segment>);

impl Path {
    fn root(name: &'static str) -> Path {
        Path(vec![Segment::Field(name)])
    }

    fn with(&self, segment: Segment) -> Path {
        let mut segments = self.0.clone();
        segments.push(segment);
        Path(segments)
    }

    /// The leading field names: the fact a reference reads. `image.labels["team"]` reads
    /// `image.labels`, `vulnerabilities.findings[].id` reads `vulnerabilities.findings`.
    fn fact(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .map_while(|segment| match segment {
                Segment::Field(name) => Some(*name),
                _ => None,
            })
            .collect()
    }

    /// The largest size of a node this path reaches in `tree`, or 0 when it reaches none.
    fn largest(&self, tree: &FactTree) -> u64 {
        let mut nodes: Vec<&serde_json::Value> = Vec::new();
        let mut segments = self.0.iter();
        match segments.next() {
            Some(Segment::Field(name)) => nodes.extend(tree.root().get(*name)),
            _ => return 0,
        }
        for segment in segments {
            nodes = nodes
                .into_iter()
                .flat_map(|node| children(node, segment))
                .collect();
        }
        nodes.into_iter().map(size).max().unwrap_or(0)
    }
}

fn children<'t>(
    node: &'t serde_json::Value,
    segment: &Segment,
) -> Box<dyn Iterator<Item = &'t serde_json::Value> + 't> {
    match (segment, node) {
        (Segment::Field(name), serde_json::Value::Object(object)) => {
            Box::new(object.get(*name).into_iter())
        }
        (Segment::Key(key), serde_json::Value::Object(object)) => {
            Box::new(object.get(key.as_str()).into_iter())
        }
        (Segment::AnyKey, serde_json::Value::Object(object)) => Box::new(object.values()),
        (Segment::Element, serde_json::Value::Array(items)) => Box::new(items.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

/// A node's size in steps: items of a list or map, bytes of a string.
fn size(node: &serde_json::Value) -> u64 {
    let length = match node {
        serde_json::Value::Array(items) => items.len(),
        serde_json::Value::Object(object) => object.len(),
        serde_json::Value::String(text) => text.len(),
        _ => 1,
    };
    u64::try_from(length).unwrap_or(u64::MAX)
}

/// An index into a [`CostPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeId(usize);

#[derive(Debug, Clone)]
enum CostNode {
    Steps(u64),
    /// The largest size of what an evidence path reaches.
    Largest(Path),
    Sum(Vec<NodeId>),
    Max(Vec<NodeId>),
    Product(NodeId, NodeId),
}

/// An upper bound on a rule's evaluation steps, as a function of the evidence. Nodes only
/// refer to earlier nodes, so one pass computes every value.
#[derive(Debug, Clone, Default)]
pub(crate) struct CostPlan {
    nodes: Vec<CostNode>,
}

impl CostPlan {
    /// The bound for `tree`, or for an evidence document with nothing in it.
    pub(crate) fn bound(&self, tree: Option<&FactTree>) -> u64 {
        let mut values: Vec<u64> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let value_of = |id: &NodeId| values.get(id.0).copied().unwrap_or(u64::MAX);
            let value = match node {
                CostNode::Steps(steps) => *steps,
                CostNode::Largest(path) => tree.map_or(0, |tree| path.largest(tree)),
                CostNode::Sum(parts) => parts
                    .iter()
                    .fold(0, |total: u64, part| total.saturating_add(value_of(part))),
                CostNode::Max(parts) => parts.iter().map(value_of).max().unwrap_or(0),
                CostNode::Product(left, right) => value_of(left).saturating_mul(value_of(right)),
            };
            values.push(value);
        }
        values.last().copied().unwrap_or(0)
    }

    fn push(&mut self, node: CostNode) -> NodeId {
        self.nodes.push(node);
        NodeId(self.nodes.len() - 1)
    }
}

/// What the analysis found in a rule.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    /// The facts read, as field names from the top, without repeats, in order of reading.
    pub(crate) facts: Vec<Vec<&'static str>>,
    /// Helper calls with literal arguments.
    pub(crate) calls: Vec<LiteralCall>,
    /// The top-level names the rule reads directly.
    pub(crate) variables: Vec<&'static str>,
    /// The helpers the rule calls.
    pub(crate) helpers: Vec<Helper>,
    pub(crate) cost: CostPlan,
}

/// Analyzes `ast`, parsed without macro expansion from `source` with `info`.
pub(crate) fn analyze(
    ast: &IdedExpr,
    source: &str,
    info: &SourceInfo,
) -> Result<Analysis, RuleError> {
    let mut analyzer = Analyzer {
        source,
        info,
        scopes: Vec::new(),
        facts: Vec::new(),
        calls: Vec::new(),
        variables: Vec::new(),
        helpers: Vec::new(),
        plan: CostPlan::default(),
        largest: BTreeMap::new(),
    };
    let rule = analyzer.expr(ast, 0)?;
    // The last node is the whole rule's cost.
    analyzer.sum(&[rule.cost]);
    Ok(Analysis {
        facts: analyzer.facts,
        calls: analyzer.calls,
        variables: analyzer.variables,
        helpers: analyzer.helpers,
        cost: analyzer.plan,
    })
}

/// What a comprehension variable stands for.
#[derive(Debug, Clone)]
enum Binding {
    /// An element of an evidence list.
    Evidence(Path, &'static Shape),
    /// Anything else, no larger than `size`.
    Value { size: NodeId },
}

/// An expression's analysis.
#[derive(Debug, Clone)]
struct Typed {
    cost: NodeId,
    /// A bound on the size of the value.
    size: NodeId,
    /// A bound on the size of each item, if the value is a list or a map.
    item_size: NodeId,
    /// The evidence node the expression is, if it is one.
    node: Option<&'static Shape>,
    /// The evidence elements of the list the expression is, if they are.
    elements: Option<(Path, &'static Shape)>,
}

/// An expression that reads the evidence.
#[derive(Debug, Clone)]
struct Reference {
    path: Path,
    shape: &'static Shape,
    /// Starts at a top-level name, rather than at a comprehension variable.
    rooted: bool,
    /// The cost of computed keys along the way.
    keys: Vec<NodeId>,
}

impl Reference {
    fn with(mut self, segment: Segment, shape: &'static Shape) -> Reference {
        self.path = self.path.with(segment);
        self.shape = shape;
        self
    }

    fn describe(&self) -> String {
        let mut text = String::new();
        for segment in &self.path.0 {
            match segment {
                Segment::Field(name) if text.is_empty() => text.push_str(name),
                Segment::Field(name) => {
                    text.push('.');
                    text.push_str(name);
                }
                Segment::Key(key) => {
                    text.push('[');
                    text.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    text.push(']');
                }
                Segment::Element | Segment::AnyKey => text.push_str("[]"),
            }
        }
        text
    }
}

struct Analyzer<'a> {
    source: &'a str,
    info: &'a SourceInfo,
    scopes: Vec<(String, Binding)>,
    facts: Vec<Vec<&'static str>>,
    calls: Vec<LiteralCall>,
    variables: Vec<&'static str>,
    helpers: Vec<Helper>,
    plan: CostPlan,
    largest: BTreeMap<Path, NodeId>,
}

impl Analyzer<'_> {
    fn at(&self, id: u64) -> Position {
        let offset = self
            .info
            .offset_for(id)
            .map_or(0, |(start, _)| usize::try_from(start).unwrap_or(usize::MAX));
        Position::of_byte(self.source, offset)
    }

    fn steps(&mut self, steps: u64) -> NodeId {
        self.plan.push(CostNode::Steps(steps))
    }

    fn sum(&mut self, parts: &[NodeId]) -> NodeId {
        self.plan.push(CostNode::Sum(parts.to_vec()))
    }

    fn product(&mut self, left: NodeId, right: NodeId) -> NodeId {
        self.plan.push(CostNode::Product(left, right))
    }

    fn largest(&mut self, path: &Path) -> NodeId {
        if let Some(id) = self.largest.get(path) {
            return *id;
        }
        let id = self.plan.push(CostNode::Largest(path.clone()));
        self.largest.insert(path.clone(), id);
        id
    }

    fn record_fact(&mut self, fact: Vec<&'static str>) {
        if !fact.is_empty() && !self.facts.contains(&fact) {
            self.facts.push(fact);
        }
    }

    fn record_call(&mut self, call: LiteralCall) {
        if !self.calls.contains(&call) {
            self.calls.push(call);
        }
    }

    /// A value computed in `cost` steps, no larger than that.
    fn computed(&self, cost: NodeId) -> Typed {
        Typed {
            cost,
            size: cost,
            item_size: cost,
            node: None,
            elements: None,
        }
    }

    /// A value of size 1 computed in `cost` steps, such as a boolean.
    fn scalar(&mut self, cost: NodeId) -> Typed {
        let one = self.steps(1);
        Typed {
            cost,
            size: one,
            item_size: one,
            node: None,
            elements: None,
        }
    }

    fn check_depth(&self, expr: &IdedExpr, depth: usize) -> Result<(), RuleError> {
        if depth > MAX_DEPTH {
            return Err(RuleError::TooDeep {
                at: self.at(expr.id),
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn expr(&mut self, expr: &IdedExpr, depth: usize) -> Result<Typed, RuleError> {
        self.check_depth(expr, depth)?;
        if let Some(reference) = self.reference(expr, depth)? {
            return Ok(self.read(reference));
        }
        match &expr.expr {
            Expr::Literal(_) => {
                let one = self.steps(1);
                Ok(self.scalar(one))
            }
            Expr::Ident(name) => self.ident(expr.id, name),
            Expr::Select(select) => self.select_on_value(select, depth),
            Expr::Call(call) => self.call(expr.id, call, depth),
            Expr::List(list) => self.collection(list.elements.iter(), depth),
            Expr::Map(map) => {
                let mut parts = Vec::with_capacity(map.entries.len() * 2);
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(entry) => {
                            parts.push(&entry.key);
                            parts.push(&entry.value);
                        }
                        EntryExpr::StructField(field) => parts.push(&field.value),
                    }
                }
                self.collection(parts.into_iter(), depth)
            }
            Expr::Struct(_) | Expr::Comprehension(_) | Expr::Unspecified => {
                Err(RuleError::Unsupported {
                    at: self.at(expr.id),
                    what: "message construction",
                })
            }
        }
    }

    /// A list or map literal: its items' costs, and as many items as it has. (A map's keys
    /// and values both count as items, which only overestimates.)
    fn collection<'e>(
        &mut self,
        items: impl Iterator<Item = &'e IdedExpr>,
        depth: usize,
    ) -> Result<Typed, RuleError> {
        let mut parts = vec![self.steps(1)];
        let mut sizes = Vec::new();
        for item in items {
            let item = self.expr(item, depth + 1)?;
            parts.push(item.cost);
            sizes.push(item.size);
        }
        let count = self.steps(u64::try_from(sizes.len()).unwrap_or(u64::MAX));
        let item_size = self.plan.push(CostNode::Max(sizes));
        let cost = self.sum(&parts);
        Ok(Typed {
            cost,
            size: count,
            item_size,
            node: None,
            elements: None,
        })
    }

    /// An evidence path, if `expr` is one.
    fn reference(&mut self, expr: &IdedExpr, depth: usize) -> Result<Option<Reference>, RuleError> {
        self.check_depth(expr, depth)?;
        match &expr.expr {
            Expr::Ident(name) => Ok(self.lookup(name)),
            Expr::Select(select) if !select.test => {
                match self.reference(&select.operand, depth + 1)? {
                    Some(base) => self.field(expr.id, base, &select.field).map(Some),
                    None => Ok(None),
                }
            }
            Expr::Call(call) if call.func_name == operators::INDEX && call.target.is_none() => {
                let [operand, key] = call.args.as_slice() else {
                    return Ok(None);
                };
                match self.reference(operand, depth + 1)? {
                    Some(base) => self.index(expr.id, base, key, depth).map(Some),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    fn lookup(&self, name: &str) -> Option<Reference> {
        if let Some((_, binding)) = self.scopes.iter().rev().find(|(bound, _)| bound == name) {
            return match binding {
                Binding::Evidence(path, shape) => Some(Reference {
                    path: path.clone(),
                    shape,
                    rooted: false,
                    keys: Vec::new(),
                }),
                Binding::Value { .. } => None,
            };
        }
        self.lookup_root(name)
    }

    fn field(&self, id: u64, base: Reference, name: &str) -> Result<Reference, RuleError> {
        match base.shape {
            Shape::Object(fields) => match fields.iter().find(|field| field.name == name) {
                Some(field) => Ok(base.with(Segment::Field(field.name), &field.shape)),
                None => Err(RuleError::UnknownField {
                    at: self.at(id),
                    path: format!("{}.{name}", base.describe()),
                }),
            },
            Shape::StringMap => Ok(base.with(Segment::Key(name.to_owned()), &Shape::String)),
            _ => Err(RuleError::NotAnObject {
                at: self.at(id),
                path: base.describe(),
            }),
        }
    }

    fn index(
        &mut self,
        id: u64,
        mut base: Reference,
        key: &IdedExpr,
        depth: usize,
    ) -> Result<Reference, RuleError> {
        let literal = string_literal(key);
        match (base.shape, literal) {
            (Shape::Object(_), Some(name)) => self.field(id, base, name),
            (Shape::Object(_), None) => Err(RuleError::ComputedField {
                at: self.at(id),
                path: base.describe(),
            }),
            (Shape::StringMap, Some(name)) => {
                Ok(base.with(Segment::Key(name.to_owned()), &Shape::String))
            }
            (Shape::StringMap, None) => {
                base.keys.push(self.expr(key, depth + 1)?.cost);
                Ok(base.with(Segment::AnyKey, &Shape::String))
            }
            (Shape::List(element), _) => {
                base.keys.push(self.expr(key, depth + 1)?.cost);
                Ok(base.with(Segment::Element, element))
            }
            _ => Err(RuleError::NotIndexable {
                at: self.at(id),
                path: base.describe(),
            }),
        }
    }

    /// Reading an evidence node: recorded as a fact, and charged its size (it may be
    /// copied).
    fn read(&mut self, reference: Reference) -> Typed {
        if reference.rooted {
            let fact = reference.path.fact();
            if let Some(root) = fact.first()
                && !self.variables.contains(root)
            {
                self.variables.push(root);
            }
            self.record_fact(fact);
        }
        let size = self.largest(&reference.path);
        let mut parts = reference.keys.clone();
        parts.push(self.steps(1));
        parts.push(size);
        let cost = self.sum(&parts);
        let (item_size, elements) = match reference.shape {
            Shape::List(element) => {
                let path = reference.path.with(Segment::Element);
                (self.largest(&path), Some((path, *element)))
            }
            Shape::StringMap => (self.largest(&reference.path.with(Segment::AnyKey)), None),
            _ => (size, None),
        };
        Typed {
            cost,
            size,
            item_size,
            node: Some(reference.shape),
            elements,
        }
    }

    fn ident(&mut self, id: u64, name: &str) -> Result<Typed, RuleError> {
        let bound = self
            .scopes
            .iter()
            .rev()
            .find(|(bound, _)| bound == name)
            .map(|(_, binding)| binding.clone());
        match bound {
            Some(Binding::Value { size }) => {
                let one = self.steps(1);
                let cost = self.sum(&[one, size]);
                Ok(Typed {
                    cost,
                    size,
                    item_size: size,
                    node: None,
                    elements: None,
                })
            }
            // Names bound to evidence elements are references, handled before.
            _ if TYPE_NAMES.contains(&name) => {
                let one = self.steps(1);
                Ok(self.scalar(one))
            }
            _ => Err(RuleError::UnknownIdentifier {
                at: self.at(id),
                name: name.to_owned(),
            }),
        }
    }

    /// A field of a value that is not evidence, such as a map literal.
    fn select_on_value(&mut self, select: &SelectExpr, depth: usize) -> Result<Typed, RuleError> {
        let operand = self.expr(&select.operand, depth + 1)?;
        let one = self.steps(1);
        let cost = self.sum(&[one, operand.cost]);
        Ok(Typed {
            cost,
            size: operand.item_size,
            item_size: operand.item_size,
            node: None,
            elements: None,
        })
    }

    fn call(&mut self, id: u64, call: &CallExpr, depth: usize) -> Result<Typed, RuleError> {
        let name = call.func_name.as_str();
        if let Some(target) = &call.target {
            let takes = call.args.len().saturating_sub(1);
            if COMPREHENSIONS.contains(&(name, takes)) {
                return self.comprehension(id, name, target, &call.args, depth);
            }
        }
        if let Some(helper) = Helper::from_name(name) {
            return self.helper(id, helper, call, depth);
        }
        match name {
            operators::HAS if call.target.is_none() => self.presence_test(id, call, depth),
            operators::OPT_SELECT | operators::OPT_INDEX if call.target.is_none() => {
                self.optional(id, call, depth)
            }
            "matches" => {
                self.check_pattern(id, call)?;
                let extra = self.steps(MATCHES_STEPS);
                self.plain_call(call, depth, &[extra])
            }
            JOIN if call.target.is_some() && call.args.len() == 1 => {
                self.plain_call(call, depth, &[])
            }
            _ if STANDARD_FUNCTIONS.contains(&name) || OPERATORS.contains(&name) => {
                self.plain_call(call, depth, &[])
            }
            _ => Err(RuleError::UnknownFunction {
                at: self.at(id),
                name: name.to_owned(),
            }),
        }
    }

    /// A call costing its operands' costs and sizes, plus `extra`; its result is no larger.
    fn plain_call(
        &mut self,
        call: &CallExpr,
        depth: usize,
        extra: &[NodeId],
    ) -> Result<Typed, RuleError> {
        let mut parts = vec![self.steps(1)];
        parts.extend_from_slice(extra);
        for operand in call.target.iter().map(AsRef::as_ref).chain(&call.args) {
            let operand = self.expr(operand, depth + 1)?;
            parts.push(operand.cost);
            parts.push(operand.size);
        }
        let cost = self.sum(&parts);
        Ok(self.computed(cost))
    }

    fn comprehension(
        &mut self,
        id: u64,
        name: &str,
        target: &IdedExpr,
        args: &[IdedExpr],
        depth: usize,
    ) -> Result<Typed, RuleError> {
        let Some((
            IdedExpr {
                expr: Expr::Ident(variable),
                ..
            },
            bodies,
        )) = args.split_first()
        else {
            return Err(RuleError::Unsupported {
                at: self.at(id),
                what: "a comprehension without a variable name",
            });
        };
        let range = self.expr(target, depth + 1)?;
        let binding = match (range.node, &range.elements) {
            (_, Some((path, shape))) => Binding::Evidence(path.clone(), shape),
            (Some(Shape::StringMap) | None, None) => Binding::Value {
                size: range.item_size,
            },
            (Some(_), None) => {
                return Err(RuleError::NotIterable {
                    at: self.at(target.id),
                });
            }
        };
        self.scopes.push((variable.clone(), binding));
        let mut steps = vec![self.steps(1)];
        let mut failure = None;
        for body in bodies {
            match self.expr(body, depth + 1) {
                Ok(body) => steps.push(body.cost),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        self.scopes.pop();
        if let Some(error) = failure {
            return Err(error);
        }
        // The last body gives `map` its items.
        let last_body = steps.last().copied().unwrap_or(range.item_size);
        let per_item = self.sum(&steps);
        let loop_cost = self.product(range.size, per_item);
        let cost = self.sum(&[range.cost, loop_cost]);
        Ok(match name {
            "filter" => Typed {
                cost,
                size: range.size,
                item_size: range.item_size,
                node: None,
                elements: range.elements,
            },
            "map" => Typed {
                cost,
                size: range.size,
                item_size: last_body,
                node: None,
                elements: None,
            },
            _ => self.scalar(cost),
        })
    }

    fn helper(
        &mut self,
        id: u64,
        helper: Helper,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, RuleError> {
        if call.target.is_some() || call.args.len() != helper.arity() {
            return Err(RuleError::HelperCall {
                at: self.at(id),
                function: helper.name(),
                arguments: helper.arity(),
            });
        }
        let mut parts = vec![self.steps(1)];
        let mut sizes = Vec::with_capacity(call.args.len());
        for argument in &call.args {
            let argument = self.expr(argument, depth + 1)?;
            parts.push(argument.cost);
            sizes.push(argument.size);
        }
        if !self.helpers.contains(&helper) {
            self.helpers.push(helper);
        }
        let read = self.read_path(helper.reads());
        if let Some(reference) = &read {
            self.record_fact(reference.path.fact());
        }
        self.literal_call(id, helper, &call.args)?;
        // `signed_by` and `has_package` look up a set built once per evaluation; the other
        // helpers walk what they read.
        match (helper, &read, sizes.as_slice()) {
            (Helper::LicenseIn, Some(licenses), [allowed]) => {
                let licenses = self.largest(&licenses.path);
                let comparisons = self.product(licenses, *allowed);
                parts.push(comparisons);
            }
            (Helper::CriticalIds, Some(findings), []) => {
                let size = self.largest(&findings.path);
                let ids = findings
                    .path
                    .with(Segment::Element)
                    .with(Segment::Field("id"));
                let item_size = self.largest(&ids);
                parts.push(size);
                let cost = self.sum(&parts);
                return Ok(Typed {
                    cost,
                    size,
                    item_size,
                    node: None,
                    elements: None,
                });
            }
            _ => {}
        }
        let cost = self.sum(&parts);
        Ok(self.scalar(cost))
    }

    /// The evidence path of a helper's fact.
    fn read_path(&self, fields: &[&str]) -> Option<Reference> {
        let (root, rest) = fields.split_first()?;
        let mut reference = self.lookup_root(root)?;
        for name in rest {
            reference = self.field(0, reference, name).ok()?;
        }
        Some(reference)
    }

    fn lookup_root(&self, name: &str) -> Option<Reference> {
        let (name, shape) = evidence::root_field(name)?;
        Some(Reference {
            path: Path::root(name),
            shape,
            rooted: true,
            keys: Vec::new(),
        })
    }

    /// Checks literal arguments, and records calls made only of literals.
    fn literal_call(
        &mut self,
        id: u64,
        helper: Helper,
        args: &[IdedExpr],
    ) -> Result<(), RuleError> {
        match (helper, args) {
            (Helper::SignedBy, [argument]) => {
                if let Some(authority) = string_literal(argument) {
                    self.record_call(LiteralCall::SignedBy(authority.to_owned()));
                }
            }
            (Helper::HasPackage, [argument]) => {
                if let Some(name) = string_literal(argument) {
                    self.record_call(LiteralCall::HasPackage(name.to_owned()));
                }
            }
            (Helper::LicenseIn, [argument]) => {
                if let Expr::List(list) = &argument.expr {
                    let allowed: Option<Vec<String>> = list
                        .elements
                        .iter()
                        .map(|element| string_literal(element).map(str::to_owned))
                        .collect();
                    if let Some(allowed) = allowed {
                        self.record_call(LiteralCall::LicenseIn(allowed));
                    }
                }
            }
            (Helper::CriticalIds, []) => self.record_call(LiteralCall::CriticalIds),
            (Helper::SemverSatisfies, [_, range]) => {
                if let Some(range) = string_literal(range) {
                    VersionReq::parse(range).map_err(|error| RuleError::InvalidArgument {
                        at: self.at(id),
                        function: helper.name(),
                        reason: error.to_string(),
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `has(x.f)`: allowed on label keys and on values that are not evidence.
    fn presence_test(
        &mut self,
        id: u64,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, RuleError> {
        let [
            IdedExpr {
                expr: Expr::Select(select),
                ..
            },
        ] = call.args.as_slice()
        else {
            return Err(RuleError::Unsupported {
                at: self.at(id),
                what: "has() without a field selection",
            });
        };
        match self.reference(&select.operand, depth + 1)? {
            Some(base) if matches!(base.shape, Shape::StringMap) => {
                let read = self.read(base);
                Ok(self.computed(read.cost))
            }
            Some(base) => Err(RuleError::PresenceTest {
                at: self.at(id),
                path: format!("{}.{}", base.describe(), select.field),
            }),
            None => {
                let operand = self.expr(&select.operand, depth + 1)?;
                Ok(self.computed(operand.cost))
            }
        }
    }

    /// `x.?f` and `x[?k]`: allowed on labels, on lists, and on values that are not evidence.
    fn optional(&mut self, id: u64, call: &CallExpr, depth: usize) -> Result<Typed, RuleError> {
        let [operand, key] = call.args.as_slice() else {
            return Err(RuleError::Unsupported {
                at: self.at(id),
                what: "an optional selection without an operand",
            });
        };
        let key = self.expr(key, depth + 1)?;
        let operand = match self.reference(operand, depth + 1)? {
            Some(base) if matches!(base.shape, Shape::StringMap | Shape::List(_)) => {
                self.read(base)
            }
            Some(base) => {
                return Err(RuleError::PresenceTest {
                    at: self.at(id),
                    path: base.describe(),
                });
            }
            None => self.expr(operand, depth + 1)?,
        };
        let one = self.steps(1);
        let cost = self.sum(&[one, key.cost, operand.cost]);
        Ok(Typed {
            cost,
            size: operand.item_size,
            item_size: operand.item_size,
            node: None,
            elements: None,
        })
    }

    /// `matches` needs a literal pattern that compiles small.
    fn check_pattern(&self, id: u64, call: &CallExpr) -> Result<(), RuleError> {
        let invalid = |reason: String| RuleError::InvalidArgument {
            at: self.at(id),
            function: "matches",
            reason,
        };
        let pattern = call
            .args
            .last()
            .and_then(string_literal)
            .ok_or_else(|| invalid("the pattern must be a string literal".to_owned()))?;
        regex::RegexBuilder::new(pattern)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(|_| ())
            .map_err(|error| invalid(error.to_string()))
    }
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(text)) => Some(text.inner()),
        _ => None,
    }
}
