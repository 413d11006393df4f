//! Build records read from SLSA provenance attestations.
//!
//! A [`BuildRecord`] answers "who built this image, from which source, at which commit" for
//! the two SLSA provenance versions in use:
//!
//! - v0.2 (`https://slsa.dev/provenance/v0.2`, slsa.dev/provenance/v0.2): `builder.id`,
//!   `buildType`, `invocation.configSource {uri, digest, entryPoint}` and `materials`. The
//!   source is `configSource.uri`, whose `git+…@<ref>` form carries the ref; the commit is
//!   its `sha1` (or `gitCommit`) digest, else that of the material with the same URI.
//! - v1 (`https://slsa.dev/provenance/v1`, slsa.dev/provenance/v1): `runDetails.builder.id`,
//!   `buildDefinition.buildType`, `externalParameters` and `resolvedDependencies`. GitHub
//!   Actions (buildType `https://actions.github.io/buildtypes/workflow/v1` and the
//!   slsa-github-generator variants) records the source as
//!   `externalParameters.workflow.{repository, ref}`; other builders use
//!   `externalParameters.source` or BuildKit's `externalParameters.configSource.uri`. The
//!   commit is the `gitCommit` (or `sha1`) digest of the resolved dependency from that
//!   repository.
//!
//! Parsing rules (slsa.dev, "Parsing rules"): unknown fields are ignored and a missing field
//! is simply absent from the record. The statement must already be verified; nothing here
//! checks signatures or trusts any field more than the signer.

use serde::Serialize;
use serde_json::Value;

use crate::dsse::Statement;

pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// The facts of a build, as claimed by a (verified) provenance attestation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildRecord {
    pub predicate_type: String,
    pub builder_id: Option<String>,
    pub build_type: Option<String>,
    /// For example `https://github.com/octocat/hello-world`.
    pub source_repository: Option<String>,
    /// Commit hash (a git SHA-1 or SHA-256 hex string).
    pub source_commit: Option<String>,
    /// For example `refs/heads/main`.
    pub source_ref: Option<String>,
    /// v0.2 `invocation`, v1 `buildDefinition.externalParameters`; `Null` when absent.
    pub invocation: Value,
}

/// The build record of a SLSA v0.2 or v1 provenance Statement; `None` for other predicate
/// types and for predicates that are not JSON objects.
pub fn build_record(statement: &Statement) -> Option<BuildRecord> {
    let predicate = &statement.predicate;
    if !predicate.is_object() {
        return None;
    }
    match statement.predicate_type.as_str() {
        SLSA_PROVENANCE_V02 => Some(record_v02(&statement.predicate_type, predicate)),
        SLSA_PROVENANCE_V1 => Some(record_v1(&statement.predicate_type, predicate)),
        _ => None,
    }
}

fn record_v02(predicate_type: &str, predicate: &Value) -> BuildRecord {
    let config_source = &predicate["invocation"]["configSource"];
    let uri = string_at(config_source, "uri");
    let (source_repository, source_ref) = match &uri {
        Some(uri) => split_git_uri(uri),
        None => (None, None),
    };
    let source_commit = commit_of(&config_source["digest"]).or_else(|| {
        let uri = uri.as_deref()?;
        predicate["materials"]
            .as_array()?
            .iter()
            .filter(|material| material["uri"].as_str() == Some(uri))
            .find_map(|material| commit_of(&material["digest"]))
    });
    BuildRecord {
        predicate_type: predicate_type.to_owned(),
        builder_id: string_at(&predicate["builder"], "id"),
        build_type: string_at(predicate, "buildType"),
        source_repository,
        source_commit,
        source_ref,
        invocation: predicate["invocation"].clone(),
    }
}

fn record_v1(predicate_type: &str, predicate: &Value) -> BuildRecord {
    let definition = &predicate["buildDefinition"];
    let external = &definition["externalParameters"];
    let workflow = &external["workflow"];
    let declared_repository = string_at(workflow, "repository")
        .or_else(|| string_at(external, "source"))
        .or_else(|| string_at(&external["configSource"], "uri"));
    let (source_repository, uri_ref) = match &declared_repository {
        Some(repository) => split_git_uri(repository),
        None => (None, None),
    };
    let dependency = source_dependency(
        &definition["resolvedDependencies"],
        source_repository.as_deref(),
    );
    let (dependency_repository, dependency_ref) = match &dependency {
        Some((uri, _commit)) => split_git_uri(uri),
        None => (None, None),
    };
    BuildRecord {
        predicate_type: predicate_type.to_owned(),
        builder_id: string_at(&predicate["runDetails"]["builder"], "id"),
        build_type: string_at(definition, "buildType"),
        source_repository: source_repository.or(dependency_repository),
        source_commit: dependency.map(|(_uri, commit)| commit),
        source_ref: string_at(workflow, "ref").or(uri_ref).or(dependency_ref),
        invocation: external.clone(),
    }
}

/// The resolved dependency holding the source: the one from `repository` when it is known,
/// else the first git dependency with a commit digest. Returns its URI and commit.
fn source_dependency<'a>(
    dependencies: &'a Value,
    repository: Option<&str>,
) -> Option<(&'a str, String)> {
    let dependencies = dependencies.as_array()?;
    dependencies.iter().find_map(|dependency| {
        let uri = dependency["uri"].as_str()?;
        let commit = commit_of(&dependency["digest"])?;
        let (dependency_repository, _) = split_git_uri(uri);
        let wanted = match repository {
            Some(repository) => same_repository(dependency_repository.as_deref()?, repository),
            None => uri.starts_with("git+"),
        };
        wanted.then_some((uri, commit))
    })
}

fn same_repository(a: &str, b: &str) -> bool {
    let trim = |s: &str| {
        s.trim_end_matches('/')
            .trim_end_matches(".git")
            .to_ascii_lowercase()
    };
    trim(a) == trim(b)
}

/// A git commit from an in-toto DigestSet: `gitCommit` (v1), else `sha1` (v0.2).
fn commit_of(digest: &Value) -> Option<String> {
    string_at(digest, "gitCommit").or_else(|| string_at(digest, "sha1"))
}

fn string_at(value: &Value, key: &str) -> Option<String> {
    value.get(key)?.as_str().map(str::to_owned)
}

/// Splits an SPDX-style VCS locator `git+https://host/repo@refs/heads/main` into the
/// repository (`https://host/repo`) and the ref. Only an `@` in the path counts, so the
/// user in `git+ssh://git@host/repo` is not mistaken for a ref.
fn split_git_uri(uri: &str) -> (Option<String>, Option<String>) {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let path_start = uri
        .find("://")
        .and_then(|scheme_end| {
            let after = scheme_end + 3;
            uri.get(after..)?.find('/').map(|slash| after + slash)
        })
        .unwrap_or(0);
    let (head, path) = uri.split_at_checked(path_start).unwrap_or(("", uri));
    match path.rsplit_once('@') {
        Some((repository_path, reference)) if !reference.is_empty() => (
            Some(format!("{head}{repository_path}")),
            Some(reference.to_owned()),
        ),
        _ => (Some(uri.to_owned()), None),
    }
}
