//! Build records from SLSA provenance, on predicates shaped like the ones GitHub Actions and
//! slsa-github-generator publish (see fixtures/SOURCES.md).

use serde_json::{Value, json};
use trust::dsse::{INTOTO_PAYLOAD_TYPE, sign_envelope};
use trust::{Statement, build_record, verify_attestation};

use crate::support::{ecdsa_key, fixture_digest};

const V02: &[u8] = include_bytes!("fixtures/provenance/slsa-v0.2-github-generator.json");
const V1: &[u8] = include_bytes!("fixtures/provenance/slsa-v1-github-actions.json");

/// Signs and verifies a fixture Statement, as the lead's service will see it.
fn verified(statement: &[u8]) -> Statement {
    let envelope = sign_envelope(ecdsa_key(), INTOTO_PAYLOAD_TYPE, statement);
    verify_attestation(&envelope, &ecdsa_key().public_key(), &fixture_digest()).expect("verifies")
}

fn statement_with(predicate_type: &str, predicate: Value) -> Statement {
    Statement {
        statement_type: "https://in-toto.io/Statement/v1".to_owned(),
        subjects: Vec::new(),
        predicate_type: predicate_type.to_owned(),
        predicate,
    }
}

#[test]
fn slsa_v02_from_slsa_github_generator() {
    let record = build_record(&verified(V02)).expect("a v0.2 record");
    assert_eq!(record.predicate_type, "https://slsa.dev/provenance/v0.2");
    assert_eq!(
        record.builder_id.as_deref(),
        Some(
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.9.0"
        )
    );
    assert_eq!(
        record.build_type.as_deref(),
        Some("https://github.com/slsa-framework/slsa-github-generator/container@v1")
    );
    assert_eq!(
        record.source_repository.as_deref(),
        Some("https://github.com/bonded-dev/hello")
    );
    assert_eq!(record.source_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        record.source_commit.as_deref(),
        Some("15bf79ea9c89fffbf5dd02c6b5b686b291bfcbd2")
    );
    assert_eq!(
        record.invocation["configSource"]["entryPoint"],
        ".github/workflows/release.yml"
    );
}

#[test]
fn slsa_v1_from_github_actions() {
    let record = build_record(&verified(V1)).expect("a v1 record");
    assert_eq!(record.predicate_type, "https://slsa.dev/provenance/v1");
    assert_eq!(
        record.builder_id.as_deref(),
        Some("https://github.com/actions/runner/github-hosted")
    );
    assert_eq!(
        record.build_type.as_deref(),
        Some("https://actions.github.io/buildtypes/workflow/v1")
    );
    assert_eq!(
        record.source_repository.as_deref(),
        Some("https://github.com/bonded-dev/hello")
    );
    assert_eq!(record.source_ref.as_deref(), Some("refs/tags/v1.2.0"));
    assert_eq!(
        record.source_commit.as_deref(),
        Some("c27d339ee6075c1f744c5d4b200f7901aad2c369")
    );
    assert_eq!(
        record.invocation["workflow"]["path"],
        ".github/workflows/release.yml"
    );
}

#[test]
fn v02_commit_falls_back_to_the_matching_material() {
    let record = build_record(&statement_with(
        "https://slsa.dev/provenance/v0.2",
        json!({
            "builder": {"id": "https://builder.example/b"},
            "buildType": "https://example.com/Makefile",
            "invocation": {"configSource": {"uri": "git+ssh://git@git.example.com/team/app"}},
            "materials": [
                {"uri": "https://example.com/base.tar.gz", "digest": {"sha256": "12"}},
                {"uri": "git+ssh://git@git.example.com/team/app", "digest": {"sha1": "abc123"}},
            ],
        }),
    ))
    .expect("record");
    // The `git@` user is not a ref.
    assert_eq!(
        record.source_repository.as_deref(),
        Some("ssh://git@git.example.com/team/app")
    );
    assert_eq!(record.source_ref, None);
    assert_eq!(record.source_commit.as_deref(), Some("abc123"));
}

#[test]
fn v1_without_workflow_uses_the_git_dependency() {
    let record = build_record(&statement_with(
        "https://slsa.dev/provenance/v1",
        json!({
            "buildDefinition": {
                "buildType": "https://mobyproject.org/buildkit@v1",
                "externalParameters": {"request": {"frontend": "dockerfile.v0"}},
                "resolvedDependencies": [
                    {"uri": "pkg:docker/alpine@3.20", "digest": {"sha256": "00"}},
                    {"uri": "git+https://github.com/o/r@refs/heads/dev", "digest": {"gitCommit": "deadbeef"}},
                ],
            },
            "runDetails": {"builder": {"id": "https://github.com/docker/buildx"}},
        }),
    ))
    .expect("record");
    assert_eq!(
        record.source_repository.as_deref(),
        Some("https://github.com/o/r")
    );
    assert_eq!(record.source_ref.as_deref(), Some("refs/heads/dev"));
    assert_eq!(record.source_commit.as_deref(), Some("deadbeef"));
    assert_eq!(record.invocation["request"]["frontend"], "dockerfile.v0");
}

#[test]
fn missing_fields_are_absent_not_errors() {
    let record =
        build_record(&statement_with("https://slsa.dev/provenance/v1", json!({}))).expect("record");
    assert_eq!(record.builder_id, None);
    assert_eq!(record.source_repository, None);
    assert_eq!(record.source_commit, None);
    assert_eq!(record.invocation, Value::Null);
    let record = build_record(&statement_with(
        "https://slsa.dev/provenance/v0.2",
        json!({"builder": "not an object", "invocation": [1, 2]}),
    ))
    .expect("record");
    assert_eq!(record.builder_id, None);
}

#[test]
fn other_predicates_have_no_build_record() {
    assert_eq!(
        build_record(&statement_with("https://cyclonedx.org/bom", json!({}))),
        None
    );
    assert_eq!(
        build_record(&statement_with(
            "https://slsa.dev/provenance/v1",
            json!("text")
        )),
        None
    );
}
