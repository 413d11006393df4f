//! Rules written in CEL (the Common Expression Language, github.com/google/cel-spec) over the
//! evidence Bonded holds about one image.
//!
//! A rule such as `vulnerabilities.critical == 0 && signed_by('ci')` is compiled once with
//! [`compile`] and evaluated with [`CompiledRule::evaluate`] against an [`Evidence`] document
//! and the current time (`now`). The interpreter is the `cel` crate (cel-rust); this module
//! adds the evidence shape, the helper functions (see `helpers`), the pending verdict, the
//! facts a decision records and the cost bound (see `analysis`).
//!
//! What a rule sees: the top-level names `image`, `vulnerabilities`, `packages`, `licenses`,
//! `signatures`, `provenance` (see [`Evidence`] for their fields) and `now`, CEL's standard
//! functions and macros (`size`, `contains`, `startsWith`, `endsWith`, `matches` with a
//! literal pattern, conversions, timestamp accessors, `has` on label keys, `all`, `exists`,
//! `exists_one`, `map`, `filter`), and the helpers `signed_by`, `has_package`, `license_in`,
//! `semver_satisfies`, `critical_ids` and `list.join`.
//!
//! Verdicts: a rule passes, fails, or is pending. Pending means Bonded does not know enough
//! yet, typically because the image has not been scanned; it is never read as "clean".
//! - A missing fact (see `evidence`) is left out of the rule's input, so reading it is an
//!   evaluation error: an undeclared name (`vulnerabilities` before a scan), a missing key
//!   (`image.created`), or a helper's "missing fact" error (`has_package` without an SBOM).
//!   It is never `null`, zero or an empty list, which would let `vulnerabilities.critical ==
//!   0` or `!has_package('log4j-core')` pass.
//! - CEL's `&&`, `||`, `all` and `exists` absorb errors when the other side decides
//!   (cel-spec, langdef.md, "Logical Operators": "if any of their operands uniquely
//!   determines the result (`false` for `&&` and `true` for `||`) the other operand may or
//!   may not be evaluated, and if that evaluation produces a runtime error, it will be
//!   ignored"; "Macros" says the same of `all` and `exists`). So a rule that still evaluates
//!   to a boolean did not depend on the missing fact, and its verdict stands: `signed_by('ci') && vulnerabilities.critical == 0` fails
//!   for an unsigned image whether or not it was scanned, and no scan result could change
//!   that.
//! - A rule whose evaluation fails while it reads a missing fact is pending, listing the
//!   missing facts it reads. One that fails without reading any is an [`EvaluationError`]
//!   (a fault in the rule, such as `1 / 0` or comparing a string with a number), which
//!   callers treat as a denial.
//! - Presence tests on facts (`has(image.created)`, `vulnerabilities.?critical`) are compile
//!   errors, so no rule can turn "not known yet" into a verdict. Known nulls (`image.tag`
//!   of a pull by digest, a finding's `fixed_version`) are values rules compare with `null`.
//! - Field names are checked at compile time, so a typo cannot evaluate to a verdict.
//!
//! Facts: every evaluation lists the evidence paths the rule reads with their values (a
//! value over 1 KiB of JSON is recorded as its SHA-256 digest and size), and the results of
//! helper calls made with literal arguments (`signed_by("ci") = true`). With
//! [`policy_digest`] of the policy text, the rule's text and the verdict, that is a
//! decision record.
//!
//! Limits, because rules also arrive through the API: a rule has at most
//! [`MAX_RULE_BYTES`] bytes, [`MAX_NESTING`] levels of nested brackets, calls and
//! conditionals, and [`MAX_DEPTH`] levels of syntax tree (`a + b + ...` chains). An upper
//! bound of its evaluation steps, computed from the sizes of the evidence it touches, must
//! stay within [`MAX_COST`], checked at compile time (with empty evidence) and again for each
//! evidence document before the rule runs. The `cel` crate counts no steps and cannot be
//! interrupted, so the bound is checked before evaluation rather than enforced during it.

mod analysis;
mod evidence;
mod helpers;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ::cel::{Context, Env, ParseErrors, Program, Value};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

pub use analysis::MAX_DEPTH;
pub use evidence::{
    Evidence, EvidenceError, Finding, Image, Package, Platform, Provenance, Severity, Signature,
    VexStatus, VulnerabilityReport,
};
pub use helpers::{satisfies as semver_satisfies, tag_version};

use analysis::Analysis;
use evidence::FactTree;
use helpers::{Helper, HelperFacts};

/// The longest rule text, in bytes.
pub const MAX_RULE_BYTES: usize = 4096;

/// The most evaluation steps a rule may need. The `cel` interpreter takes roughly 0.2 to
/// 0.5 microseconds per comprehension step in a release build, so this is well under a
/// second in the worst case.
pub const MAX_COST: u64 = 2_000_000;

