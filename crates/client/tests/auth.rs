//! Authentication: the Docker token flow with pull and push scopes, tokens per repository,
//! and basic challenges.

use crate::server::{Reply, Request, TestServer, basic, client_for, repository};

const MANIFEST: &[u8] = br#"{"schemaVersion":2}"#;
const PULL_TOKEN: &str = "Bearer pull-token";
const PUSH_TOKEN: &str = "Bearer push-token";

/// Which scope the registry's challenges name.
#[derive(Clone, Copy)]
enum Challenges {
    /// `pull` for reads, `pull,push` for writes, as distribution does.
    ByAction,
    /// `pull` always.
    PullOnly,
    /// No `scope` parameter.
    Unscoped,
}

/// A registry whose token endpoint (`/token`, needing basic `alice:s3cret`) hands out
/// `push-token` when a scope asks for push and `pull-token` otherwise; reads need either
/// token, writes the push token.
fn token_registry(challenges: Challenges) -> TestServer {
    TestServer::start(move |request, base| {
        if request.path() == "/token" {
            return token_endpoint(request);
        }
        let authorization = request.header("authorization");
        let write = matches!(request.method.as_str(), "POST" | "PUT");
        let allowed = if write {
            authorization == Some(PUSH_TOKEN)
        } else {
            authorization == Some(PULL_TOKEN) || authorization == Some(PUSH_TOKEN)
        };
        if !allowed {
            return challenge(request, base, challenges, write);
        }
        match request.method.as_str() {
            "GET" => Reply::new(200).body(MANIFEST),
            "HEAD" => Reply::new(404),
            "POST" => Reply::new(202).header("Location", "/v2/demo/app/blobs/uploads/1"),
            _ => Reply::new(201),
        }
    })
}

fn token_endpoint(request: &Request) -> Reply {
    if request.header("authorization") != Some(basic("alice", "s3cret").as_str()) {
        return Reply::oci_error(401, "UNAUTHORIZED", "bad credentials");
    }
    let push = request
        .query("scope")
        .iter()
        .any(|s| s.ends_with(":pull,push"));
    let token = if push { "push-token" } else { "pull-token" };
    Reply::json(
        200,
        serde_json::json!({ "token": token, "expires_in": 300 }),
    )
}

