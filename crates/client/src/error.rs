//! What can go wrong talking to a registry, said so that the user can tell whose fault it is.
//!
//! Every error names the method and the URL it concerns, the HTTP status and, when the
//! registry sends the OCI error body, its first code and message (Distribution Spec v1.1,
//! "Error Codes": `{"errors": [{"code": "<error identifier>", "message": "<message>",
//! "detail": …}]}`). URLs are shown without their query, which for storage redirects and
//! upload sessions holds a signature or an opaque state.

use std::io::Read;

use reqwest::Url;
use reqwest::blocking::Response;

use crate::reference::ReferenceError;
use crate::verify::VerifyError;

/// How much of an error body is read to find the OCI error code.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("cannot set up the HTTP client: {reason}")]
    Setup { reason: String },
    #[error("cannot build a URL for {path}: {reason}")]
    Url { path: String, reason: String },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: &'static str,
        url: String,
        /// The error and its causes (`connection refused`, `operation timed out`).
        reason: String,
    },
    #[error("{method} {url}: {status}{detail}")]
    Status {
        method: &'static str,
        url: String,
        status: reqwest::StatusCode,
        /// `": CODE: message"` from the OCI error body, or empty.
        detail: String,
    },
    #[error("{url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("authentication with {url} failed: {reason}")]
    Auth { url: String, reason: String },
    /// The registry answered, but not as the Distribution Spec says it must (no `Location`
    /// for an upload, a malformed `Docker-Content-Digest`, endless referrer pages).
    #[error("{method} {url}: {reason}")]
    Protocol {
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error("reading {what} from {url}: {reason}")]
    Read {
        what: String,
        url: String,
        reason: String,
    },
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// A status error with the first OCI error code and message, if the body has them. The URL
/// is the response's: after a redirect, the one that failed.
pub(crate) fn status_error(method: &'static str, response: Response) -> RemoteError {
    let status = response.status();
    let url = display_url(response.url());
    let mut body = Vec::new();
    // The body only adds detail; a failure to read it leaves the detail empty.
    let _ = response.take(MAX_ERROR_BODY_BYTES).read_to_end(&mut body);
    RemoteError::Status {
        method,
        url,
        status,
        detail: oci_error_detail(&body)
            .map(|d| format!(": {d}"))
            .unwrap_or_default(),
    }
}

/// `CODE: message` from an OCI error body, cleaned of control characters and cut to 300
/// characters each; `None` when the body is not one.
pub fn oci_error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = value.get("errors")?.as_array()?.first()?;
    let code = first.get("code").and_then(|c| c.as_str());
    let message = first.get("message").and_then(|m| m.as_str());
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(300).collect() };
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("{}: {}", clean(c), clean(m))),
        (Some(c), None) => Some(clean(c)),
        (None, Some(m)) => Some(clean(m)),
        (None, None) => None,
    }
}

pub(crate) fn transport_error(
    method: &'static str,
    url: &Url,
    error: reqwest::Error,
) -> RemoteError {
    RemoteError::Transport {
        method,
        url: display_url(url),
        reason: error_chain(&error.without_url()),
    }
}

/// An error with its causes, `a: b: c`. Callers strip URLs first (`reqwest::Error::without_url`):
/// they may carry signatures.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A URL for messages: without its query, which for storage redirects is a signature.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