/// How deeply brackets, calls and conditionals may nest. The `cel` parser is a generated
/// ANTLR parser whose recursion takes about 10 KiB of stack per level when built with
/// `opt-level = 1` (the workspace's dev profile for dependencies) and much less in release,
/// but about 170 KiB per level unoptimized; at this limit a hostile rule needs well under
/// the 2 MiB of a Rust or Tokio thread, as long as dependencies are not built with
/// `opt-level = 0`.
pub const MAX_NESTING: u16 = 32;

/// Facts larger than this, as JSON, are recorded by digest.
const MAX_FACT_BYTES: usize = 1024;

/// CEL's standard library, with the standard macros.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// No macros: parses a rule as written, for the analysis.
static AS_WRITTEN: LazyLock<Env> = LazyLock::new(Env::default);

/// A place in a rule's text: 1-based line and column, the column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` of `source`.
    fn of_byte(source: &str, offset: usize) -> Position {
        let mut position = Position { line: 1, column: 1 };
        for (index, character) in source.char_indices() {
            if index >= offset {
                break;
            }
            if character == '\n' {
                position.line = position.line.saturating_add(1);
                position.column = 1;
            } else {
                position.column = position.column.saturating_add(1);
            }
        }
        position
    }

    /// The position the `cel` parser reports, already 1-based.
    fn of_parser(position: (isize, isize)) -> Position {
        let clamp = |value: isize| u32::try_from(value).unwrap_or(0).max(1);
        Position {
            line: clamp(position.0),
            column: clamp(position.1),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a rule does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the rule is {length} bytes long; the limit is {limit}")]
    TooLong { length: usize, limit: usize },
    #[error("{at}: {message}{}", more_errors(*.more))]
    Syntax {
        at: Position,
        message: String,
        more: usize,
    },
    #[error("{at}: unknown name {name:?}")]
    UnknownIdentifier { at: Position, name: String },
    #[error("{at}: the evidence has no field {path}")]
    UnknownField { at: Position, path: String },
    #[error("{at}: {path} has no fields")]
    NotAnObject { at: Position, path: String },
    #[error("{at}: {path} cannot be indexed")]
    NotIndexable { at: Position, path: String },
    #[error("{at}: a field of {path} must be named literally")]
    ComputedField { at: Position, path: String },
    #[error("{at}: only lists and label maps can be iterated over")]
    NotIterable { at: Position },
    #[error("{at}: unknown function {name:?}")]
    UnknownFunction { at: Position, name: String },
    #[error("{at}: {function} takes {arguments} argument(s) and is not a method")]
    HelperCall {
        at: Position,
        function: &'static str,
        arguments: usize,
    },
    #[error("{at}: invalid argument to {function}: {reason}")]
    InvalidArgument {
        at: Position,
        function: &'static str,
        reason: String,
    },
    #[error(
        "{at}: rules may not test whether {path} is known; a rule that reads a missing fact \
         is pending"
    )]
    PresenceTest { at: Position, path: String },
    #[error("{at}: {what} is not supported in rules")]
    Unsupported { at: Position, what: &'static str },
    #[error("{at}: the rule nests deeper than {limit} levels")]
    TooDeep { at: Position, limit: usize },
    #[error("the rule may take {cost} evaluation steps; the limit is {limit}")]
    TooCostly { cost: u64, limit: u64 },
}

fn more_errors(more: usize) -> String {
    match more {
        0 => String::new(),
        more => format!(" (and {more} more error(s))"),
    }
}

/// Why a compiled rule could not be evaluated. Callers deny on these (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("on this evidence the rule may take {cost} evaluation steps; the limit is {limit}")]
    TooCostly { cost: u64, limit: u64 },
    #[error("the evaluation time is before 1970 or out of range")]
    Clock,
    #[error("the rule failed: {message}")]
    Failed { message: String },
    #[error("the rule gave a {found}, not a boolean")]
    NotBoolean { found: String },
    #[error("the rule's functions could not be declared: {message}")]
    Setup { message: String },
}

/// A compiled CEL expression with its analysis.
#[derive(Debug)]
struct Expression {
    program: Program,
    analysis: Analysis,
}

impl Expression {
    fn compile(text: &str) -> Result<Expression, RuleError> {
        if text.len() > MAX_RULE_BYTES {
            return Err(RuleError::TooLong {
                length: text.len(),
                limit: MAX_RULE_BYTES,
            });
        }
        // First with the lower nesting limit, so the full parse below (which has the `cel`
        // crate's limit of 96) never recurses deeper than MAX_NESTING either.
        let (ast, info) = AS_WRITTEN
            .parser()
            .max_recursion_depth(MAX_NESTING)
            .parse_with_source_info(text)
            .map_err(syntax_error)?;
        let program = ENV.compile(text).map_err(syntax_error)?;
        let analysis = analysis::analyze(&ast, text, &info)?;
        let cost = analysis.cost.bound(None);
        if cost > MAX_COST {
            return Err(RuleError::TooCostly {
                cost,
                limit: MAX_COST,
            });
        }
        Ok(Expression { program, analysis })
    }

