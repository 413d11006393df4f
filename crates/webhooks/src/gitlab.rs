//! The `gitlab-trigger` target kind: an event starts a GitLab CI pipeline.
//!
//! Instead of a CloudEvent body, this target calls GitLab's pipeline trigger API
//! (docs.gitlab.com/api/pipeline_triggers, "Trigger a pipeline with a token"):
//!
//! ```text
//! POST /api/v4/projects/:id/trigger/pipeline
//! token=<trigger token>&ref=<branch or tag>&variables[KEY]=value...
//! ```
//!
//! `:id` is the numeric project id or the URL-encoded project path (`group%2Fproject`); `token`
//! and `ref` are required; `variables` is "a map of key-valued strings containing the pipeline
//! variables". This module builds that request as an `application/x-www-form-urlencoded` body,
//! the form GitLab's own examples use, and keeps the token in the body rather than the query
//! string so it does not end up in access logs.
//!
//! The pipeline receives the event through these variables (values as in the CloudEvent):
//! `BONDED_EVENT_ID`, `BONDED_EVENT_TYPE`, `BONDED_EVENT_SOURCE`, `BONDED_EVENT_TIME`,
//! `BONDED_EVENT_SUBJECT` (the digest, when the event has one) and `BONDED_EVENT_DATA` (the
//! `data` object as compact JSON); the image itself, for the common case, as `BONDED_IMAGE`
//! (`registry/repository@digest`), `BONDED_REPOSITORY`, `BONDED_TAG` and `BONDED_DIGEST`,
//! taken from the members of `data` with those names when they are strings; plus any fixed
//! variables configured on the target. Variable
//! keys follow GitLab's rule for CI/CD variable names: letters, digits and `_`, at most 255
//! characters.
//!
//! The base URL is a [`TargetUrl`], so the `allow_private` and https rules of ordinary webhook
//! targets apply to GitLab instances as well.

use std::collections::BTreeMap;
use std::fmt;

use url::Url;
use url::form_urlencoded;

use super::cloudevents::CloudEvent;
use super::target::TargetUrl;

/// Content type of the trigger request body.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Prefix of the variables Bonded sets; configured variables may not use it.
pub const RESERVED_VARIABLE_PREFIX: &str = "BONDED_";
/// The variables that name the image, and the `data` members they come from.
const IMAGE_VARIABLES: [(&str, &str); 4] = [
    ("BONDED_IMAGE", "image"),
    ("BONDED_REPOSITORY", "repository"),
    ("BONDED_TAG", "tag"),
    ("BONDED_DIGEST", "digest"),
];
/// GitLab's limit on CI/CD variable key length.
pub const MAX_VARIABLE_KEY_LEN: usize = 255;

/// Why a trigger target or request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitlabError {
    #[error("GitLab project path {path:?} is not of the form group[/subgroup...]/project")]
    ProjectPath { path: String },
    #[error("GitLab project id must not be 0")]
    ProjectIdZero,
    #[error("git ref {git_ref:?} must be non-empty and free of control characters and spaces")]
    GitRef { git_ref: String },
    #[error("pipeline trigger token must be non-empty printable ASCII without spaces")]
    Token,
    #[error("variable key {key:?} must be 1 to 255 characters of A-Z, a-z, 0-9 or `_`")]
    VariableKey { key: String },
    #[error("variable {key:?} uses the prefix `BONDED_`, which is reserved for event variables")]
    ReservedVariable { key: String },
    #[error("variable {key:?} has a control character in its value")]
    VariableValue { key: String },
    #[error("the GitLab base URL cannot carry an API path")]
    BaseUrl,
    #[error("encoding the event data failed: {reason}")]
    EventData { reason: String },
}

/// Which project to trigger: its numeric id or its full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(u64),
    Path(String),
}

impl ProjectRef {
    /// A project by full path, such as `platform/signing`.
    pub fn path(path: &str) -> Result<Self, GitlabError> {
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() < 2 || !segments.iter().all(|segment| segment_ok(segment)) {
            return Err(GitlabError::ProjectPath {
                path: path.chars().take(256).collect(),
            });
        }
        Ok(Self::Path(path.to_owned()))
    }