fn challenge(request: &Request, base: &str, challenges: Challenges, write: bool) -> Reply {
    let name = request
        .path()
        .trim_start_matches("/v2/")
        .split("/manifests/")
        .next()
        .and_then(|p| p.split("/blobs/").next())
        .unwrap_or("");
    let scope = match (challenges, write) {
        (Challenges::ByAction, true) => format!(r#",scope="repository:{name}:pull,push""#),
        (Challenges::ByAction | Challenges::PullOnly, _) => {
            format!(r#",scope="repository:{name}:pull""#)
        }
        (Challenges::Unscoped, _) => String::new(),
    };
    let error = if request.header("authorization").is_some() {
        r#",error="insufficient_scope""#
    } else {
        ""
    };
    Reply::oci_error(401, "UNAUTHORIZED", "authentication required").header(
        "WWW-Authenticate",
        &format!(r#"Bearer realm="{base}/token",service="test-registry"{scope}{error}"#),
    )
}

/// `(scope values, service)` of every token request.
fn token_requests(server: &TestServer) -> Vec<(Vec<String>, Vec<String>)> {
    server
        .log()
        .iter()
        .filter(|l| l.request.path() == "/token")
        .map(|l| (l.request.query("scope"), l.request.query("service")))
        .collect()
}

#[test]
fn a_pull_token_is_renewed_with_the_push_scope() {
    let server = token_registry(Challenges::ByAction);
    let client = client_for(&server, Some(("alice", "s3cret")));
    let repo = repository("demo/app");
    let pulled = client.get_manifest(&repo, "v1", &[]).unwrap().unwrap();
    assert_eq!(pulled.bytes, MANIFEST);
    client.push_blob(&repo, b"signature payload").unwrap();
    client
        .put_manifest(
            &repo,
            "v2",
            "application/vnd.oci.image.manifest.v1+json",
            MANIFEST,
        )
        .unwrap();
    client.get_manifest(&repo, "v1", &[]).unwrap().unwrap();

    let service = vec!["test-registry".to_owned()];
    assert_eq!(
        token_requests(&server),
        [
            (vec!["repository:demo/app:pull".to_owned()], service.clone()),
            (vec!["repository:demo/app:pull,push".to_owned()], service),
        ]
    );
    let exchanges: Vec<(String, Option<&str>, u16)> = server
        .log()
        .iter()
        .filter(|l| l.request.path() != "/token")
        .map(|l| {
            let kind = if l.request.path().contains("/manifests/") {
                "manifests"
            } else {
                "blobs"
            };
            let authorization = match l.request.header("authorization") {
                Some(PULL_TOKEN) => Some(PULL_TOKEN),
                Some(PUSH_TOKEN) => Some(PUSH_TOKEN),
                None => None,
                Some(other) => panic!("unexpected Authorization {other}"),
            };
            (
                format!("{} {kind}", l.request.method),
                authorization,
                l.status,
            )
        })
        .collect();
    let expected: Vec<(String, Option<&str>, u16)> = [
        ("GET manifests", None, 401),
        ("GET manifests", Some(PULL_TOKEN), 200),
        ("HEAD blobs", Some(PULL_TOKEN), 404),
        ("POST blobs", Some(PULL_TOKEN), 401),
        ("POST blobs", Some(PUSH_TOKEN), 202),
        ("PUT blobs", Some(PUSH_TOKEN), 201),
        ("PUT manifests", Some(PUSH_TOKEN), 201),
        ("GET manifests", Some(PUSH_TOKEN), 200),
    ]
    .into_iter()
    .map(|(line, authorization, status)| (line.to_owned(), authorization, status))
    .collect();
    assert_eq!(exchanges, expected);
}

#[test]
fn a_push_asks_for_push_even_when_the_challenge_names_pull() {
    let server = token_registry(Challenges::PullOnly);
    let client = client_for(&server, Some(("alice", "s3cret")));
    client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap();
    // The challenge's scope is asked for, and push on top: one token serves the whole push.
    assert_eq!(
        token_requests(&server),
        [(
            vec![
                "repository:demo/app:pull".to_owned(),
                "repository:demo/app:pull,push".to_owned()
            ],
            vec!["test-registry".to_owned()]
        )]
    );
    let statuses: Vec<u16> = server.log().iter().map(|l| l.status).collect();
    assert_eq!(statuses, [401, 200, 404, 202, 201]);
}

#[test]
fn without_a_challenge_scope_the_scope_follows_the_operation_and_repository() {
    let server = token_registry(Challenges::Unscoped);
    let client = client_for(&server, Some(("alice", "s3cret")));
    client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap();
    client
        .get_manifest(&repository("demo/other"), "v1", &[])
        .unwrap()
        .unwrap();
    // The token of demo/app is not used for demo/other.
    let scopes: Vec<Vec<String>> = token_requests(&server)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        scopes,
        [
            vec!["repository:demo/app:pull,push".to_owned()],
            vec!["repository:demo/other:pull".to_owned()]
        ]
    );
}

#[test]
fn token_endpoint_refusals_name_the_endpoint() {
    let server = token_registry(Challenges::ByAction);
    let client = client_for(&server, Some(("alice", "wrong")));
    let message = client
        .get_manifest(&repository("demo/app"), "v1", &[])
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!("GET {}/token: ", server.base())),
        "{message}"
    );
    assert!(
        message.ends_with("401 Unauthorized: UNAUTHORIZED: bad credentials"),
        "{message}"
    );
}

#[test]
fn basic_challenges_are_answered_with_the_credentials() {
    let expected = basic("alice", "s3cret");
    let server = TestServer::start(move |request, _| {
        if request.header("authorization") == Some(expected.as_str()) {
            Reply::new(200).body(MANIFEST)
        } else {
            Reply::oci_error(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", r#"Basic realm="test""#)
        }
    });
    let repo = repository("demo/app");
    let client = client_for(&server, Some(("alice", "s3cret")));
    client.get_manifest(&repo, "v1", &[]).unwrap().unwrap();
    client.get_manifest(&repo, "v2", &[]).unwrap().unwrap();
    let statuses: Vec<u16> = server.log().iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        [401, 200, 200],
        "the registry's choice of Basic is remembered"
    );

    let anonymous = client_for(&server, None);
    let message = anonymous
        .get_manifest(&repo, "v1", &[])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("requires a user name and password"),
        "{message}"
    );
    let wrong = client_for(&server, Some(("alice", "wrong")));
    let message = wrong
        .get_manifest(&repo, "v1", &[])
        .unwrap_err()
        .to_string();
    assert!(
        message.ends_with("401 Unauthorized: UNAUTHORIZED: authentication required"),
        "{message}"
    );
}
