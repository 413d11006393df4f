//! Rules over evidence documents: verdicts (pass, fail, pending), compile errors with
//! positions, recorded facts, messages, cost limits and hostile input.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use policy::cel::{
    EvaluationError, Evidence, Fact, FactValue, Finding, Image, MAX_COST, MAX_RULE_BYTES, Package,
    Platform, Position, Provenance, RuleError, Severity, Signature, Verdict, VexStatus,
    VulnerabilityReport, compile, evaluate, policy_digest,
};
use proptest::prelude::*;

/// 2023-11-16T02:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_100_000)
}

fn finding(id: &str, severity: Severity, package: &str, fixed: Option<&str>) -> Finding {
    Finding {
        id: id.to_owned(),
        aliases: Vec::new(),
        severity,
        package: package.to_owned(),
        fixed_version: fixed.map(str::to_owned),
        vex_status: None,
    }
}

fn package(name: &str, version: &str) -> Package {
    Package {
        name: name.to_owned(),
        version: Some(version.to_owned()),
        purl: None,
    }
}

fn signed(authorities: &[&str]) -> Option<Vec<Signature>> {
    Some(
        authorities
            .iter()
            .map(|authority| Signature {
                authority: (*authority).to_owned(),
            })
            .collect(),
    )
}

/// Scanned without findings, with an SBOM, signed by `ci`, with provenance.
fn clean() -> Evidence {
    Evidence {
        image: Image {
            repository: "prod/app".to_owned(),
            tag: Some("v1.4.2".to_owned()),
            digest: format!("sha256:{}", "ab".repeat(32)),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            // 2023-11-01T00:00:00Z, fifteen days before `now`.
            created: chrono::DateTime::from_timestamp(1_698_796_800, 0),
            labels: Some(BTreeMap::from([("team".to_owned(), "payments".to_owned())])),
            platform: Some(Platform {
                os: "linux".to_owned(),
                architecture: "amd64".to_owned(),
                variant: None,
            }),
        },
        vulnerabilities: Some(VulnerabilityReport::from_findings(Vec::new())),
        packages: Some(vec![package("openssl", "3.0.13"), package("zlib", "1.3.1")]),
        licenses: Some(vec!["Apache-2.0".to_owned(), "MIT".to_owned()]),
        signatures: signed(&["ci"]),
        provenance: Some(Provenance {
            builder: "https://gitlab.example.com/runners/42".to_owned(),
            source_repository: Some("https://gitlab.example.com/shop/app".to_owned()),
            commit: Some("9f2c1e4".to_owned()),
            git_ref: Some("refs/heads/main".to_owned()),
        }),
    }
}

/// log4j with two open critical vulnerabilities (one reported twice, as scanners do when a
/// package appears in two layers), a critical one VEX resolves, and a high one.
fn vulnerable() -> Evidence {
    let mut resolved = finding("CVE-2022-22965", Severity::Critical, "spring-beans", None);
    resolved.vex_status = Some(VexStatus::NotAffected);
    let mut log4shell = finding(
        "CVE-2021-44228",
        Severity::Critical,
        "log4j-core",
        Some("2.15.0"),
    );
    log4shell.aliases = vec!["GHSA-jfh8-c2jp-5v3q".to_owned()];
    let findings = vec![
        log4shell.clone(),
        resolved,
        finding(
            "CVE-2021-45046",
            Severity::Critical,
            "log4j-core",
            Some("2.16.0"),
        ),
        log4shell,
        finding("CVE-2023-44487", Severity::High, "netty-codec-http2", None),
    ];
    Evidence {
        vulnerabilities: Some(VulnerabilityReport::from_findings(findings)),
        packages: Some(vec![
            package("log4j-core", "2.14.1"),
            package("spring-beans", "5.3.17"),
        ]),
        ..clean()
    }
}

fn unscanned() -> Evidence {
    Evidence {
        vulnerabilities: None,
        ..clean()
    }
}

fn unsigned() -> Evidence {
    Evidence {
        signatures: signed(&[]),
        ..clean()
    }
}

fn unscanned_unsigned() -> Evidence {
    Evidence {
        vulnerabilities: None,
        signatures: signed(&[]),
        ..clean()
    }
}

fn without_sbom() -> Evidence {
    Evidence {
        packages: None,
        licenses: None,
        ..clean()
    }
}

/// The signature records could not be read.
fn signatures_unknown() -> Evidence {
    Evidence {
        signatures: None,
        ..clean()
    }
}

