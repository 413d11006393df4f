//! Parsing `/v2/...` paths into endpoints.
//!
//! Repository names contain `/`, and axum's router (matchit) allows a wildcard only as the
//! last segment (tokio-rs/axum#3283), so one `/v2/{*rest}` route hands the raw path here and
//! we anchor on the endpoint suffix from the right: `/manifests/<ref>`, `/blobs/<digest>`,
//! `/blobs/uploads/[<id>]`, `/tags/list`, `/referrers/<digest>`. Whatever is left is the name,
//! validated afterwards by [`oci::RepositoryName`]. The raw (still percent-encoded) path is
//! parsed, so `%2e%2e` stays a literal that no name or reference grammar accepts.

/// A Distribution API endpoint with its unvalidated path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    Manifest {
        name: &'a str,
        reference: &'a str,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/` (POST)
    UploadStart {
        name: &'a str,
    },
    Upload {
        name: &'a str,
        id: &'a str,
    },
    Tags {
        name: &'a str,
    },
    Referrers {
        name: &'a str,
        digest: &'a str,
    },
}

impl Endpoint<'_> {
    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Endpoint::Base => "base",
            Endpoint::Catalog => "catalog",
            Endpoint::Manifest { .. } => "manifest",
            Endpoint::Blob { .. } => "blob",
            Endpoint::UploadStart { .. } => "upload_start",
            Endpoint::Upload { .. } => "upload",
            Endpoint::Tags { .. } => "tags",
            Endpoint::Referrers { .. } => "referrers",
        }
    }
}

/// Parses a request path; `None` when it names no endpoint.
pub fn parse(path: &str) -> Option<Endpoint<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Endpoint::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Endpoint::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Endpoint::Tags { name });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Endpoint::UploadStart { name });
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Endpoint::Manifest {
            name,
            reference: last,
        }),
        "referrers" => Some(Endpoint::Referrers { name, digest: last }),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?;
            Some(Endpoint::Upload { name, id: last })
        }
        "blobs" => Some(Endpoint::Blob { name, digest: last }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn never_panics(path in "(/v2)?[/a-z0-9._:%-]{0,80}") {
            let _ = parse(&path).map(|e| e.label());
        }
    }

    #[test]
    fn parses_endpoints() {
        assert_eq!(parse("/v2/"), Some(Endpoint::Base));
        assert_eq!(parse("/v2"), Some(Endpoint::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Endpoint::Catalog));
        assert_eq!(
            parse("/v2/a/b/c/manifests/latest"),
            Some(Endpoint::Manifest {
                name: "a/b/c",
                reference: "latest"
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:00"),
            Some(Endpoint::Blob {
                name: "a",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads/"),
            Some(Endpoint::UploadStart { name: "a/b" })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads"),
            Some(Endpoint::UploadStart { name: "a/b" })
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/123"),
            Some(Endpoint::Upload {
                name: "a",
                id: "123"
            })
        );
        assert_eq!(
            parse("/v2/x/y/tags/list"),
            Some(Endpoint::Tags { name: "x/y" })
        );
        assert_eq!(
            parse("/v2/x/referrers/sha256:1"),
            Some(Endpoint::Referrers {
                name: "x",
                digest: "sha256:1"
            })
        );
        // Names may contain endpoint words as components.
        assert_eq!(
            parse("/v2/manifests/blobs/manifests/v1"),
            Some(Endpoint::Manifest {
                name: "manifests/blobs",
                reference: "v1"
            })
        );
        assert_eq!(parse("/v3/a/manifests/x"), None);
        assert_eq!(parse("/v2/a/unknown/x"), None);
        assert_eq!(parse("/v2/a"), None);
        assert_eq!(
            parse("/v2/%2e%2e/manifests/x"),
            Some(Endpoint::Manifest {
                name: "%2e%2e",
                reference: "x"
            })
        );
    }
}
