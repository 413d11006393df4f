//! The one error type of the HTTP edge.
//!
//! Every failure reaches the client as the Distribution Spec's error JSON
//! (`{"errors":[{"code","message","detail"}]}`) with a status that follows from the code.
//! [`Fault`] records whose fault it was: client errors are logged at debug level, our own at
//! error level, and internal details (paths, SQL) never reach the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::{Digest, DigestError, ManifestError, NameError};
use serde::Serialize;
use serde_json::{Value, json};
use store::{PutManifestError, StoreError};

/// Error codes of the Distribution Spec (v1.1 "Error Codes", code-1 … code-14), plus the
/// legacy `TAG_INVALID` it lists among "Legacy Docker support error codes", and `UNKNOWN`
/// for our own failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The status distribution uses for each code (`registry/api/v2/errors.go`), which is
    /// what clients have been written against; the spec itself does not fix them.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong; retrying it unchanged will fail again.
    Client,
    /// We failed; the request may succeed later.
    Internal,
}

#[derive(Debug, Serialize)]
struct ErrorEntry {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Value>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    fault: Fault,
    errors: Vec<ErrorEntry>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Logged, never sent.
    internal: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            fault: if code == ErrorCode::Unknown {
                Fault::Internal
            } else {
                Fault::Client
            },
            errors: vec![ErrorEntry {
                code: code.as_str(),
                message: message.into(),
                detail: None,
            }],
            headers: Vec::new(),
            internal: None,
        }
    }

    /// An internal failure: the client sees a generic message, the log sees `what`.
    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        let mut e = ApiError::new(ErrorCode::Unknown, "internal server error");
        e.internal = Some(what.to_string());
        e
    }

    pub fn with_detail(mut self, detail: Value) -> ApiError {
        if let Some(first) = self.errors.first_mut() {
            first.detail = Some(detail);
        }
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// Adds another error entry (the spec allows several per response).
    pub fn and(
        mut self,
        code: ErrorCode,
        message: impl Into<String>,
        detail: Option<Value>,
    ) -> ApiError {
        self.errors.push(ErrorEntry {
            code: code.as_str(),
            message: message.into(),
            detail,
        });
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn code(&self) -> &'static str {
        self.errors.first().map(|e| e.code).unwrap_or("UNKNOWN")
    }

    /// One line for logs and background jobs (never for clients): the code, the message and,
    /// for an internal fault, what went wrong inside.
    pub fn describe(&self) -> String {
        let message = self
            .errors
            .first()
            .map(|e| e.message.as_str())
            .unwrap_or_default();
        match &self.internal {
            Some(internal) => format!("{}: {message} ({internal})", self.code()),
            None => format!("{}: {message}", self.code()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match (&self.fault, &self.internal) {
            (Fault::Internal, Some(what)) => tracing::error!(error = %what, "internal error"),
            (Fault::Internal, None) => tracing::error!(code = self.code(), "internal error"),
            (Fault::Client, _) => {
                tracing::debug!(code = self.code(), message = ?self.errors.first().map(|e| &e.message), "client error")
            }
        }
        let body = json!({ "errors": self.errors }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // The Distribution Spec has no code for it; DENIED (403) is what a registry
            // answers for an operation it refuses by policy, and the message says why.
            StoreError::ImmutableTag { reason } => ApiError::new(
                ErrorCode::Denied,
                format!("the tag is immutable and cannot be moved or deleted: {reason}"),
            ),
            e => ApiError::internal(e),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> ApiError {
        match e {
            NameError::InvalidName { .. } => ApiError::new(ErrorCode::NameInvalid, e.to_string()),
            NameError::InvalidTag { .. } => ApiError::new(ErrorCode::TagInvalid, e.to_string()),
            NameError::InvalidDigest(d) => d.into(),
        }
    }
}

impl From<DigestError> for ApiError {
    fn from(e: DigestError) -> ApiError {
        ApiError::new(ErrorCode::DigestInvalid, e.to_string())
    }
}

impl From<ManifestError> for ApiError {
    fn from(e: ManifestError) -> ApiError {
        ApiError::new(ErrorCode::ManifestInvalid, e.to_string())
    }
}

impl From<PutManifestError> for ApiError {
    /// Distribution Spec v1.1, "Pushing Manifests": a manifest rejected for references to
    /// unknown content "MUST result in one or more `MANIFEST_BLOB_UNKNOWN` errors"; that holds
    /// for the child manifests of an index too, so both get that code, one entry each.
    fn from(e: PutManifestError) -> ApiError {
        match e {
            PutManifestError::Store(s) => s.into(),
            PutManifestError::MissingReferences { blobs, manifests } => {
                let entries = blobs
                    .iter()
                    .map(|d| (d, "blob"))
                    .chain(manifests.iter().map(|d| (d, "manifest")));
                let total = blobs.len() + manifests.len();
                let mut err: Option<ApiError> = None;
                // One entry per missing reference, up to a bound: a hostile manifest with
                // thousands of descriptors must not produce a response of the same size.
                for (digest, kind) in entries.take(MAX_ERROR_ENTRIES) {
                    let message =
                        format!("manifest references {kind} {digest} unknown to this repository");
                    let detail = json!({ "digest": digest.to_string(), "kind": kind });
                    err = Some(match err {
                        None => ApiError::new(ErrorCode::ManifestBlobUnknown, message)
                            .with_detail(detail),
                        Some(e) => e.and(ErrorCode::ManifestBlobUnknown, message, Some(detail)),
                    });
                }
                if let Some(e) = err.as_mut()
                    && total > MAX_ERROR_ENTRIES
                {
                    e.errors.push(ErrorEntry {
                        code: ErrorCode::ManifestBlobUnknown.as_str(),
                        message: format!(
                            "and {} more unknown references",
                            total - MAX_ERROR_ENTRIES
                        ),
                        detail: None,
                    });
                }
                err.unwrap_or_else(|| ApiError::internal("empty missing-reference list"))
            }
        }
    }
}

/// The most error entries one response lists.
const MAX_ERROR_ENTRIES: usize = 100;

/// Shorthand constructors used by the handlers.
pub fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUnknown,
        format!("blob {digest} unknown to this repository"),
    )
    .with_detail(json!({ "digest": digest.to_string() }))
}

pub fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        "upload session unknown to this registry",
    )
    .with_detail(json!({ "session": id }))
}