fn unscanned_without_sbom() -> Evidence {
    Evidence {
        vulnerabilities: None,
        packages: None,
        ..clean()
    }
}

fn no_licenses() -> Evidence {
    Evidence {
        licenses: Some(Vec::new()),
        ..clean()
    }
}

fn no_provenance() -> Evidence {
    Evidence {
        provenance: None,
        ..clean()
    }
}

fn by_digest() -> Evidence {
    let mut evidence = clean();
    evidence.image.tag = None;
    evidence
}

fn tagged(tag: &str) -> Evidence {
    let mut evidence = clean();
    evidence.image.tag = Some(tag.to_owned());
    evidence
}

fn config_unread() -> Evidence {
    let mut evidence = clean();
    evidence.image.created = None;
    evidence.image.labels = None;
    evidence.image.platform = None;
    evidence
}

fn provenance_without_ref() -> Evidence {
    let mut evidence = clean();
    if let Some(provenance) = &mut evidence.provenance {
        provenance.git_ref = None;
    }
    evidence
}

fn copyleft() -> Evidence {
    Evidence {
        licenses: Some(vec!["GPL-3.0-only".to_owned()]),
        ..clean()
    }
}

/// A verdict or an error, for tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Pending(Vec<&'static str>),
    /// An evaluation error whose text contains this.
    Error(&'static str),
}

use Outcome::{Error, Fail, Pass, Pending};

fn outcome(rule: &str, evidence: &Evidence) -> Outcome {
    let compiled = compile(rule).unwrap_or_else(|error| panic!("{rule}: {error}"));
    match evaluate(&compiled, evidence, now()) {
        Ok(evaluation) => match evaluation.verdict {
            Verdict::Pass => Pass,
            Verdict::Fail { .. } => Fail,
            Verdict::Pending { missing } => Pending(
                missing
                    .into_iter()
                    .map(|path| &*Box::leak(path.into_boxed_str()))
                    .collect(),
            ),
        },
        Err(error) => Error(Box::leak(error.to_string().into_boxed_str())),
    }
}

