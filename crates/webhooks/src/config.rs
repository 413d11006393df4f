//! Webhook definitions: the `[[webhook]]` tables of the configuration file and the bodies of
//! `PUT /api/v1/webhooks/<name>` (the same fields), checked and compiled into [`Endpoint`]s.
//!
//! ```toml
//! [[webhook]]
//! name = "ci"
//! url = "https://ci.example/hooks/bonded"
//! events = ["promotion.succeeded", "promotion.rejected", "scan.completed"]   # or ["*"]
//! repositories = ["prod/**"]            # optional filter
//! secret = "whsec_..."                  # Standard Webhooks secret
//! allow_private = false
//!
//! [[webhook]]
//! name = "sign"
//! kind = "gitlab-trigger"               # GitLab's pipeline trigger API
//! url = "https://gitlab.example.com"    # the GitLab instance
//! project = "platform/signing"          # or the numeric id, 42
//! token = "glptt-..."
//! ref = "main"
//! variables = { PROFILE = "release" }
//! events = ["promotion.succeeded"]
//! ```
//!
//! Every definition, wherever it comes from and also when it is read back from the store,
//! passes [`Endpoint::from_row`]: the URL through the target rules of [`crate::target`], event
//! names against [`EventKind::ALL`] (or `*`), repository globs through the [`GlobCompiler`]
//! the server supplies (Bonded's `policy::glob::RepositoryGlob`, so webhooks and policies
//! read globs alike without this crate depending on the policy engine), the secret as a
//! Standard Webhooks `whsec_` secret and the GitLab fields through [`crate::gitlab`].
//! `Debug` never prints a secret or a token.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use store::{GitlabTriggerRow, WebhookDisabled, WebhookKind, WebhookOrigin, WebhookRow};

use crate::cloudevents::EventKind;
use crate::gitlab::{GitlabError, GitlabTrigger, ProjectRef, TriggerToken};
use crate::standard_webhooks::{SignatureError, WebhookSecret};
use crate::target::{TargetError, TargetUrl};

/// Whether a repository matches one glob.
pub type RepositoryMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;
/// Compiles a repository glob (`prod/**`) into a matcher, or says why it is refused.
pub type GlobCompiler = Arc<dyn Fn(&str) -> Result<RepositoryMatcher, String> + Send + Sync>;

/// The longest webhook name.
pub const MAX_NAME_LEN: usize = 64;
/// The longest URL.
pub const MAX_URL_LEN: usize = 2048;
/// The most event names one webhook lists.
pub const MAX_EVENTS: usize = 32;
/// The most repository globs one webhook lists.
pub const MAX_REPOSITORY_GLOBS: usize = 64;
/// The most fixed variables a GitLab trigger carries.
pub const MAX_VARIABLES: usize = 64;
/// The event selector that means every kind.
pub const ALL_EVENTS: &str = "*";

/// Why a definition was refused. Messages name the field and say what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "webhook name {name:?} is not allowed: names are 1 to 64 characters (lower-case letters, \
         digits, '-', '_', '.') starting with a letter or digit"
    )]
    Name { name: String },
    #[error("the body names webhook {body:?} but the path names {path:?}")]
    NameMismatch { path: String, body: String },
    #[error("it is defined twice in the configuration file")]
    Duplicate,
    #[error("`url` has {len} characters; at most {MAX_URL_LEN} are allowed")]
    UrlTooLong { len: usize },
    #[error("`url`: {source}")]
    Url { source: TargetError },
    #[error("`events` must list at least one event kind, or \"*\" for all")]
    NoEvents,
    #[error("`events`: unknown event kind {event:?} (known: {known})")]
    UnknownEvent { event: String, known: String },
    #[error("`{field}` lists {count} entries; at most {limit} are allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("`repositories`: glob {glob:?} is refused: {reason}")]
    Glob { glob: String, reason: String },
    #[error(
        "`secret` is required: a Standard Webhooks secret, \"whsec_\" and 24 to 64 bytes of base64"
    )]
    MissingSecret,
    #[error("`secret`: {source}")]
    Secret { source: SignatureError },
    #[error("`{field}` is not used by kind = \"{kind}\"")]
    NotForKind {
        field: &'static str,
        kind: &'static str,
    },
    #[error("`{field}` is required for kind = \"gitlab-trigger\"")]
    MissingGitlabField { field: &'static str },
    #[error("{source}")]
    Gitlab { source: GitlabError },
}

