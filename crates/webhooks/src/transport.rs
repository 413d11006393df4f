//! Sending one delivery attempt over HTTP, safely.
//!
//! Guarantees, each against a way a webhook sender gets abused or stuck:
//! - **The checked address is the address used.** Host names are resolved here (by a
//!   [`HostLookup`], the system resolver by default) inside reqwest's connector, every
//!   address is checked with [`crate::target::permitted_addresses`] at that moment, and the
//!   connection can only go to an address that passed: DNS rebinding between saving a webhook
//!   and calling it gains nothing. URLs with a literal address were checked when the webhook
//!   was saved and are checked again before each attempt. Endpoints without `allow_private`
//!   use a client whose resolver refuses loopback, private and link-local answers; those with
//!   it use one that refuses only the cloud metadata service.
//! - **No detours.** Redirects are never followed (a `3xx` is an answer, and a failure:
//!   Standard Webhooks, "Delivery success and failure"), and proxies from the environment are
//!   ignored, since a proxy would connect to a host this code never checked.
//! - **Bounded time and memory.** Each attempt has one deadline for connecting, sending and
//!   reading the response head; then at most [`MAX_RESPONSE_EXCERPT`] bytes of the body are
//!   read, within what is left of that deadline, and the rest is dropped unread.
//!
//! TLS certificates are verified against the platform's roots (reqwest's `rustls` feature);
//! there is no switch to turn verification off.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use store::webhooks::MAX_RESPONSE_EXCERPT;
use url::Url;

use crate::retry::AttemptOutcome;
use crate::target::{TargetError, TargetUrl, permitted_addresses};

/// The `User-Agent` of every attempt.
pub const USER_AGENT_VALUE: &str = concat!("Bonded-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Resolves host names to addresses. The system resolver by default; tests supply their own
/// to play a name that resolves to a private address.
pub trait HostLookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl HostLookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|a| a.ip()).collect())
        })
    }
}

/// reqwest's resolver: looks a name up and lets through only addresses the target rules
/// permit.
struct CheckedResolver {
    lookup: Arc<dyn HostLookup>,
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = Arc::clone(&self.lookup);
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = lookup.lookup(host).await?;
            let permitted = permitted_addresses(&resolved, allow_private)?;
            let addrs: Addrs = Box::new(
                permitted
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {source}")]
pub struct TransportError {
    #[source]
    source: reqwest::Error,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub url: Url,
    pub allow_private: bool,
    pub content_type: &'static str,
    /// Extra headers (the Standard Webhooks signature headers).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What one attempt observed.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: AttemptOutcome,
    /// Why no status came, or why the request was not sent.
    pub error: Option<String>,
    /// The first bytes of the response body.
    pub response: Vec<u8>,
    pub duration: Duration,
}

impl AttemptReport {
    /// The status code, when a response came.
    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            AttemptOutcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// An attempt that was not sent.
    pub fn not_sent(reason: String) -> AttemptReport {
        AttemptReport {
            outcome: AttemptOutcome::NotSent,
            error: Some(reason),
            response: Vec::new(),
            duration: Duration::ZERO,
        }
    }
}

/// The HTTP side of delivery: two clients (strict and private-allowed) and a deadline.
pub struct Transport {
    strict: reqwest::Client,
    private: reqwest::Client,
    timeout: Duration,
}

impl Transport {
    /// Builds the clients; `timeout` bounds each attempt.
    pub fn new(
        lookup: Arc<dyn HostLookup>,
        timeout: Duration,
    ) -> Result<Transport, TransportError> {
        let client = |allow_private| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(timeout)
                .timeout(timeout)
                .user_agent(USER_AGENT_VALUE)
                .dns_resolver(Arc::new(CheckedResolver {
                    lookup: Arc::clone(&lookup),
                    allow_private,
                }))
                .build()
                .map_err(|source| TransportError { source })
        };
        Ok(Transport {
            strict: client(false)?,
            private: client(true)?,
            timeout,
        })
    }

    /// Sends `request` once and reports what happened; never fails, never waits longer than
    /// the deadline.
    pub async fn send(&self, request: OutgoingRequest) -> AttemptReport {
        // A literal address is not resolved, so it is checked here, as at saving time.
        if let Err(e) = TargetUrl::parse(request.url.as_str(), request.allow_private) {
            return AttemptReport::not_sent(e.to_string());
        }
        let headers = match header_map(&request) {
            Ok(headers) => headers,
            Err(reason) => return AttemptReport::not_sent(reason),
        };
        let client = if request.allow_private {
            &self.private
        } else {
            &self.strict
        };
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sent = client
            .post(request.url)
            .headers(headers)
            .body(request.body)
            .send();
        let response = match tokio::time::timeout_at(deadline, sent).await {
            Err(_) => return failed(AttemptOutcome::Timeout, "timed out".to_owned(), started),
            Ok(Err(e)) => return transport_failure(&e, started),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let excerpt = read_excerpt(response, deadline).await;
        AttemptReport {
            outcome: AttemptOutcome::Response {
                status,
                retry_after,
            },
            error: None,
            response: excerpt,
            duration: started.elapsed(),
        }
    }
}

fn header_map(request: &OutgoingRequest) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(request.content_type));
    for (name, value) in &request.headers {
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("header {name} has a value that cannot be sent"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} cannot be sent"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Reads at most [`MAX_RESPONSE_EXCERPT`] bytes of the body before `deadline`; whatever was
/// read by then is kept.
async fn read_excerpt(mut response: reqwest::Response, deadline: tokio::time::Instant) -> Vec<u8> {
    let mut excerpt = Vec::new();
    while excerpt.len() < MAX_RESPONSE_EXCERPT {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = MAX_RESPONSE_EXCERPT - excerpt.len();
                excerpt.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            _ => break,
        }
    }
    excerpt
}

fn failed(outcome: AttemptOutcome, error: String, started: Instant) -> AttemptReport {
    AttemptReport {
        outcome,
        error: Some(error),
        response: Vec::new(),
        duration: started.elapsed(),
    }
}

/// Classifies a failed send: a target refused by the resolver was not sent; a timeout is a
/// timeout; anything else is a transport failure. The message is the error's whole chain.
fn transport_failure(error: &reqwest::Error, started: Instant) -> AttemptReport {
    let mut messages = Vec::new();
    let mut refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        refused |= e.downcast_ref::<TargetError>().is_some();
        let text = e.to_string();
        if !messages.iter().any(|m: &String| m.contains(&text)) {
            messages.push(text);
        }
        source = e.source();
    }
    let outcome = if refused {
        AttemptOutcome::NotSent
    } else if error.is_timeout() {
        AttemptOutcome::Timeout
    } else {
        AttemptOutcome::Transport
    };
    failed(outcome, messages.join(": "), started)
}
