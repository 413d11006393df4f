//! Promotion rules: which tagged images a rule considers (`from` and one tag filter), where
//! it would put them (`to` and `tag` templates), and whether their evidence lets them go
//! (`when`, CEL conditions that must all hold).
//!
//! A rule decides; it never acts (the promotion worker copies and signs). The verdict of one
//! image is:
//! - `pending` when any condition needs a fact that does not exist yet (the image is not
//!   scanned, has no SBOM): unscanned is never clean, and the rule is asked again when the
//!   evidence changes;
//! - `rejected` when every fact is known and a condition fails (or cannot be evaluated:
//!   a rule that errs fails closed);
//! - `promoted` when every condition holds.
//!
//! Templates follow Docker Trusted Registry's promotion codes: `%n` the original tag, `%Y %m
//! %d %H %M %S` the UTC date and time of the decision, `%%` a percent sign; plus `{1}`, `{2}`…
//! for the captures of `tags_regex`, `{name}` for what the repository has beyond the literal
//! segments of `from` (`dev/**` and `dev/app` give `app`) and `{repo}` for the whole source
//! repository. The result must be a valid repository name or tag, or the rule rejects.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use oci::{RepositoryName, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cel::{self, CompiledRule, Evidence, Verdict};
use crate::glob::RepositoryGlob;

/// Longest `tags_regex`, and the compiled size it may reach.
const MAX_REGEX_BYTES: usize = 1024;
const MAX_REGEX_SIZE: usize = 1 << 16;
/// Most conditions in one rule.
const MAX_CONDITIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    #[error("promotion {name:?}: the name must be 1-64 of a-z, 0-9, '-', '_' or '.'")]
    Name { name: String },
    #[error("promotion {name:?}: {field}: {reason}")]
    Field {
        name: String,
        field: &'static str,
        reason: String,
    },
    #[error("promotion {name:?}: when[{index}]: {source}")]
    Condition {
        name: String,
        index: usize,
        #[source]
        source: cel::RuleError,
    },
    #[error("the {what} template {template:?} gives {value:?}, which is not valid: {reason}")]
    Template {
        what: &'static str,
        template: String,
        value: String,
        reason: String,
    },
}

/// A promotion rule as written in the configuration file or sent to the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    pub name: String,
    /// Repository glob (`*` one segment, `**` any number).
    pub from: String,
    /// A tag glob (`*` any characters, `?` one); at most one of the three tag filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_regex: Option<String>,
    /// A Cargo-style version range the tag (read as a version) must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_semver: Option<String>,
    /// Target repository template.
    pub to: String,
    /// Target tag template.
    #[serde(default = "original_tag")]
    pub tag: String,
    #[serde(default)]
    pub when: Vec<Condition>,
    /// Sign the promoted digest with the server key (authority `bonded`).
    #[serde(default)]
    pub sign: bool,
    /// Signatures, SBOMs and attestations follow the image.
    #[serde(default = "yes")]
    pub copy_referrers: bool,
    /// The target tag can be neither moved nor deleted afterwards.
    #[serde(default)]
    pub immutable: bool,
}

/// One condition: CEL text, or CEL text with a CEL message for when it fails (for example
/// `"'critical findings: ' + critical_ids().join(', ')"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Rule(String),
    WithMessage { rule: String, message: String },
}

impl Condition {
    pub fn compile(&self) -> Result<CompiledRule, cel::RuleError> {
        match self {
            Condition::Rule(text) => cel::compile(text),
            Condition::WithMessage { rule, message } => cel::compile(rule)?.with_message(message),
        }
    }
}

fn original_tag() -> String {
    "%n".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
enum TagFilter {
    Any,
    Glob(regex::Regex),
    Regex(regex::Regex),
    Semver(semver::VersionReq),
}

/// A checked, compiled rule (shared as `Arc<PromotionRule>`).
#[derive(Debug)]
pub struct PromotionRule {
    config: PromotionConfig,
    from: RepositoryGlob,
    tags: TagFilter,
    when: Vec<CompiledRule>,
    digest: String,
}

/// How a candidate matched: what the templates may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub name: String,
    pub captures: Vec<String>,
}

