//! One HTTP exchange with a registry: redirects, authentication and bounds.
//!
//! Guarantees:
//! - Credentials only go where they belong. Registries redirect blob downloads to storage
//!   hosts (S3, GCS, CDNs) and may hand out upload URLs on other hosts; redirects are followed
//!   here, by hand, and the `Authorization` header is attached only to requests for the
//!   registry's own origin (scheme, host and port), and to the token endpoint the registry
//!   names in its challenge (the token flow sends the user's credentials there by design).
//!   With TLS, a redirect, an upload URL or a token endpoint on plain HTTP is refused.
//! - Nothing waits forever or grows without bound: connecting is limited to
//!   [`CONNECT_TIMEOUT`], waiting for response headers and every single read of a body to
//!   [`IDLE_TIMEOUT`] (reqwest's blocking `timeout` applies to each read separately, so it is
//!   an idle timeout and a long layer download is not cut off), redirects to
//!   [`MAX_REDIRECTS`], token bodies to 1 MiB, and the documents read whole to the limit their
//!   caller gives.
//!
//! Authentication follows the Docker token flow (distribution's `docs/spec/auth/token.md`): a
//! `401` carrying `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends us to the realm
//! for a token (with the user's basic credentials if any, anonymously otherwise), and the
//! request is retried with `Authorization: Bearer <token>`; a `Basic` challenge is answered
//! with the credentials directly. Tokens are kept per repository. The scope the challenge
//! names is the one asked for; when there is none, or when a push meets a challenge that does
//! not grant `push` on the repository, `repository:<name>:pull,push` is asked for too. A token
//! that expires, or a pull token that meets a push, is renewed by the same path, once per
//! request.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use oci::RepositoryName;
use reqwest::Url;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};

use crate::challenge::{Challenge, parse_challenges};
use crate::error::{RemoteError, display_url, error_chain, status_error, transport_error};
use crate::verify::VerifyError;

/// Connecting (TCP and TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for response headers, and for each read of a body, may take this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
/// How much of a token endpoint's answer is read.
const MAX_TOKEN_BODY_BYTES: u64 = 1 << 20;