/// What a webhook calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A signed CloudEvent POSTed to `url`.
    #[default]
    Standard,
    /// GitLab's pipeline trigger API of the GitLab instance at `url`.
    GitlabTrigger,
}

impl TargetKind {
    fn stored(self) -> WebhookKind {
        match self {
            TargetKind::Standard => WebhookKind::Standard,
            TargetKind::GitlabTrigger => WebhookKind::GitlabTrigger,
        }
    }
}

/// A GitLab project: its numeric id or its full path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ProjectSpec {
    Id(u64),
    Path(String),
}

impl ProjectSpec {
    fn text(&self) -> String {
        match self {
            ProjectSpec::Id(id) => id.to_string(),
            ProjectSpec::Path(path) => path.clone(),
        }
    }
}

/// One `[[webhook]]` table, or the body of a PUT (where `name` may be left out: the path
/// names the webhook; and where `secret` and `token` may be left out when replacing a webhook:
/// the stored ones are kept, since they are never shown).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub kind: TargetKind,
    pub events: Vec<String>,
    #[serde(default)]
    pub repositories: Vec<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub allow_private: bool,
    /// `gitlab-trigger`: the project to trigger.
    #[serde(default)]
    pub project: Option<ProjectSpec>,
    /// `gitlab-trigger`: the pipeline trigger token.
    #[serde(default)]
    pub token: Option<String>,
    /// `gitlab-trigger`: the branch or tag to run.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// `gitlab-trigger`: fixed variables added to every trigger.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { Some("<redacted>") } else { None };
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("events", &self.events)
            .field("repositories", &self.repositories)
            .field("secret", &redacted(self.secret.is_some()))
            .field("allow_private", &self.allow_private)
            .field("project", &self.project)
            .field("token", &redacted(self.token.is_some()))
            .field("git_ref", &self.git_ref)
            .field("variables", &self.variables)
            .finish()
    }
}

/// Whether `name` can name a webhook (it appears in URL paths and logs).
pub fn valid_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(allowed)
}

impl WebhookConfig {
    /// The row to store for this definition: `previous` (the stored webhook of that name, when
    /// replacing one) keeps its creation time and, for an API definition, lends its secret or
    /// token when they are left out (a configured webhook states its own). The row is checked
    /// with [`Endpoint::from_row`] before it is returned, and is enabled.
    pub fn to_row(
        &self,
        origin: WebhookOrigin,
        previous: Option<&WebhookRow>,
        now_ms: i64,
        globs: &GlobCompiler,
    ) -> Result<WebhookRow, ConfigError> {
        if !valid_name(&self.name) {
            return Err(ConfigError::Name {
                name: self.name.chars().take(MAX_NAME_LEN + 8).collect(),
            });
        }
        let kind = self.kind.stored();
        let lender = previous.filter(|_| origin == WebhookOrigin::Api);
        let row = WebhookRow {
            name: self.name.clone(),
            origin,
            kind,
            url: self.url.clone(),
            events: self.events.clone(),
            repositories: self.repositories.clone(),
            secret: self
                .secret
                .clone()
                .or_else(|| kept(lender, kind, |p| p.secret.clone())),
            allow_private: self.allow_private,
            gitlab: self.gitlab_row(lender)?,
            disabled: None,
            created_at_ms: previous.map_or(now_ms, |p| p.created_at_ms),
            updated_at_ms: now_ms,
        };
        Endpoint::from_row(&row, globs)?;
        Ok(row)
    }