/// Where a promotion puts an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub repository: String,
    pub tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Promoted,
    Pending,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::Pending => "pending",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One condition's result.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionResult {
    pub when: String,
    #[serde(flatten)]
    pub verdict: ConditionVerdict,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ConditionVerdict {
    Pass,
    Fail { message: Option<String> },
    Pending { missing: Vec<String> },
    Error { error: String },
}

/// A rule's decision about one image, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub rule: String,
    pub verdict: Outcome,
    pub conditions: Vec<ConditionResult>,
    /// The failing or pending conditions, in words.
    pub reasons: Vec<String>,
    /// Every fact the conditions read, by path.
    pub facts: BTreeMap<String, Value>,
    /// SHA-256 of the rule's canonical JSON.
    pub policy_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

impl Decision {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }
}

pub fn valid_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl PromotionRule {
    pub fn new(config: PromotionConfig) -> Result<PromotionRule, PromotionError> {
        let name = config.name.clone();
        if !valid_rule_name(&name) {
            return Err(PromotionError::Name { name });
        }
        let field = |field: &'static str, reason: String| PromotionError::Field {
            name: name.clone(),
            field,
            reason,
        };
        let from =
            RepositoryGlob::from_str(&config.from).map_err(|e| field("from", e.to_string()))?;
        let tags = match (&config.tags, &config.tags_regex, &config.tags_semver) {
            (None, None, None) => TagFilter::Any,
            (Some(glob), None, None) => {
                TagFilter::Glob(tag_glob(glob).map_err(|e| field("tags", e))?)
            }
            (None, Some(re), None) => {
                TagFilter::Regex(anchored_regex(re).map_err(|e| field("tags_regex", e))?)
            }
            (None, None, Some(range)) => TagFilter::Semver(
                semver::VersionReq::parse(range)
                    .map_err(|e| field("tags_semver", e.to_string()))?,
            ),
            _ => {
                return Err(field(
                    "tags",
                    "give at most one of tags, tags_regex and tags_semver".into(),
                ));
            }
        };
        if config.to.is_empty() {
            return Err(field(
                "to",
                "the target repository template is empty".into(),
            ));
        }
        if config.tag.is_empty() {
            return Err(field("tag", "the target tag template is empty".into()));
        }
        if config.when.len() > MAX_CONDITIONS {
            return Err(field(
                "when",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        let when = config
            .when
            .iter()
            .enumerate()
            .map(|(index, condition)| {
                condition
                    .compile()
                    .map_err(|source| PromotionError::Condition {
                        name: name.clone(),
                        index,
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let canonical = serde_json::to_string(&config).unwrap_or_default();
        let digest = format!("sha256:{}", cel::policy_digest(&canonical));
        Ok(PromotionRule {
            config,
            from,
            tags,
            when,
            digest,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &PromotionConfig {
        &self.config
    }

    pub fn policy_digest(&self) -> &str {
        &self.digest
    }

    /// Whether images of `repository` can match (before their tag is known).
    pub fn considers_repository(&self, repository: &str) -> bool {
        self.from.matches(repository)
    }

    /// Whether the rule considers `repository:tag`, and what its templates may use.
    pub fn matches(&self, repository: &str, tag: &str) -> Option<Match> {
        if !self.from.matches(repository) {
            return None;
        }
        let captures = match &self.tags {
            TagFilter::Any => Vec::new(),
            TagFilter::Glob(re) => {
                re.is_match(tag).then_some(())?;
                Vec::new()
            }
            TagFilter::Regex(re) => re
                .captures(tag)?
                .iter()
                .skip(1)
                .map(|c| c.map_or("", |m| m.as_str()).to_owned())
                .collect(),
            TagFilter::Semver(range) => {
                cel::semver_satisfies(tag, range).then_some(())?;
                Vec::new()
            }
        };
        Some(Match {
            name: self.from.remainder(repository).to_owned(),
            captures,
        })
    }

    /// The target of promoting `repository:tag`, decided at `now`.
    pub fn target(
        &self,
        repository: &str,
        tag: &str,
        matched: &Match,
        now: SystemTime,
    ) -> Result<Target, PromotionError> {
        let now: DateTime<Utc> = now.into();
        let fill = |template: &str| expand(template, repository, tag, matched, &now);
        let target_repo = fill(&self.config.to);
        RepositoryName::from_str(&target_repo).map_err(|e| PromotionError::Template {
            what: "repository",
            template: self.config.to.clone(),
            value: target_repo.clone(),
            reason: e.to_string(),
        })?;
        let target_tag = fill(&self.config.tag);
        Tag::from_str(&target_tag).map_err(|e| PromotionError::Template {
            what: "tag",
            template: self.config.tag.clone(),
            value: target_tag.clone(),
            reason: e.to_string(),
        })?;
        Ok(Target {
            repository: target_repo,
            tag: target_tag,
        })
    }

    /// Evaluates every condition over `evidence`.
    pub fn decide(&self, evidence: &Evidence, now: SystemTime) -> Decision {
        let mut conditions = Vec::new();
        let mut facts = BTreeMap::new();
        let mut reasons = Vec::new();
        let (mut pending, mut failed) = (false, false);
        for rule in &self.when {
            let verdict = match cel::evaluate(rule, evidence, now) {
                Ok(evaluation) => {
                    for fact in evaluation.facts {
                        facts.insert(
                            fact.path,
                            serde_json::to_value(fact.value).unwrap_or(Value::Null),
                        );
                    }
                    match evaluation.verdict {
                        Verdict::Pass => ConditionVerdict::Pass,
                        Verdict::Fail { message } => {
                            failed = true;
                            reasons.push(match &message {
                                Some(m) => format!("{} failed: {m}", rule.text()),
                                None => format!("{} failed", rule.text()),
                            });
                            ConditionVerdict::Fail { message }
                        }
                        Verdict::Pending { missing } => {
                            pending = true;
                            reasons.push(format!(
                                "{} is pending: not known yet: {}",
                                rule.text(),
                                missing.join(", ")
                            ));
                            ConditionVerdict::Pending { missing }
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    reasons.push(format!("{} could not be evaluated: {e}", rule.text()));
                    ConditionVerdict::Error {
                        error: e.to_string(),
                    }
                }
            };
            conditions.push(ConditionResult {
                when: rule.text().to_owned(),
                verdict,
            });
        }
        let verdict = if pending {
            Outcome::Pending
        } else if failed {
            Outcome::Rejected
        } else {
            Outcome::Promoted
        };
        Decision {
            rule: self.config.name.clone(),
            verdict,
            conditions,
            reasons,
            facts,
            policy_digest: self.digest.clone(),
            target: None,
        }
    }
}

/// A tag glob as an anchored regex: `*` any run of characters, `?` one character.
fn tag_glob(glob: &str) -> Result<regex::Regex, String> {
    if glob.is_empty() || glob.len() > 128 {
        return Err("a tag glob has 1 to 128 characters".into());
    }
    let mut pattern = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            c => pattern.push_str(&regex::escape(&c.to_string())),
        }
    }
    pattern.push('$');
    regex::Regex::new(&pattern).map_err(|e| e.to_string())
}

/// `tags_regex` must match the whole tag, whether or not the author anchored it.
fn anchored_regex(re: &str) -> Result<regex::Regex, String> {
    if re.len() > MAX_REGEX_BYTES {
        return Err(format!("longer than {MAX_REGEX_BYTES} bytes"));
    }
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| e.to_string())
}

fn expand(
    template: &str,
    repository: &str,
    tag: &str,
    matched: &Match,
    now: &DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('n') => out.push_str(tag),
                Some('Y') => out.push_str(&now.format("%Y").to_string()),
                Some('m') => out.push_str(&now.format("%m").to_string()),
                Some('d') => out.push_str(&now.format("%d").to_string()),
                Some('H') => out.push_str(&now.format("%H").to_string()),
                Some('M') => out.push_str(&now.format("%M").to_string()),
                Some('S') => out.push_str(&now.format("%S").to_string()),
                Some('%') => out.push('%'),
                // An unknown code stays as written, and the result fails validation.
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '{' => {
                let mut key = String::new();
                let mut closed = false;
                for k in chars.by_ref() {
                    if k == '}' {
                        closed = true;
                        break;
                    }
                    key.push(k);
                }
                let value = match key.as_str() {
                    "name" => Some(matched.name.as_str()),
                    "repo" => Some(repository),
                    n => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| i.checked_sub(1))
                        .and_then(|i| matched.captures.get(i))
                        .map(String::as_str),
                };
                match (closed, value) {
                    (true, Some(v)) => out.push_str(v),
                    _ => {
                        out.push('{');
                        out.push_str(&key);
                        if closed {
                            out.push('}');
                        }
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn rule(toml: &str) -> PromotionRule {
        let config: PromotionConfig = toml::from_str(toml).expect("toml");
        PromotionRule::new(config).expect("rule")
    }

    #[test]
    fn globs_regexes_and_versions_choose_tags() {
        let r = rule("name = 'a'\nfrom = 'dev/**'\ntags = 'v*'\nto = 'prod/{name}'");
        assert!(r.matches("dev/app", "v1.2").is_some());
        assert!(r.matches("dev/app", "latest").is_none());
        assert!(r.matches("prod/app", "v1").is_none());
        let r = rule(
            "name = 'a'\nfrom = 'dev/**'\ntags_regex = 'v(\\d+)\\.(\\d+)'\nto = 'prod/{name}'\ntag = 'release-{1}-{2}'",
        );
        let m = r.matches("dev/team/app", "v1.22").expect("match");
        assert_eq!(m.captures, ["1", "22"]);
        assert!(
            r.matches("dev/app", "v1.22-rc").is_none(),
            "regexes match the whole tag"
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_700_100_000);
        assert_eq!(
            r.target("dev/team/app", "v1.22", &m, at).expect("target"),
            Target {
                repository: "prod/team/app".into(),
                tag: "release-1-22".into()
            }
        );
        let r = rule(
            "name = 'a'\nfrom = 'dev/*'\ntags_semver = '>=1.2'\nto = 'prod/{repo}'\ntag = '%n-%Y%m%d'",
        );
        let m = r.matches("dev/app", "v1.3.0").expect("match");
        assert!(r.matches("dev/app", "1.1.9").is_none());
        assert!(r.matches("dev/app", "latest").is_none());
        assert_eq!(
            r.target("dev/app", "v1.3.0", &m, at).expect("target"),
            Target {
                repository: "prod/dev/app".into(),
                tag: "v1.3.0-20231116".into()
            }
        );
    }

    #[test]
    fn bad_rules_and_bad_targets_are_refused_with_reasons() {
        let bad = |toml: &str| {
            let config: PromotionConfig = toml::from_str(toml).expect("toml");
            PromotionRule::new(config).expect_err("refused").to_string()
        };
        assert!(bad("name = 'A B'\nfrom = 'dev/**'\nto = 'p'").contains("name"));
        assert!(
            bad("name = 'a'\nfrom = 'dev/**'\ntags = 'v*'\ntags_semver = '1'\nto = 'p'")
                .contains("at most one")
        );
        assert!(
            bad("name = 'a'\nfrom = 'dev/**'\ntags_regex = '('\nto = 'p'").contains("tags_regex")
        );
        assert!(
            bad("name = 'a'\nfrom = 'dev/**'\nto = 'p'\nwhen = ['vulnerabilities.critcal == 0']")
                .contains("when[0]")
        );
        let r = rule("name = 'a'\nfrom = 'dev/**'\nto = 'Prod/{name}'");
        let m = r.matches("dev/app", "v1").expect("match");
        let e = r
            .target("dev/app", "v1", &m, SystemTime::now())
            .expect_err("bad name");
        assert!(e.to_string().contains("Prod/app"), "{e}");
    }
}