/// A user name and a password (or an access token used as one), for basic and token auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a request needs to be allowed to do in its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Access {
    /// The actions of a token scope (`repository:<name>:<actions>`).
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// The HTTP methods the Distribution Spec uses here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }

    fn http(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        }
    }

    /// Only reads follow redirects: a registry has no reason to redirect an upload, and
    /// following one would mean deciding where to send the body again.
    fn follows_redirects(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// One request, as the registry API describes it.
pub(crate) struct Exchange<'a> {
    pub method: Method,
    pub url: Url,
    /// The repository the request is about, for its token.
    pub repository: &'a RepositoryName,
    pub access: Access,
    pub accept: Option<&'a str>,
    /// `Content-Type` and body; `None` sends no body.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// What the next request to the registry's origin carries.
#[derive(Default)]
struct AuthState {
    /// The registry asked for basic credentials.
    basic: bool,
    /// The latest bearer token per repository.
    tokens: HashMap<String, String>,
}

/// The HTTP side of a registry client: one origin, one connection pool, one set of
/// credentials.
pub(crate) struct Transport {
    http: Client,
    origin: Url,
    plain_http: bool,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
}

impl Transport {
    pub(crate) fn new(
        origin: Url,
        plain_http: bool,
        credentials: Option<Credentials>,
    ) -> Result<Transport, RemoteError> {
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(IDLE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bonded/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Setup {
                reason: error_chain(&e),
            })?;
        Ok(Transport {
            http,
            origin,
            plain_http,
            credentials,
            auth: Mutex::default(),
        })
    }

    /// `path` (`v2/<name>/…`) on the registry's origin.
    pub(crate) fn url(&self, path: &str) -> Result<Url, RemoteError> {
        self.origin.join(path).map_err(|e| RemoteError::Url {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Sends `exchange`, following redirects (reads only) and answering one auth challenge
    /// from the registry. Returns the final response whatever its status: callers decide
    /// which statuses they expect.
    pub(crate) fn send(&self, exchange: &Exchange<'_>) -> Result<Response, RemoteError> {
        let method = exchange.method;
        let mut url = exchange.url.clone();
        let mut redirects = 0;
        let mut authenticated = false;
        loop {
            let own_origin = self.is_own_origin(&url);
            let mut request = self.http.request(method.http(), url.clone());
            if let Some(accept) = exchange.accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some((content_type, body)) = exchange.body {
                request = request
                    .header(CONTENT_TYPE, content_type)
                    .body(body.to_vec());
            }
            if own_origin {
                request = self.authorize(request, exchange.repository);
            }
            let response = request
                .send()
                .map_err(|e| transport_error(method.as_str(), &url, e))?;
            let status = response.status();
            if status.is_redirection()
                && method.follows_redirects()
                && response.headers().contains_key(LOCATION)
            {
                redirects += 1;
                url = self.redirect_target(&url, &response, redirects)?;
            } else if status == reqwest::StatusCode::UNAUTHORIZED && own_origin && !authenticated {
                self.authenticate(&url, &response, exchange.repository, exchange.access)?;
                authenticated = true;
            } else {
                return Ok(response);
            }
        }
    }

    /// Whether `url` is on the registry's origin (scheme, host and port), so that it may
    /// receive the credentials.
    pub(crate) fn is_own_origin(&self, url: &Url) -> bool {
        url.scheme() == self.origin.scheme()
            && url.host_str() == self.origin.host_str()
            && url.port_or_known_default() == self.origin.port_or_known_default()
    }

    /// Refuses a URL the registry points us to (a redirect, an upload location, a next page)
    /// that is not HTTP(S), or that is plain HTTP while we talk HTTPS.
    pub(crate) fn check_scheme(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_http => Ok(()),
            "http" => Err(format!(
                "refusing to go from HTTPS to plain HTTP ({})",
                display_url(url)
            )),
            other => Err(format!("cannot follow a {other}: URL")),
        }
    }

    /// Where a redirect points, if we may follow it.
    fn redirect_target(
        &self,
        from: &Url,
        response: &Response,
        redirects: usize,
    ) -> Result<Url, RemoteError> {
        let fail = |reason: String| RemoteError::Redirect {
            url: display_url(from),
            reason,
        };
        if redirects > MAX_REDIRECTS {
            return Err(fail(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| fail("the Location header is not text".to_owned()))?;
        let next = from
            .join(location)
            .map_err(|e| fail(format!("bad Location: {e}")))?;
        self.check_scheme(&next).map_err(fail)?;
        Ok(next)
    }

    fn auth_state(&self) -> MutexGuard<'_, AuthState> {
        // The state is a cache: one left behind by a panicking thread is still usable.
        self.auth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authorize(&self, request: RequestBuilder, repository: &RepositoryName) -> RequestBuilder {
        let state = self.auth_state();
        if let Some(token) = state.tokens.get(repository.as_str()) {
            return request.bearer_auth(token);
        }
        match (&self.credentials, state.basic) {
            (Some(credentials), true) => {
                request.basic_auth(&credentials.username, Some(&credentials.password))
            }
            _ => request,
        }
    }

    /// Answers the challenge of a `401`, so that the next request is authorized.
    fn authenticate(
        &self,
        url: &Url,
        response: &Response,
        repository: &RepositoryName,
        access: Access,
    ) -> Result<(), RemoteError> {
        let header = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = parse_challenges(&header);
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.fetch_token(bearer, repository, access)?;
            self.auth_state()
                .tokens
                .insert(repository.as_str().to_owned(), token);
            return Ok(());
        }
        let fail = |reason: String| RemoteError::Auth {
            url: display_url(url),
            reason,
        };
        if !challenges.iter().any(|c| c.scheme == "basic") {
            return Err(fail(format!(
                "401 without a Bearer or Basic challenge (WWW-Authenticate: {:?})",
                header.chars().take(200).collect::<String>()
            )));
        }
        if self.credentials.is_none() {
            return Err(fail(
                "the registry requires a user name and password".to_owned(),
            ));
        }
        self.auth_state().basic = true;
        Ok(())
    }

    /// Asks the token endpoint (`realm`) for a token with the scopes of [`token_scopes`].
    fn fetch_token(
        &self,
        challenge: &Challenge,
        repository: &RepositoryName,
        access: Access,
    ) -> Result<String, RemoteError> {
        let realm = challenge.param("realm").unwrap_or_default();
        let fail = |reason: String| RemoteError::Auth {
            url: realm.chars().take(200).collect(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| fail(format!("bad realm: {e}")))?;
        self.check_scheme(&url)
            .map_err(|e| fail(format!("token realm: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            for scope in token_scopes(challenge, repository, access) {
                query.append_pair("scope", &scope);
            }
        }
        let mut request = self.http.get(url.clone());
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = request
            .send()
            .map_err(|e| transport_error("GET", &url, e))?;
        if !response.status().is_success() {
            return Err(status_error("GET", response));
        }
        let mut body = Vec::new();
        response
            .take(MAX_TOKEN_BODY_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| fail(format!("cannot read the token: {}", error_chain(&e))))?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("the token response is not valid JSON: {e}")))?;
        parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the token response has no token".to_owned()))
    }
}

/// The scopes to ask the token endpoint for: those of the challenge (space-separated, as in
/// distribution's `docs/spec/auth/scope.md`), plus `repository:<name>:<actions>` when the
/// challenge names none or, for a push, grants no push on the repository.
fn token_scopes(challenge: &Challenge, repository: &RepositoryName, access: Access) -> Vec<String> {
    let mut scopes: Vec<String> = challenge
        .param("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let prefix = format!("repository:{repository}:");
    let grants_push = |scope: &String| {
        scope
            .strip_prefix(&prefix)
            .is_some_and(|actions| actions.split(',').any(|a| a == "push" || a == "*"))
    };
    if scopes.is_empty() || (access == Access::Push && !scopes.iter().any(grants_push)) {
        scopes.push(format!("{prefix}{}", access.actions()));
    }
    scopes
}

/// A header's value as text, if present and text.
pub(crate) fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// Reads a document (manifest, config, small blob, referrers page) whole, refusing more than
/// `limit` bytes whether or not the registry announces the length.
pub(crate) fn read_document(
    response: Response,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, RemoteError> {
    let too_large = || VerifyError::TooLarge {
        what: what.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large().into());
    }
    let url = display_url(response.url());
    let mut bytes = Vec::new();
    response
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| RemoteError::Read {
            what: what.to_owned(),
            url,
            reason: error_chain(&e),
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large().into());
    }
    Ok(bytes)
}