    fn check_cost(&self, tree: &FactTree) -> Result<(), EvaluationError> {
        let cost = self.analysis.cost.bound(Some(tree));
        if cost > MAX_COST {
            return Err(EvaluationError::TooCostly {
                cost,
                limit: MAX_COST,
            });
        }
        Ok(())
    }
}

fn syntax_error(errors: ParseErrors) -> RuleError {
    // The `cel` parser reports its recursion limit as a syntax error with this text.
    if let Some(error) = errors
        .errors
        .iter()
        .find(|error| error.msg.contains("Recursion limit of"))
    {
        return RuleError::TooDeep {
            at: Position::of_parser(error.pos),
            limit: usize::from(MAX_NESTING),
        };
    }
    let more = errors.errors.len().saturating_sub(1);
    match errors.errors.into_iter().next() {
        Some(error) => RuleError::Syntax {
            at: Position::of_parser(error.pos),
            message: error.msg,
            more,
        },
        None => RuleError::Syntax {
            at: Position { line: 1, column: 1 },
            message: "the rule could not be parsed".to_owned(),
            more,
        },
    }
}

/// A rule ready to evaluate, as many times as needed.
#[derive(Debug)]
pub struct CompiledRule {
    text: String,
    condition: Expression,
    message: Option<Expression>,
    needs: Needs,
}

/// What the rule and its message read, so evaluation prepares nothing else.
#[derive(Debug, Default)]
struct Needs {
    /// Top-level evidence fields, for the facts.
    roots: Vec<&'static str>,
    /// Top-level names read directly, as CEL variables.
    variables: Vec<&'static str>,
    helpers: Vec<Helper>,
}

impl Needs {
    fn of(expressions: &[&Expression]) -> Needs {
        let mut needs = Needs::default();
        for analysis in expressions.iter().map(|expression| &expression.analysis) {
            let roots = analysis.facts.iter().filter_map(|fact| fact.first());
            add_new(&mut needs.roots, roots.copied());
            add_new(&mut needs.variables, analysis.variables.iter().copied());
            add_new(&mut needs.helpers, analysis.helpers.iter().copied());
        }
        needs
    }
}