/// A rule, the evidence it runs on, and the expected outcome.
type Case = (&'static str, fn() -> Evidence, Outcome);

fn check_table(table: &[Case]) {
    let mut failures = Vec::new();
    for (rule, evidence, expected) in table {
        let found = outcome(rule, &evidence());
        let matches = match (expected, &found) {
            (Error(expected), Error(found)) => found.contains(expected),
            (expected, found) => expected == found,
        };
        if !matches {
            failures.push(format!("{rule}: expected {expected:?}, found {found:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn vulnerability_rules() {
    check_table(&[
        ("vulnerabilities.critical == 0", clean, Pass),
        ("vulnerabilities.critical == 0", vulnerable, Fail),
        (
            "vulnerabilities.critical == 0",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        // Counts are of findings, so the repeated one counts twice.
        ("vulnerabilities.critical == 3", vulnerable, Pass),
        ("vulnerabilities.total == 4", vulnerable, Pass),
        ("vulnerabilities.fixable == 3", vulnerable, Pass),
        ("critical_ids().size() == 0", clean, Pass),
        ("critical_ids().size() == 0", vulnerable, Fail),
        (
            "critical_ids().size() == 0",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "critical_ids() == ['CVE-2021-44228', 'CVE-2021-45046']",
            vulnerable,
            Pass,
        ),
        (
            "!vulnerabilities.findings.exists(f, f.severity == 'critical' && \
             f.vex_status != 'not_affected' && f.fixed_version != null)",
            vulnerable,
            Fail,
        ),
        (
            "vulnerabilities.findings.all(f, f.severity != 'critical' || f.vex_status == \
             'not_affected')",
            clean,
            Pass,
        ),
        (
            "vulnerabilities.findings.exists(f, 'GHSA-jfh8-c2jp-5v3q' in f.aliases)",
            vulnerable,
            Pass,
        ),
        (
            "vulnerabilities.findings.filter(f, f.fixed_version == null).map(f, f.id) == \
             ['CVE-2022-22965', 'CVE-2023-44487']",
            vulnerable,
            Pass,
        ),
        (
            "vulnerabilities.findings.exists(f, f.severity == 'critical')",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
    ]);
}

#[test]
fn signature_rules() {
    check_table(&[
        ("signed_by('ci')", clean, Pass),
        ("signed_by('ci')", unsigned, Fail),
        (
            "signed_by('ci')",
            signatures_unknown,
            Pending(vec!["signatures"]),
        ),
        ("signed_by('security')", clean, Fail),
        ("signatures.exists(s, s.authority == 'ci')", clean, Pass),
        ("signatures.exists(s, s.authority == 'ci')", unsigned, Fail),
        (
            "signatures.exists(s, s.authority == 'ci')",
            signatures_unknown,
            Pending(vec!["signatures"]),
        ),
        ("size(signatures) == 0", unsigned, Pass),
        ("signed_by('ci') && signed_by('security')", clean, Fail),
        ("signed_by('ci') || signed_by('security')", clean, Pass),
    ]);
}

/// A missing fact never lets a rule pass or fail on a guess; a rule comes out decided only
/// when the fact could not change the outcome.
#[test]
fn missing_facts_make_rules_pending_unless_they_cannot_matter() {
    check_table(&[
        (
            "vulnerabilities.critical == 0 && signed_by('ci')",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "signed_by('ci') && vulnerabilities.critical == 0",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        // Unsigned: no scan result can make this pass.
        (
            "vulnerabilities.critical == 0 && signed_by('ci')",
            unscanned_unsigned,
            Fail,
        ),
        // Signed: the rule passes whatever the scan finds.
        (
            "vulnerabilities.critical == 0 || signed_by('ci')",
            unscanned,
            Pass,
        ),
        (
            "vulnerabilities.critical == 0 || signed_by('ci')",
            unscanned_unsigned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "!(vulnerabilities.critical > 0)",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "vulnerabilities.critical == 0 ? signed_by('ci') : false",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "!has_package('log4j-core')",
            without_sbom,
            Pending(vec!["packages"]),
        ),
        ("!has_package('log4j-core')", vulnerable, Fail),
        ("!has_package('log4j-core')", clean, Pass),
        (
            "!packages.exists(p, p.name == 'log4j-core')",
            without_sbom,
            Pending(vec!["packages"]),
        ),
        (
            "size(packages) == 0",
            without_sbom,
            Pending(vec!["packages"]),
        ),
        (
            "license_in(['MIT', 'Apache-2.0'])",
            without_sbom,
            Pending(vec!["licenses"]),
        ),
        (
            "vulnerabilities.critical == 0 && !has_package('log4j-core') && signed_by('ci')",
            unscanned_without_sbom,
            Pending(vec!["vulnerabilities", "packages"]),
        ),
        // An error elsewhere in a rule that reads a missing fact: pending until the fact is
        // known, then the error shows.
        (
            "vulnerabilities.critical == 0 && 1 / 0 == 0",
            unscanned,
            Pending(vec!["vulnerabilities"]),
        ),
        (
            "vulnerabilities.critical == 0 && 1 / 0 == 0",
            clean,
            Error("Division by zero"),
        ),
    ]);
}

#[test]
fn image_rules() {
    check_table(&[
        ("image.repository.startsWith('prod/')", clean, Pass),
        ("image.platform.architecture == 'amd64'", clean, Pass),
        ("image.platform.variant == null", clean, Pass),
        (
            "image.platform.os == 'linux'",
            config_unread,
            Pending(vec!["image.platform"]),
        ),
        ("image.labels['team'] == 'payments'", clean, Pass),
        ("image.labels.team == 'payments'", clean, Pass),
        (
            "image.labels.team == 'payments'",
            config_unread,
            Pending(vec!["image.labels"]),
        ),
        ("has(image.labels.owner)", clean, Fail),
        (
            "image.labels[?'owner'].orValue('none') == 'none'",
            clean,
            Pass,
        ),
        ("'team' in image.labels", clean, Pass),
        ("image.labels.exists(k, k == 'team')", clean, Pass),
        // The labels are known; asking for one that is not there is a fault in the rule.
        ("image.labels.owner == 'x'", clean, Error("owner")),
        ("now - image.created < duration('720h')", clean, Pass),
        ("now - image.created < duration('24h')", clean, Fail),
        (
            "now - image.created < duration('720h')",
            config_unread,
            Pending(vec!["image.created"]),
        ),
        ("image.created.getFullYear() == 2023", clean, Pass),
        ("image.tag == null", by_digest, Pass),
        ("image.tag == null", clean, Fail),
        ("image.tag.matches('^v[0-9]+\\\\.')", clean, Pass),
    ]);
}

#[test]
fn semver_rules() {
    fn v1_2() -> Evidence {
        tagged("1.2")
    }
    fn latest() -> Evidence {
        tagged("latest")
    }
    fn alpine() -> Evidence {
        tagged("1.4.2-alpine")
    }
    check_table(&[
        ("semver_satisfies(image.tag, '>=1.2')", clean, Pass),
        ("semver_satisfies(image.tag, '>=1.2, <1.4')", clean, Fail),
        ("semver_satisfies(image.tag, '=1.2.0')", v1_2, Pass),
        ("semver_satisfies(image.tag, '>=0.0.0')", latest, Fail),
        ("semver_satisfies(image.tag, '>=0.0.0')", by_digest, Fail),
        ("semver_satisfies(image.tag, '>=1.2')", alpine, Fail),
        ("semver_satisfies(image.tag, '>=1.4.2-a')", alpine, Pass),
        (
            "semver_satisfies('v2.0.0', image.labels.team)",
            clean,
            Error("semver_satisfies"),
        ),
    ]);
}

#[test]
fn sbom_and_provenance_rules() {
    check_table(&[
        ("license_in(['MIT', 'Apache-2.0'])", clean, Pass),
        ("license_in(['mit', 'apache-2.0'])", clean, Pass),
        ("license_in(['MIT'])", clean, Fail),
        ("license_in(['MIT', 'Apache-2.0'])", copyleft, Fail),
        ("license_in([])", no_licenses, Pass),
        ("license_in([1])", clean, Error("list of strings")),
        ("packages.all(p, p.version != null)", clean, Pass),
        (
            "provenance.builder.startsWith('https://gitlab.example.com/') && \
             provenance.ref == 'refs/heads/main'",
            clean,
            Pass,
        ),
        (
            "provenance.ref == 'refs/heads/main'",
            provenance_without_ref,
            Pending(vec!["provenance.ref"]),
        ),
        (
            "provenance.builder != ''",
            no_provenance,
            Pending(vec!["provenance"]),
        ),
    ]);
}

#[test]
fn faults_in_rules_are_errors_not_verdicts() {
    check_table(&[
        ("1 / 0 == 1", clean, Error("Division by zero")),
        ("image.repository + 1 == 'x'", clean, Error("add")),
        ("vulnerabilities.critical", clean, Error("not a boolean")),
        ("image.repository", clean, Error("not a boolean")),
    ]);
}

fn compile_error(rule: &str) -> RuleError {
    match compile(rule) {
        Ok(_) => panic!("{rule} compiled"),
        Err(error) => error,
    }
}

fn at(line: u32, column: u32) -> Position {
    Position { line, column }
}

#[test]
fn typos_are_compile_errors_with_positions() {
    assert_eq!(
        compile_error("vulnerabilities.critcal == 0"),
        RuleError::UnknownField {
            at: at(1, 16),
            path: "vulnerabilities.critcal".to_owned()
        }
    );
    assert_eq!(
        compile_error("vulnerabilites.critical == 0"),
        RuleError::UnknownIdentifier {
            at: at(1, 1),
            name: "vulnerabilites".to_owned()
        }
    );
    assert_eq!(
        compile_error(
            "signed_by('ci') &&\n  vulnerabilities.findings.exists(f, f.severty == 'critical')"
        ),
        RuleError::UnknownField {
            at: at(2, 39),
            path: "vulnerabilities.findings[].severty".to_owned()
        }
    );
    assert_eq!(
        compile_error("vulnerabilities.findings.filter(f, f.id != '').exists(g, g.pkg == 'x')"),
        RuleError::UnknownField {
            at: at(1, 59),
            path: "vulnerabilities.findings[].pkg".to_owned()
        }
    );
    // Columns count characters, as the parser's do.
    assert_eq!(
        compile_error("'é' == image.tagg"),
        RuleError::UnknownField {
            at: at(1, 13),
            path: "image.tagg".to_owned()
        }
    );
    assert_eq!(
        compile_error("signed_byy('ci')"),
        RuleError::UnknownFunction {
            at: at(1, 11),
            name: "signed_byy".to_owned()
        }
    );
    assert!(matches!(
        compile_error("image['ta' + 'g'] == 'x'"),
        RuleError::ComputedField { .. }
    ));
    assert!(matches!(
        compile_error("image.repository.name == 'x'"),
        RuleError::NotAnObject { .. }
    ));
    assert!(matches!(
        compile_error("image.exists(k, k == 'tag')"),
        RuleError::NotIterable { .. }
    ));
    assert!(matches!(
        compile_error("[1].exists(x, y == 1)"),
        RuleError::UnknownIdentifier { .. }
    ));
    // Not CEL's `has` macro, which is only global.
    assert!(matches!(
        compile_error("vulnerabilities.has(image.labels.team)"),
        RuleError::UnknownFunction { .. }
    ));
}

#[test]
fn helpers_are_checked_at_compile_time() {
    for rule in [
        "signed_by()",
        "'ci'.signed_by()",
        "has_package('a', 'b')",
        "critical_ids(1)",
    ] {
        assert!(
            matches!(compile_error(rule), RuleError::HelperCall { .. }),
            "{rule}"
        );
    }
    for rule in [
        "semver_satisfies(image.tag, '>=>1')",
        "semver_satisfies(image.tag, '^1 || ^2')",
        "image.tag.matches(image.repository)",
        "matches(image.tag, image.labels.pattern)",
        "image.tag.matches('[')",
        "image.tag.matches('((a{100}){100}){100}')",
    ] {
        assert!(
            matches!(compile_error(rule), RuleError::InvalidArgument { .. }),
            "{rule}"
        );
    }
}

#[test]
fn rules_cannot_test_whether_a_fact_is_known() {
    for rule in [
        "has(image.created)",
        "!has(vulnerabilities.critical)",
        "has(provenance.ref)",
        "vulnerabilities.?critical.orValue(0) == 0",
        "image[?'created'].hasValue()",
        "vulnerabilities.findings.exists(f, has(f.fixed_version))",
    ] {
        assert!(
            matches!(compile_error(rule), RuleError::PresenceTest { .. }),
            "{rule}: {:?}",
            compile(rule).err()
        );
    }
    for rule in [
        "has(image.labels.team)",
        "signatures[?0].hasValue()",
        "has({'a': 1}.a)",
    ] {
        assert!(compile(rule).is_ok(), "{rule}");
    }
}

#[test]
fn syntax_errors_have_positions() {
    let cases = [
        ("vulnerabilities.critical ==", at(1, 28)),
        (
            "signed_by('ci') &&\n  (vulnerabilities.critical == 0",
            at(2, 33),
        ),
        ("signed_by('ci') && && true", at(1, 20)),
        ("", at(1, 1)),
        ("'unterminated", at(1, 1)),
        ("image.tag = 'v1'", at(1, 11)),
    ];
    for (rule, expected) in cases {
        match compile_error(rule) {
            RuleError::Syntax { at, message, .. } => {
                assert_eq!(at, expected, "{rule:?}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{rule:?}: {other:?}"),
        }
    }
    let error = compile_error("signed_by('ci') &&\n  (vulnerabilities.critical == 0");
    assert!(
        error.to_string().starts_with("line 2, column 33: "),
        "{error}"
    );
}

#[test]
fn limits_are_compile_errors() {
    let long = format!("{}true", "true && ".repeat(MAX_RULE_BYTES / 8));
    assert!(matches!(compile_error(&long), RuleError::TooLong { .. }));

    let chain = format!("{}1 == 1", "1 + ".repeat(70));
    assert!(matches!(compile_error(&chain), RuleError::TooDeep { .. }));

    let hundred = (0..100)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let cubic =
        format!("[{hundred}].all(a, [{hundred}].all(b, [{hundred}].all(c, a + b + c >= 0)))");
    assert!(matches!(
        compile_error(&cubic),
        RuleError::TooCostly {
            limit: MAX_COST,
            ..
        }
    ));
    let quadratic = format!("[{hundred}].all(a, [{hundred}].all(b, a + b >= 0))");
    assert_eq!(outcome(&quadratic, &clean()), Pass);
}

/// The two examples of exponential cost in cel-spec (langdef.md, "Macro Performance").
#[test]
fn the_specifications_exponential_examples_are_refused() {
    let mut nested = "1 / 0 == 0".to_owned();
    for _ in 0..24 {
        nested = format!("[0, 1].all(x, {nested})");
    }
    assert!(matches!(
        compile_error(&nested),
        RuleError::TooCostly { .. }
    ));
    let chained = format!(
        "['foo', 'bar']{}.size() > 0",
        ".map(x, [x + x, x + x])".repeat(20)
    );
    assert!(matches!(
        compile_error(&chained),
        RuleError::TooCostly { .. }
    ));
    // Three levels of each are fine.
    let three = "['foo', 'bar'].map(x, [x + x, x + x]).map(x, [x + x, x + x])\
                 .map(x, [x + x, x + x]).size() == 2";
    assert_eq!(outcome(three, &clean()), Pass);
}

fn big(packages: usize, findings: usize) -> Evidence {
    Evidence {
        packages: Some(
            (0..packages)
                .map(|i| package(&format!("package-{i}"), "1.0.0"))
                .collect(),
        ),
        vulnerabilities: Some(VulnerabilityReport::from_findings(
            (0..findings)
                .map(|i| {
                    finding(
                        &format!("CVE-2024-{i:05}"),
                        Severity::High,
                        &format!("package-{i}"),
                        None,
                    )
                })
                .collect(),
        )),
        ..clean()
    }
}

#[test]
fn the_cost_bound_follows_the_evidence() {
    let nested = "packages.exists(p, vulnerabilities.findings.exists(f, f.package == p.name && \
                  f.severity == 'critical'))";
    let linear = "vulnerabilities.findings.exists(f, f.severity == 'critical' && \
                  has_package(f.package))";
    assert_eq!(outcome(nested, &big(50, 50)), Fail);
    assert_eq!(outcome(linear, &big(50, 50)), Fail);
    let large = big(2_000, 2_000);
    let compiled = compile(nested).unwrap();
    assert!(matches!(
        evaluate(&compiled, &large, now()),
        Err(EvaluationError::TooCostly {
            limit: MAX_COST,
            ..
        })
    ));
    assert_eq!(outcome(linear, &large), Fail);

    // A long label read in every iteration is charged by its length.
    let mut long_label = big(0, 2_000);
    if let Some(labels) = &mut long_label.image.labels {
        labels.insert("notes".to_owned(), "x".repeat(100_000));
    }
    let compiled =
        compile("vulnerabilities.findings.all(f, image.labels.notes.contains(f.id))").unwrap();
    assert!(matches!(
        evaluate(&compiled, &long_label, now()),
        Err(EvaluationError::TooCostly { .. })
    ));
}

fn fact<'a>(facts: &'a [Fact], path: &str) -> &'a FactValue {
    &facts
        .iter()
        .find(|fact| fact.path == path)
        .unwrap_or_else(|| panic!("no fact {path} in {facts:?}"))
        .value
}

#[test]
fn evaluations_record_the_facts_they_read() {
    let rule =
        compile("vulnerabilities.critical == 0 && signed_by('ci') && now > image.created").unwrap();
    let evaluation = evaluate(&rule, &clean(), now()).unwrap();
    assert_eq!(evaluation.verdict, Verdict::Pass);
    let paths: Vec<&str> = evaluation
        .facts
        .iter()
        .map(|fact| fact.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "vulnerabilities.critical",
            "signatures",
            "now",
            "image.created",
            "signed_by(\"ci\")"
        ]
    );
    assert_eq!(
        fact(&evaluation.facts, "vulnerabilities.critical"),
        &FactValue::Known(0.into())
    );
    assert_eq!(
        fact(&evaluation.facts, "signatures"),
        &FactValue::Known(serde_json::json!([{"authority": "ci"}]))
    );
    assert_eq!(
        fact(&evaluation.facts, "signed_by(\"ci\")"),
        &FactValue::Known(true.into())
    );
    assert_eq!(
        fact(&evaluation.facts, "now"),
        &FactValue::Known("2023-11-16T02:00:00+00:00".into())
    );
    assert_eq!(
        fact(&evaluation.facts, "image.created"),
        &FactValue::Known("2023-11-01T00:00:00Z".into())
    );

    let pending = evaluate(&rule, &unscanned(), now()).unwrap();
    assert_eq!(
        pending.verdict,
        Verdict::Pending {
            missing: vec!["vulnerabilities".to_owned()]
        }
    );
    assert_eq!(
        fact(&pending.facts, "vulnerabilities.critical"),
        &FactValue::Missing
    );

    let rule = compile("!has_package('log4j-core') && license_in(['MIT'])").unwrap();
    let evaluation = evaluate(&rule, &big(200, 0), now()).unwrap();
    assert!(matches!(
        fact(&evaluation.facts, "packages"),
        FactValue::Digest { sha256, bytes } if sha256.len() == 64 && *bytes > 1024
    ));
    assert_eq!(
        fact(&evaluation.facts, "has_package(\"log4j-core\")"),
        &FactValue::Known(false.into())
    );
    assert_eq!(
        fact(&evaluation.facts, "license_in([\"MIT\"])"),
        &FactValue::Known(false.into())
    );
    let evaluation = evaluate(&rule, &without_sbom(), now()).unwrap();
    assert_eq!(
        fact(&evaluation.facts, "has_package(\"log4j-core\")"),
        &FactValue::Missing
    );
}

#[test]
fn a_failing_rule_can_name_the_critical_findings() {
    let rule = compile("vulnerabilities.critical == 0")
        .and_then(|rule| rule.with_message("'critical findings: ' + critical_ids().join(', ')"))
        .unwrap();
    let evaluation = evaluate(&rule, &vulnerable(), now()).unwrap();
    assert_eq!(
        evaluation.verdict,
        Verdict::Fail {
            message: Some("critical findings: CVE-2021-44228, CVE-2021-45046".to_owned())
        }
    );
    assert_eq!(
        evaluate(&rule, &clean(), now()).unwrap().verdict,
        Verdict::Pass
    );

    let unsigned_rule = compile("signed_by('ci')")
        .and_then(|rule| rule.with_message("'unsigned; critical: ' + critical_ids().join(', ')"))
        .unwrap();
    match evaluate(&unsigned_rule, &unscanned_unsigned(), now())
        .unwrap()
        .verdict
    {
        Verdict::Fail {
            message: Some(message),
        } => assert!(message.starts_with("(no message: "), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        compile("true").and_then(|rule| rule.with_message("critical_idz()")),
        Err(RuleError::UnknownFunction { .. })
    ));
}

#[test]
fn the_policy_digest_is_the_sha256_of_the_exact_text() {
    assert_eq!(
        policy_digest(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        policy_digest("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_ne!(policy_digest("abc\n"), policy_digest("abc"));
}

#[test]
fn compiled_rules_are_shared_across_threads() {
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<policy::cel::CompiledRule>();
}

#[test]
fn the_evaluation_time_must_be_representable() {
    let rule = compile("true").unwrap();
    assert_eq!(
        evaluate(&rule, &clean(), UNIX_EPOCH - Duration::from_secs(1)),
        Err(EvaluationError::Clock)
    );
}

/// Deeply nested or long text at the size limit compiles or fails cleanly, without
/// overflowing the (2 MiB) test thread's stack.
#[test]
fn hostile_text_at_the_size_limit_fails_cleanly() {
    let half = MAX_RULE_BYTES / 2 - 8;
    let texts = [
        format!("{}1 == 1", "1 + ".repeat(MAX_RULE_BYTES / 4 - 4)),
        format!("{}true", "!".repeat(MAX_RULE_BYTES - 8)),
        format!("{}1 == 1", "-".repeat(MAX_RULE_BYTES - 8)),
        format!("{}true{}", "(".repeat(half), ")".repeat(half)),
        format!("{}1{}.size() > 0", "[".repeat(half), "]".repeat(half)),
        format!("{}true", "image.".repeat(MAX_RULE_BYTES / 6 - 1)),
        format!("{}0", "size(".repeat(MAX_RULE_BYTES / 5 - 1)),
        format!("{}0", "{1:".repeat(MAX_RULE_BYTES / 3 - 1)),
        format!("{}true", "true && ".repeat(MAX_RULE_BYTES / 8 - 1)),
        format!("{}true", "true ? true : ".repeat(MAX_RULE_BYTES / 14 - 1)),
        format!("signatures{}", ".map(s, s)".repeat(MAX_RULE_BYTES / 10 - 2)),
        format!("image.labels{}", "['a']".repeat(MAX_RULE_BYTES / 5 - 3)),
    ];
    for text in texts {
        assert!(text.len() <= MAX_RULE_BYTES, "{}", text.len());
        if let Ok(rule) = compile(&text) {
            let _ = evaluate(&rule, &clean(), now());
        }
    }
}

/// Fragments that read facts, absorb errors, or fail.
fn rule_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("vulnerabilities.critical == 0".to_owned()),
        Just("vulnerabilities.high > 0".to_owned()),
        Just("critical_ids().size() == 0".to_owned()),
        Just("vulnerabilities.findings.exists(f, f.severity == 'critical')".to_owned()),
        Just("signed_by('ci')".to_owned()),
        Just("signatures.all(s, s.authority == 'ci')".to_owned()),
        Just("has_package('log4j-core')".to_owned()),
        Just("packages.exists(p, p.name == 'zlib')".to_owned()),
        Just("license_in(['MIT', 'Apache-2.0'])".to_owned()),
        Just("image.repository == 'prod/app'".to_owned()),
        Just("semver_satisfies(image.tag, '>=1.2')".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("1 / 0 == 1".to_owned()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("({a} ? {b} : {c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}].exists(x, x)")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("[{a}, {b}].all(x, x)")),
        ]
    })
}

/// The evidence missing `vulnerabilities`, `signatures`, `packages` and `licenses`.
fn partial() -> Evidence {
    Evidence {
        vulnerabilities: None,
        signatures: None,
        packages: None,
        licenses: None,
        ..clean()
    }
}

/// Documents missing some facts, each with every way (of those tried) to fill them in.
fn partials_and_completions() -> Vec<(Evidence, Vec<Evidence>)> {
    let vulnerabilities = [clean().vulnerabilities, vulnerable().vulnerabilities];
    let signatures = [signed(&[]), signed(&["ci"])];
    let packages = [clean().packages, vulnerable().packages];
    let licenses = [clean().licenses, copyleft().licenses];
    let mut all = Vec::new();
    for vulnerabilities in &vulnerabilities {
        for signatures in &signatures {
            for packages in &packages {
                for licenses in &licenses {
                    all.push(Evidence {
                        vulnerabilities: vulnerabilities.clone(),
                        signatures: signatures.clone(),
                        packages: packages.clone(),
                        licenses: licenses.clone(),
                        ..clean()
                    });
                }
            }
        }
    }
    let one_missing = |missing: fn(&mut Evidence), fill: &mut dyn FnMut(&mut Evidence, usize)| {
        let mut partial = clean();
        missing(&mut partial);
        let completions = (0..2)
            .map(|variant| {
                let mut complete = partial.clone();
                fill(&mut complete, variant);
                complete
            })
            .collect();
        (partial, completions)
    };
    vec![
        (partial(), all),
        one_missing(|e| e.vulnerabilities = None, &mut |e, v| {
            e.vulnerabilities = vulnerabilities[v].clone()
        }),
        one_missing(|e| e.signatures = None, &mut |e, v| {
            e.signatures = signatures[v].clone()
        }),
        one_missing(|e| e.packages = None, &mut |e, v| {
            e.packages = packages[v].clone()
        }),
        one_missing(|e| e.licenses = None, &mut |e, v| {
            e.licenses = licenses[v].clone()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary text never panics the compiler or the evaluator.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Ok(rule) = compile(&text) {
            let _ = evaluate(&rule, &clean(), now());
            let _ = evaluate(&rule, &partial(), now());
        }
    }

    /// CEL-like token soup reaches deeper into the parser and the analysis.
    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(prop_oneof![
        Just("image"), Just("vulnerabilities"), Just("signatures"), Just("f"), Just("."),
        Just("critical"), Just("findings"), Just("labels"), Just("tag"), Just("("), Just(")"),
        Just("["), Just("]"), Just("{"), Just("}"), Just(","), Just(":"), Just("?"), Just("!"),
        Just("&&"), Just("||"), Just("=="), Just("+"), Just("-"), Just("/"), Just("in"),
        Just("0"), Just("'x'"), Just("null"), Just("true"), Just("exists"), Just("map"),
        Just("has"), Just("signed_by"), Just("critical_ids"), Just("join"), Just("matches"),
        Just(".?"), Just("[?"), Just("now"), Just("duration"), Just("size"),
    ], 0..40)) {
        let text = tokens.join(" ");
        if let Ok(rule) = compile(&text) {
            let _ = evaluate(&rule, &clean(), now());
            let _ = evaluate(&rule, &partial(), now());
        }
    }

    /// The pending design's guarantee: a rule decided while facts are missing is decided the
    /// same way whatever those facts turn out to be.
    #[test]
    fn a_verdict_reached_without_a_fact_does_not_depend_on_it(text in rule_text()) {
        let rule = compile(&text).map_err(|error| TestCaseError::fail(format!("{text}: {error}")))?;
        for (partial, completions) in partials_and_completions() {
            let decided = match evaluate(&rule, &partial, now()) {
                Ok(evaluation) => evaluation.verdict,
                Err(_) => continue,
            };
            if let Verdict::Pending { missing } = &decided {
                prop_assert!(!missing.is_empty());
                continue;
            }
            for evidence in &completions {
                let verdict = evaluate(&rule, evidence, now()).map(|evaluation| evaluation.verdict);
                prop_assert_eq!(verdict.as_ref(), Ok(&decided), "{}", text);
            }
        }
    }
}