    fn gitlab_row(
        &self,
        previous: Option<&WebhookRow>,
    ) -> Result<Option<GitlabTriggerRow>, ConfigError> {
        if self.kind == TargetKind::Standard {
            let stray = [
                ("project", self.project.is_some()),
                ("token", self.token.is_some()),
                ("ref", self.git_ref.is_some()),
                ("variables", !self.variables.is_empty()),
            ];
            if let Some((field, _)) = stray.iter().find(|(_, present)| *present) {
                return Err(ConfigError::NotForKind {
                    field,
                    kind: "standard",
                });
            }
            return Ok(None);
        }
        let missing = |field| ConfigError::MissingGitlabField { field };
        let previous_token = kept(previous, WebhookKind::GitlabTrigger, |p| {
            p.gitlab.as_ref().map(|g| g.token.clone())
        });
        Ok(Some(GitlabTriggerRow {
            project: self.project.as_ref().ok_or(missing("project"))?.text(),
            token: self
                .token
                .clone()
                .or(previous_token)
                .ok_or(missing("token"))?,
            git_ref: self.git_ref.clone().ok_or(missing("ref"))?,
            variables: self.variables.clone(),
        }))
    }
}

/// A stored value kept when a replacement of the same kind leaves it out.
fn kept<T>(
    previous: Option<&WebhookRow>,
    kind: WebhookKind,
    value: impl Fn(&WebhookRow) -> Option<T>,
) -> Option<T> {
    previous.filter(|p| p.kind == kind).and_then(value)
}

/// The first name two configured webhooks share, if any.
pub fn first_duplicate(configured: &[WebhookConfig]) -> Option<&str> {
    let mut seen = BTreeSet::new();
    configured
        .iter()
        .map(|webhook| webhook.name.as_str())
        .find(|name| !seen.insert(*name))
}

/// Which events a webhook wants.
pub struct Subscription {
    /// `None` for `*`.
    kinds: Option<BTreeSet<EventKind>>,
    /// Empty: every repository.
    repositories: Vec<RepositoryMatcher>,
}

