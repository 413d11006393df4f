//! Image references, `WWW-Authenticate` challenges and OCI error bodies: the parsers.

use client::{ImageReference, oci_error_detail, parse_challenges};
use proptest::prelude::*;

fn parsed(s: &str) -> (String, String, String) {
    let r = ImageReference::parse(s).unwrap();
    (
        r.registry,
        r.repository.to_string(),
        r.reference.to_string(),
    )
}

#[test]
fn docker_hub_shorthand() {
    let latest = ("docker.io".into(), "library/alpine".into(), "latest".into());
    assert_eq!(parsed("alpine"), latest);
    assert_eq!(parsed("docker://alpine"), latest);
    assert_eq!(parsed("docker.io/alpine"), latest);
    assert_eq!(parsed("index.docker.io/library/alpine:latest"), latest);
    assert_eq!(
        parsed("bitnami/redis:7.2"),
        ("docker.io".into(), "bitnami/redis".into(), "7.2".into())
    );
}

#[test]
fn registry_hosts() {
    assert_eq!(
        parsed("localhost/foo"),
        ("localhost".into(), "foo".into(), "latest".into())
    );
    assert_eq!(
        parsed("localhost:5000/foo/bar:v1"),
        ("localhost:5000".into(), "foo/bar".into(), "v1".into())
    );
    assert_eq!(
        parsed("127.0.0.1:5000/a"),
        ("127.0.0.1:5000".into(), "a".into(), "latest".into())
    );
    assert_eq!(
        parsed("ghcr.io/owner/image:1.0"),
        ("ghcr.io".into(), "owner/image".into(), "1.0".into())
    );
    assert_eq!(
        parsed("[::1]:5000/a:b"),
        ("[::1]:5000".into(), "a".into(), "b".into())
    );
    // A first segment without `.`/`:` is a Docker Hub namespace, not a host.
    assert_eq!(parsed("myhost/image").0, "docker.io");
}

#[test]
fn digests_win_over_tags() {
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(parsed(&format!("quay.io/x/y@{d}")).2, d);
    assert_eq!(parsed(&format!("quay.io/x/y:v1@{d}")).2, d);
}

#[test]
fn names_and_digest_pinning() {
    let tagged = ImageReference::parse("127.0.0.1:45000/demo/hello:v1").unwrap();
    assert_eq!(tagged.name(), "127.0.0.1:45000/demo/hello");
    assert_eq!(
        ImageReference::parse("alpine").unwrap().name(),
        "docker.io/library/alpine"
    );
    let digest = oci::Digest::compute(oci::Algorithm::Sha256, b"manifest");
    let pinned = tagged.with_digest(&digest);
    assert_eq!(
        pinned.to_string(),
        format!("127.0.0.1:45000/demo/hello@{digest}")
    );
    assert_eq!(pinned.name(), tagged.name());
    assert_eq!(pinned.reference, oci::Reference::Digest(digest));
}

#[test]
fn refuses_bad_references() {
    for bad in [
        "",
        "upper/CASE",
        "host:0/x",
        "host:99999/x",
        "a/b:bad:tag",
        "x@sha256:short",
        "x:tag@sha256:short",
        "user@host/x",
        "ex ample.com/x",
        "example.com/",
        "example.com/x:",
    ] {
        assert!(ImageReference::parse(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn challenges() {
    let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
    let parsed = parse_challenges(header);
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].scheme, "bearer");
    assert_eq!(
        parsed[0].param("realm"),
        Some("https://auth.docker.io/token")
    );
    assert_eq!(parsed[0].param("service"), Some("registry.docker.io"));
    assert_eq!(
        parsed[0].param("scope"),
        Some("repository:samalba/my-app:pull,push")
    );

    let two = parse_challenges(r#"Basic realm="a \"b\"", Bearer realm=x , service = y"#);
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].scheme, "basic");
    assert_eq!(two[0].param("realm"), Some(r#"a "b""#));
    assert_eq!(two[1].param("realm"), Some("x"));
    assert_eq!(two[1].param("service"), Some("y"));

    let token68 = parse_challenges("Negotiate abc==, Basic realm=r");
    assert_eq!(token68.len(), 2);
    assert_eq!(token68[1].param("realm"), Some("r"));
}

#[test]
fn oci_error_bodies() {
    let body =
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
    assert_eq!(
        oci_error_detail(body).as_deref(),
        Some("MANIFEST_UNKNOWN: manifest unknown")
    );
    assert_eq!(
        oci_error_detail(br#"{"errors":[{"code":"DENIED\u0007"}]}"#).as_deref(),
        Some("DENIED")
    );
    assert_eq!(oci_error_detail(b"<html>nope</html>"), None);
    assert_eq!(oci_error_detail(br#"{"errors":[]}"#), None);
}

proptest! {
    #[test]
    fn references_never_panic(s in "\\PC{0,80}") {
        if let Ok(r) = ImageReference::parse(&s) {
            // A parsed reference prints as something that parses to itself.
            let again = ImageReference::parse(&r.to_string()).unwrap();
            prop_assert_eq!(again, r);
        }
    }

    #[test]
    fn challenge_parsing_never_panics(s in "\\PC{0,200}") {
        let parsed = parse_challenges(&s);
        prop_assert!(parsed.len() <= s.len());
    }

    #[test]
    fn challenge_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_challenges(&String::from_utf8_lossy(&bytes));
        let _ = oci_error_detail(&bytes);
    }
}