fn add_new<T: PartialEq>(list: &mut Vec<T>, items: impl Iterator<Item = T>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// Compiles a rule. Its text must be a CEL expression that evaluates to a boolean.
pub fn compile(text: &str) -> Result<CompiledRule, RuleError> {
    let condition = Expression::compile(text)?;
    Ok(CompiledRule {
        text: text.to_owned(),
        needs: Needs::of(&[&condition]),
        condition,
        message: None,
    })
}

/// Evaluates `rule`; see [`CompiledRule::evaluate`].
pub fn evaluate(
    rule: &CompiledRule,
    evidence: &Evidence,
    now: SystemTime,
) -> Result<Evaluation, EvaluationError> {
    rule.evaluate(evidence, now)
}

impl CompiledRule {
    /// The rule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Adds a message: a CEL expression giving a string, evaluated when the rule fails, for
    /// example `'critical findings: ' + critical_ids().join(', ')`. It is held to the same
    /// checks as the rule.
    pub fn with_message(self, message: &str) -> Result<CompiledRule, RuleError> {
        let message = Expression::compile(message)?;
        Ok(CompiledRule {
            needs: Needs::of(&[&self.condition, &message]),
            message: Some(message),
            ..self
        })
    }

    /// Evaluates the rule against `evidence` at time `now`.
    pub fn evaluate(
        &self,
        evidence: &Evidence,
        now: SystemTime,
    ) -> Result<Evaluation, EvaluationError> {
        let tree = FactTree::new(evidence, &self.needs.roots)?;
        self.condition.check_cost(&tree)?;
        let now = timestamp(now)?;
        let helper_facts = Arc::new(HelperFacts::new(evidence, &self.needs.helpers));
        let variables = tree.variables(&self.needs.variables)?;
        let context = context(variables, &helper_facts, now)?;
        let facts = facts(&self.condition.analysis, &tree, &helper_facts, now);
        let missing = missing(&self.condition.analysis, &tree);
        let verdict = match self.condition.program.execute(&context) {
            Ok(Value::Bool(true)) => Verdict::Pass,
            Ok(Value::Bool(false)) => Verdict::Fail {
                message: self.message(&tree, &context),
            },
            Ok(other) => {
                return Err(EvaluationError::NotBoolean {
                    found: other.type_of().to_string(),
                });
            }
            Err(_) if !missing.is_empty() => Verdict::Pending { missing },
            Err(error) => {
                return Err(EvaluationError::Failed {
                    message: error.to_string(),
                });
            }
        };
        Ok(Evaluation { verdict, facts })
    }

    /// The failure message, or why there is none.
    fn message(&self, tree: &FactTree, context: &Context<'_, '_>) -> Option<String> {
        let message = self.message.as_ref()?;
        let text = match message.check_cost(tree) {
            Err(error) => format!("(no message: {error})"),
            Ok(()) => match message.program.execute(context) {
                Ok(Value::String(text)) => text.to_string(),
                Ok(other) => format!("(no message: it gave a {})", other.type_of()),
                Err(error) => format!("(no message: {error})"),
            },
        };
        Some(text)
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// The facts the rule read.
    pub facts: Vec<Fact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail {
        /// The rule's message, if it has one.
        message: Option<String>,
    },
    /// Not decided yet: the rule needs these missing facts (for example `vulnerabilities`
    /// for an image not scanned yet).
    Pending {
        missing: Vec<String>,
    },
}

/// A fact a rule read: an evidence path such as `vulnerabilities.critical`, or a helper
/// call with literal arguments such as `signed_by("ci")`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub path: String,
    pub value: FactValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactValue {
    Known(Json),
    Missing,
    /// A value too large to record, by the SHA-256 of its JSON.
    Digest {
        sha256: String,
        bytes: usize,
    },
}

impl FactValue {
    fn of(value: Json) -> FactValue {
        match serde_json::to_vec(&value) {
            Ok(bytes) if bytes.len() > MAX_FACT_BYTES => FactValue::Digest {
                sha256: oci::Digest::compute(oci::Algorithm::Sha256, &bytes)
                    .hex()
                    .to_owned(),
                bytes: bytes.len(),
            },
            _ => FactValue::Known(value),
        }
    }
}

/// The SHA-256 of a policy's exact text, in hex, for decision records.
pub fn policy_digest(text: &str) -> String {
    oci::Digest::compute(oci::Algorithm::Sha256, text.as_bytes())
        .hex()
        .to_owned()
}

fn timestamp(now: SystemTime) -> Result<DateTime<Utc>, EvaluationError> {
    let since_epoch = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| EvaluationError::Clock)?;
    let seconds = i64::try_from(since_epoch.as_secs()).map_err(|_| EvaluationError::Clock)?;
    DateTime::from_timestamp(seconds, since_epoch.subsec_nanos()).ok_or(EvaluationError::Clock)
}

fn context(
    variables: Vec<(&str, Value)>,
    helper_facts: &Arc<HelperFacts>,
    now: DateTime<Utc>,
) -> Result<Context<'static, 'static>, EvaluationError> {
    let mut context = Context::with_env(Arc::clone(&ENV));
    for (name, value) in variables {
        context.add_variable_from_value(name, value);
    }
    context.add_variable_from_value(evidence::NOW, Value::Timestamp(now.fixed_offset()));
    helpers::register(&mut context, helper_facts).map_err(|error| EvaluationError::Setup {
        message: error.to_string(),
    })?;
    Ok(context)
}

/// The value at `path` (field names from the top), or `None` where a missing fact stops it.
fn lookup<'t>(tree: &'t FactTree, path: &[&str]) -> Result<&'t Json, String> {
    let mut walked = String::new();
    let mut node: Option<&Json> = None;
    for name in path {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(name);
        let next = match node {
            None => tree.root().get(*name),
            Some(Json::Object(object)) => object.get(*name),
            Some(_) => None,
        };
        node = Some(next.ok_or_else(|| walked.clone())?);
    }
    node.ok_or(walked)
}

fn facts(
    analysis: &Analysis,
    tree: &FactTree,
    helper_facts: &HelperFacts,
    now: DateTime<Utc>,
) -> Vec<Fact> {
    let paths = analysis.facts.iter().map(|path| {
        let value = if path.as_slice() == [evidence::NOW] {
            FactValue::Known(Json::String(now.to_rfc3339()))
        } else {
            lookup(tree, path).map_or(FactValue::Missing, |value| FactValue::of(value.clone()))
        };
        Fact {
            path: path.join("."),
            value,
        }
    });
    let calls = analysis.calls.iter().map(|call| Fact {
        path: call.render(),
        value: call
            .result(helper_facts)
            .map_or(FactValue::Missing, FactValue::of),
    });
    paths.chain(calls).collect()
}

/// The missing facts a rule reads, each named by its shortest missing path.
fn missing(analysis: &Analysis, tree: &FactTree) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for path in &analysis.facts {
        if path.as_slice() == [evidence::NOW] {
            continue;
        }
        if let Err(prefix) = lookup(tree, path)
            && !missing.contains(&prefix)
        {
            missing.push(prefix);
        }
    }
    missing
}