impl Subscription {
    fn parse(
        events: &[String],
        repositories: &[String],
        globs: &GlobCompiler,
    ) -> Result<Subscription, ConfigError> {
        if events.is_empty() {
            return Err(ConfigError::NoEvents);
        }
        limit("events", events.len(), MAX_EVENTS)?;
        limit("repositories", repositories.len(), MAX_REPOSITORY_GLOBS)?;
        let kinds = if events.iter().any(|e| e == ALL_EVENTS) {
            None
        } else {
            let kinds = events
                .iter()
                .map(|event| {
                    EventKind::from_name(event).ok_or_else(|| ConfigError::UnknownEvent {
                        event: event.chars().take(64).collect(),
                        known: EventKind::ALL.map(EventKind::name).join(", "),
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            Some(kinds)
        };
        let repositories = repositories
            .iter()
            .map(|glob| {
                globs(glob).map_err(|reason| ConfigError::Glob {
                    glob: glob.chars().take(256).collect(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Subscription {
            kinds,
            repositories,
        })
    }

    /// Whether an event of `kind` about `repository` goes to this webhook. Events about no
    /// single repository (`vulndb.updated`) pass any repository filter.
    pub fn wants(&self, kind: EventKind, repository: Option<&str>) -> bool {
        let kind_ok = self
            .kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind));
        let repository_ok = match repository {
            Some(repository) if !self.repositories.is_empty() => {
                self.repositories.iter().any(|matches| matches(repository))
            }
            _ => true,
        };
        kind_ok && repository_ok
    }
}

fn limit(field: &'static str, count: usize, limit: usize) -> Result<(), ConfigError> {
    if count > limit {
        return Err(ConfigError::TooMany {
            field,
            count,
            limit,
        });
    }
    Ok(())
}

/// Where and how a webhook delivers.
#[derive(Debug)]
pub enum Target {
    /// A signed CloudEvent POSTed to `url`.
    Standard {
        url: TargetUrl,
        secret: WebhookSecret,
    },
    /// A GitLab pipeline trigger.
    GitlabTrigger(GitlabTrigger),
}

/// A checked, compiled webhook: what the fan-out and the delivery worker use.
pub struct Endpoint {
    pub name: String,
    pub origin: WebhookOrigin,
    pub target: Target,
    pub subscription: Subscription,
    /// `None` while enabled.
    pub disabled: Option<WebhookDisabled>,
    /// Whether private targets are allowed.
    pub allow_private: bool,
}

impl Endpoint {
    /// Checks and compiles a stored (or about to be stored) webhook.
    pub fn from_row(row: &WebhookRow, globs: &GlobCompiler) -> Result<Endpoint, ConfigError> {
        if row.url.len() > MAX_URL_LEN {
            return Err(ConfigError::UrlTooLong { len: row.url.len() });
        }
        let url = TargetUrl::parse(&row.url, row.allow_private)
            .map_err(|source| ConfigError::Url { source })?;
        let subscription = Subscription::parse(&row.events, &row.repositories, globs)?;
        let target = match row.kind {
            WebhookKind::Standard => {
                let secret = row.secret.as_deref().ok_or(ConfigError::MissingSecret)?;
                Target::Standard {
                    url,
                    secret: WebhookSecret::parse(secret)
                        .map_err(|source| ConfigError::Secret { source })?,
                }
            }
            WebhookKind::GitlabTrigger => {
                if row.secret.is_some() {
                    return Err(ConfigError::NotForKind {
                        field: "secret",
                        kind: "gitlab-trigger",
                    });
                }
                let gitlab = row
                    .gitlab
                    .as_ref()
                    .ok_or(ConfigError::MissingGitlabField { field: "project" })?;
                Target::GitlabTrigger(gitlab_trigger(url, gitlab)?)
            }
        };
        Ok(Endpoint {
            name: row.name.clone(),
            origin: row.origin,
            target,
            subscription,
            disabled: row.disabled.clone(),
            allow_private: row.allow_private,
        })
    }
}

fn gitlab_trigger(url: TargetUrl, row: &GitlabTriggerRow) -> Result<GitlabTrigger, ConfigError> {
    let gitlab = |source| ConfigError::Gitlab { source };
    limit("variables", row.variables.len(), MAX_VARIABLES)?;
    let project = match row.project.parse::<u64>() {
        Ok(id) => ProjectRef::id(id),
        Err(_) => ProjectRef::path(&row.project),
    }
    .map_err(gitlab)?;
    let token = TriggerToken::new(&row.token).map_err(gitlab)?;
    let trigger = GitlabTrigger::new(url, project, &row.git_ref, token, row.variables.clone())
        .map_err(gitlab)?;
    trigger.endpoint().map_err(gitlab)?;
    Ok(trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// Literal names, and `prefix/**`.
    fn globs() -> GlobCompiler {
        Arc::new(|glob: &str| {
            if glob.contains("***") {
                return Err("`***` is not a glob".to_owned());
            }
            let glob = glob.to_owned();
            Ok(Arc::new(move |repo: &str| match glob.strip_suffix("/**") {
                Some(prefix) => repo == prefix || repo.starts_with(&format!("{prefix}/")),
                None => repo == glob,
            }) as RepositoryMatcher)
        })
    }

    fn standard() -> WebhookConfig {
        WebhookConfig {
            name: "ci".to_owned(),
            url: "https://ci.example/hooks".to_owned(),
            events: vec!["scan.completed".to_owned()],
            repositories: vec!["prod/**".to_owned()],
            secret: Some(SECRET.to_owned()),
            ..WebhookConfig::default()
        }
    }

    fn gitlab() -> WebhookConfig {
        WebhookConfig {
            name: "sign".to_owned(),
            url: "https://gitlab.example.com".to_owned(),
            kind: TargetKind::GitlabTrigger,
            events: vec!["promotion.succeeded".to_owned()],
            project: Some(ProjectSpec::Path("platform/signing".to_owned())),
            token: Some("glptt-abc".to_owned()),
            git_ref: Some("main".to_owned()),
            ..WebhookConfig::default()
        }
    }

    fn row(config: &WebhookConfig) -> Result<WebhookRow, ConfigError> {
        config.to_row(WebhookOrigin::Api, None, 5, &globs())
    }

    #[test]
    fn reads_the_issue_s_toml() {
        let text = r#"
            [[webhook]]
            name = "ci"
            url = "https://ci.example/hooks/bonded"
            events = ["promotion.succeeded", "promotion.rejected", "scan.completed"]
            repositories = ["prod/**"]
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            allow_private = false

            [[webhook]]
            name = "sign"
            kind = "gitlab-trigger"
            url = "https://gitlab.example.com"
            project = 42
            token = "glptt-abc"
            ref = "main"
            variables = { PROFILE = "release" }
            events = ["promotion.succeeded"]
        "#;
        #[derive(Debug, Deserialize)]
        struct File {
            webhook: Vec<WebhookConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        let [ci, sign] = &file.webhook[..] else {
            panic!("two webhooks")
        };
        assert_eq!(ci.kind, TargetKind::Standard);
        assert_eq!(sign.project, Some(ProjectSpec::Id(42)));
        let stored = row(sign).unwrap();
        assert_eq!(stored.gitlab.as_ref().unwrap().project, "42");
        assert_eq!(
            stored.gitlab.as_ref().unwrap().variables["PROFILE"],
            "release"
        );
        row(ci).unwrap();
        let unknown: Result<File, _> =
            toml::from_str("[[webhook]]\nurl = \"x\"\nevents = []\nurls = 1");
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = format!("{:?}{:?}", standard(), gitlab());
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(!shown.contains("glptt"), "{shown}");
    }

    #[test]
    fn names_are_checked() {
        for good in ["ci", "a", "ci-2.prod_x", &"a".repeat(MAX_NAME_LEN)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "CI",
            "-ci",
            ".",
            "..",
            "a/b",
            "é",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(!valid_name(bad), "{bad}");
            let config = WebhookConfig {
                name: bad.to_owned(),
                ..standard()
            };
            assert!(
                matches!(row(&config), Err(ConfigError::Name { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_bad_fields_with_a_reason() {
        let cases: Vec<(WebhookConfig, &str)> = vec![
            (
                WebhookConfig {
                    url: "ftp://x.example".into(),
                    ..standard()
                },
                "`url`",
            ),
            (
                WebhookConfig {
                    url: "http://ci.example".into(),
                    ..standard()
                },
                "allow_private",
            ),
            (
                WebhookConfig {
                    url: "https://127.0.0.1/h".into(),
                    ..standard()
                },
                "loopback",
            ),
            (
                WebhookConfig {
                    url: "https://x.example/".repeat(200),
                    ..standard()
                },
                "at most",
            ),
            (
                WebhookConfig {
                    events: vec![],
                    ..standard()
                },
                "at least one",
            ),
            (
                WebhookConfig {
                    events: vec!["scan.done".into()],
                    ..standard()
                },
                "scan.done",
            ),
            (
                WebhookConfig {
                    events: vec!["webhook.test".into()],
                    ..standard()
                },
                "unknown",
            ),
            (
                WebhookConfig {
                    repositories: vec!["a/***".into()],
                    ..standard()
                },
                "a/***",
            ),
            (
                WebhookConfig {
                    secret: None,
                    ..standard()
                },
                "`secret` is required",
            ),
            (
                WebhookConfig {
                    secret: Some("whsec_c2hvcnQ=".into()),
                    ..standard()
                },
                "bytes",
            ),
            (
                WebhookConfig {
                    token: Some("t".into()),
                    ..standard()
                },
                "`token` is not used",
            ),
            (
                WebhookConfig {
                    secret: Some(SECRET.into()),
                    ..gitlab()
                },
                "`secret` is not used",
            ),
            (
                WebhookConfig {
                    project: None,
                    ..gitlab()
                },
                "`project` is required",
            ),
            (
                WebhookConfig {
                    git_ref: None,
                    ..gitlab()
                },
                "`ref` is required",
            ),
            (
                WebhookConfig {
                    token: None,
                    ..gitlab()
                },
                "`token` is required",
            ),
            (
                WebhookConfig {
                    project: Some(ProjectSpec::Path("solo".into())),
                    ..gitlab()
                },
                "project path",
            ),
            (
                WebhookConfig {
                    variables: BTreeMap::from([("BONDED_X".into(), "1".into())]),
                    ..gitlab()
                },
                "reserved",
            ),
        ];
        for (index, (config, expected)) in cases.into_iter().enumerate() {
            let error = row(&config).expect_err(expected).to_string();
            assert!(error.contains(expected), "case {index}: {error}");
        }
        let many = WebhookConfig {
            events: vec!["scan.completed".to_owned(); MAX_EVENTS + 1],
            ..standard()
        };
        assert!(matches!(
            row(&many),
            Err(ConfigError::TooMany {
                field: "events",
                ..
            })
        ));
    }

    #[test]
    fn replacing_keeps_the_stored_secret_and_token() {
        let first = row(&standard()).unwrap();
        let replacement = WebhookConfig {
            secret: None,
            url: "https://ci.example/v2".to_owned(),
            ..standard()
        };
        let second = replacement
            .to_row(WebhookOrigin::Api, Some(&first), 9, &globs())
            .unwrap();
        assert_eq!(second.secret.as_deref(), Some(SECRET));
        assert_eq!((second.created_at_ms, second.updated_at_ms), (5, 9));

        let trigger = row(&gitlab()).unwrap();
        let again = WebhookConfig {
            token: None,
            ..gitlab()
        };
        let replaced = again
            .to_row(WebhookOrigin::Api, Some(&trigger), 9, &globs())
            .unwrap();
        assert_eq!(replaced.gitlab.unwrap().token, "glptt-abc");
        // A webhook of another kind lends nothing.
        let switched = WebhookConfig {
            name: "sign".to_owned(),
            secret: None,
            ..standard()
        };
        assert!(matches!(
            switched.to_row(WebhookOrigin::Api, Some(&trigger), 9, &globs()),
            Err(ConfigError::MissingSecret)
        ));
        // The configuration file states its secrets; nothing is kept from an earlier start.
        let configured = WebhookConfig {
            secret: None,
            ..standard()
        };
        assert!(matches!(
            configured.to_row(WebhookOrigin::Config, Some(&first), 9, &globs()),
            Err(ConfigError::MissingSecret)
        ));
    }

    #[test]
    fn subscriptions_filter_by_kind_and_repository() {
        let endpoint = Endpoint::from_row(&row(&standard()).unwrap(), &globs()).unwrap();
        let wants = |kind, repo| endpoint.subscription.wants(kind, repo);
        assert!(wants(EventKind::ScanCompleted, Some("prod/app")));
        assert!(wants(EventKind::ScanCompleted, Some("prod")));
        assert!(!wants(EventKind::ScanCompleted, Some("dev/app")));
        assert!(!wants(EventKind::ArtifactPushed, Some("prod/app")));
        let everything = WebhookConfig {
            events: vec![ALL_EVENTS.to_owned()],
            repositories: vec![],
            ..standard()
        };
        let endpoint = Endpoint::from_row(&row(&everything).unwrap(), &globs()).unwrap();
        for kind in EventKind::ALL {
            assert!(endpoint.subscription.wants(kind, Some("any/repo")));
        }
        let registry_wide = WebhookConfig {
            events: vec!["vulndb.updated".to_owned()],
            ..standard()
        };
        let endpoint = Endpoint::from_row(&row(&registry_wide).unwrap(), &globs()).unwrap();
        assert!(endpoint.subscription.wants(EventKind::VulndbUpdated, None));
    }

    #[test]
    fn configured_names_must_be_unique() {
        assert_eq!(first_duplicate(&[standard(), gitlab()]), None);
        assert_eq!(
            first_duplicate(&[standard(), gitlab(), standard()]),
            Some("ci")
        );
    }
}