    /// A project by numeric id.
    pub fn id(id: u64) -> Result<Self, GitlabError> {
        if id == 0 {
            return Err(GitlabError::ProjectIdZero);
        }
        Ok(Self::Id(id))
    }

    /// The `:id` path segment before percent-encoding.
    fn segment(&self) -> String {
        match self {
            ProjectRef::Id(id) => id.to_string(),
            ProjectRef::Path(path) => path.clone(),
        }
    }
}

/// A pipeline trigger token. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TriggerToken(String);

impl TriggerToken {
    /// Wraps a token after checking it is printable ASCII without spaces.
    pub fn new(token: &str) -> Result<Self, GitlabError> {
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(GitlabError::Token);
        }
        Ok(Self(token.to_owned()))
    }
}

impl fmt::Debug for TriggerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TriggerToken(<redacted>)")
    }
}

/// A configured `gitlab-trigger` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabTrigger {
    instance: TargetUrl,
    project: ProjectRef,
    git_ref: String,
    token: TriggerToken,
    variables: BTreeMap<String, String>,
}

/// A ready-to-send trigger request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRequest {
    /// `POST` target.
    pub url: Url,
    /// Always [`FORM_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// The form body; it contains the token, so never log it.
    pub body: String,
}

impl GitlabTrigger {
    /// Configures a trigger of `project` on the GitLab instance at `instance` (for example
    /// `https://gitlab.example.com` or `https://example.com/gitlab`), running `git_ref`, with
    /// fixed `variables` added to every trigger.
    pub fn new(
        instance: TargetUrl,
        project: ProjectRef,
        git_ref: &str,
        token: TriggerToken,
        variables: BTreeMap<String, String>,
    ) -> Result<Self, GitlabError> {
        let ref_ok =
            !git_ref.is_empty() && !git_ref.chars().any(|c| c.is_control() || c.is_whitespace());
        if !ref_ok {
            return Err(GitlabError::GitRef {
                git_ref: git_ref.chars().take(256).collect(),
            });
        }
        for (key, value) in &variables {
            check_variable(key, value)?;
            if key.starts_with(RESERVED_VARIABLE_PREFIX) {
                return Err(GitlabError::ReservedVariable { key: key.clone() });
            }
        }
        Ok(Self {
            instance,
            project,
            git_ref: git_ref.to_owned(),
            token,
            variables,
        })
    }

    /// The endpoint, `<instance>/api/v4/projects/<id or encoded path>/trigger/pipeline`.
    pub fn endpoint(&self) -> Result<Url, GitlabError> {
        let mut url = self.instance.url().clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url.path_segments_mut().map_err(|()| GitlabError::BaseUrl)?;
            // `push` percent-encodes `/` inside the segment: `group/project` → `group%2Fproject`.
            segments
                .pop_if_empty()
                .extend(["api", "v4", "projects"])
                .push(&self.project.segment())
                .extend(["trigger", "pipeline"]);
        }
        Ok(url)
    }

    /// Builds the trigger request for `event`.
    pub fn request_for(&self, event: &CloudEvent) -> Result<TriggerRequest, GitlabError> {
        let data = serde_json::to_string(event.data()).map_err(|error| GitlabError::EventData {
            reason: error.to_string(),
        })?;
        let mut variables = self.variables.clone();
        let type_name = event.kind().type_name();
        let event_variables = [
            ("BONDED_EVENT_ID", Some(event.id().as_str())),
            ("BONDED_EVENT_TYPE", Some(type_name.as_str())),
            ("BONDED_EVENT_SOURCE", Some(event.source())),
            ("BONDED_EVENT_TIME", Some(event.time())),
            ("BONDED_EVENT_SUBJECT", event.subject()),
            ("BONDED_EVENT_DATA", Some(data.as_str())),
        ];
        for (key, value) in event_variables {
            if let Some(value) = value {
                variables.insert(key.to_owned(), value.to_owned());
            }
        }
        for (key, member) in IMAGE_VARIABLES {
            if let Some(value) = event.data().get(member).and_then(|v| v.as_str()) {
                variables.insert(key.to_owned(), value.to_owned());
            }
        }

        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", &self.token.0);
        form.append_pair("ref", &self.git_ref);
        for (key, value) in &variables {
            form.append_pair(&format!("variables[{key}]"), value);
        }
        Ok(TriggerRequest {
            url: self.endpoint()?,
            content_type: FORM_CONTENT_TYPE,
            body: form.finish(),
        })
    }
}

fn check_variable(key: &str, value: &str) -> Result<(), GitlabError> {
    let key_ok = !key.is_empty()
        && key.len() <= MAX_VARIABLE_KEY_LEN
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(GitlabError::VariableKey {
            key: key.chars().take(64).collect(),
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(GitlabError::VariableValue {
            key: key.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::cloudevents::{EventId, EventKind};
    use super::*;
    use serde_json::{Value, json};
    use std::time::{Duration, UNIX_EPOCH};

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn promotion_event() -> CloudEvent {
        let Value::Object(data) = json!({
            "repository": "public/app",
            "tag": "1.2.3",
            "digest": DIGEST,
            "image": format!("registry.example/public/app@{DIGEST}"),
            "from": "dev/app:1.2.3-rc",
        }) else {
            unreachable!()
        };
        CloudEvent::new(
            EventId::new("01J9ZQ4C0M6V3T5XK8Y2B7N1RD").unwrap(),
            "/registries/r1/repositories/public/app",
            EventKind::PromotionSucceeded,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            data,
        )
        .unwrap()
        .with_subject(DIGEST)
        .unwrap()
    }

    fn trigger(instance: &str, project: ProjectRef) -> GitlabTrigger {
        let mut variables = BTreeMap::new();
        variables.insert("SIGNING_PROFILE".to_owned(), "release".to_owned());
        GitlabTrigger::new(
            TargetUrl::parse(instance, false).unwrap(),
            project,
            "main",
            TriggerToken::new("glptt-2cb1840fb9dfc9fb0b7b").unwrap(),
            variables,
        )
        .unwrap()
    }

    /// Decodes a form body back into ordered pairs with the `url` crate's parser.
    fn pairs(body: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(body.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }

    #[test]
    fn builds_the_trigger_url_for_ids_and_paths() {
        let by_id = trigger("https://gitlab.example.com", ProjectRef::id(42).unwrap());
        assert_eq!(
            by_id.endpoint().unwrap().as_str(),
            "https://gitlab.example.com/api/v4/projects/42/trigger/pipeline"
        );
        let by_path = trigger(
            "https://example.com/gitlab/?x=1#frag",
            ProjectRef::path("platform/tools/signing").unwrap(),
        );
        assert_eq!(
            by_path.endpoint().unwrap().as_str(),
            "https://example.com/gitlab/api/v4/projects/platform%2Ftools%2Fsigning/trigger/pipeline"
        );
    }

    #[test]
    fn form_carries_token_ref_and_event_variables() {
        let request = trigger("https://gitlab.example.com", ProjectRef::id(42).unwrap())
            .request_for(&promotion_event())
            .unwrap();
        assert_eq!(request.content_type, "application/x-www-form-urlencoded");
        let data = format!(
            r#"{{"digest":"{DIGEST}","from":"dev/app:1.2.3-rc","image":"registry.example/public/app@{DIGEST}","repository":"public/app","tag":"1.2.3"}}"#
        );
        let image = format!("registry.example/public/app@{DIGEST}");
        let expected: Vec<(String, String)> = [
            ("token", "glptt-2cb1840fb9dfc9fb0b7b"),
            ("ref", "main"),
            ("variables[BONDED_DIGEST]", DIGEST),
            ("variables[BONDED_EVENT_DATA]", data.as_str()),
            ("variables[BONDED_EVENT_ID]", "01J9ZQ4C0M6V3T5XK8Y2B7N1RD"),
            (
                "variables[BONDED_EVENT_SOURCE]",
                "/registries/r1/repositories/public/app",
            ),
            ("variables[BONDED_EVENT_SUBJECT]", DIGEST),
            ("variables[BONDED_EVENT_TIME]", "2023-11-14T22:13:20.000Z"),
            (
                "variables[BONDED_EVENT_TYPE]",
                "dev.bonded.promotion.succeeded",
            ),
            ("variables[BONDED_IMAGE]", image.as_str()),
            ("variables[BONDED_REPOSITORY]", "public/app"),
            ("variables[BONDED_TAG]", "1.2.3"),
            ("variables[SIGNING_PROFILE]", "release"),
        ]
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        assert_eq!(pairs(&request.body), expected);
        // Brackets, slashes and colons are percent-encoded in the raw body.
        assert!(request.body.contains("variables%5BBONDED_EVENT_ID%5D=01J9"));
        assert!(request.body.contains("sha256%3A6c3c"));
    }

    #[test]
    fn subjectless_events_omit_the_subject_variable() {
        let event = CloudEvent::new(
            EventId::new("e1").unwrap(),
            "/registries/r1",
            EventKind::VulndbUpdated,
            UNIX_EPOCH,
            serde_json::Map::new(),
        )
        .unwrap();
        let request = trigger("https://gitlab.example.com", ProjectRef::id(7).unwrap())
            .request_for(&event)
            .unwrap();
        let keys: Vec<String> = pairs(&request.body)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert!(!keys.contains(&"variables[BONDED_EVENT_SUBJECT]".to_owned()));
        assert!(keys.contains(&"variables[BONDED_EVENT_DATA]".to_owned()));
    }

    #[test]
    fn project_paths_and_ids_are_checked() {
        for good in ["group/project", "my-group/sub.group/project_1"] {
            assert!(ProjectRef::path(good).is_ok(), "{good}");
        }
        for bad in [
            "project",
            "/project",
            "group//project",
            "group/../x",
            "a/b c",
            "a/é",
        ] {
            assert!(
                matches!(ProjectRef::path(bad), Err(GitlabError::ProjectPath { .. })),
                "{bad}"
            );
        }
        assert_eq!(ProjectRef::id(0), Err(GitlabError::ProjectIdZero));
    }

    #[test]
    fn refs_tokens_and_variables_are_checked() {
        let instance = || TargetUrl::parse("https://gitlab.example.com", false).unwrap();
        let token = || TriggerToken::new("t0k3n").unwrap();
        let project = || ProjectRef::id(1).unwrap();
        for bad_ref in ["", "main branch", "main\n"] {
            let result =
                GitlabTrigger::new(instance(), project(), bad_ref, token(), BTreeMap::new());
            assert!(
                matches!(result, Err(GitlabError::GitRef { .. })),
                "{bad_ref:?}"
            );
        }
        for bad_token in ["", "a b", "tok\0en"] {
            assert_eq!(TriggerToken::new(bad_token), Err(GitlabError::Token));
        }
        let long_key = "K".repeat(MAX_VARIABLE_KEY_LEN + 1);
        let cases = [
            ("IMAGE-DIGEST", "x", "VariableKey"),
            ("", "x", "VariableKey"),
            (long_key.as_str(), "x", "VariableKey"),
            ("BONDED_EVENT_ID", "x", "ReservedVariable"),
            ("NOTE", "a\u{7}b", "VariableValue"),
        ];
        for (key, value, kind) in cases {
            let variables = BTreeMap::from([(key.to_owned(), value.to_owned())]);
            let result = GitlabTrigger::new(instance(), project(), "main", token(), variables);
            let error = result.expect_err(key);
            assert!(format!("{error:?}").starts_with(kind), "{key}: {error:?}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let shown = format!(
            "{:?}",
            trigger("https://gitlab.example.com", ProjectRef::id(42).unwrap())
        );
        assert!(!shown.contains("glptt"), "{shown}");
    }
}
