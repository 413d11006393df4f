//! Image references as users write them: `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`.
//!
//! Parsing follows docker's normalization (`distribution/reference`, `normalize.go`), so that
//! `alpine` means `docker.io/library/alpine:latest` and a reference printed by docker, podman
//! or skopeo means the same image here. A parsed [`ImageReference`] always prints as a
//! reference that parses back to itself.

use std::fmt;
use std::str::FromStr;

use oci::{Digest, Reference, RepositoryName, Tag};
use reqwest::Url;

/// Docker Hub's name as users write it.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub serves the registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A reference (or a registry name) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The input, cut to 300 characters.
    pub reference: String,
    pub reason: String,
}

impl ReferenceError {
    pub(crate) fn new(reference: &str, reason: impl fmt::Display) -> ReferenceError {
        ReferenceError {
            reference: reference.chars().take(300).collect(),
            reason: reason.to_string(),
        }
    }
}

/// A parsed `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    pub repository: RepositoryName,
    /// The tag (`latest` when none is given) or the digest; with both, the digest wins.
    pub reference: Reference,
}

impl ImageReference {
    /// Parses a reference with docker's rules: the first path segment is a registry host only
    /// if it contains `.` or `:`, is `localhost`, or has upper-case letters; otherwise the
    /// image is on Docker Hub, where a one-segment name lives under `library/`.
    pub fn parse(input: &str) -> Result<ImageReference, ReferenceError> {
        let fail = |reason: &dyn fmt::Display| ReferenceError::new(input, reason);
        let text = input.strip_prefix("docker://").unwrap_or(input);
        let (named, digest) = match text.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (text, None),
        };
        // A `:` after the last `/` starts the tag; one before it belongs to `host:port`.
        let (name, tag) = match named.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (named, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if is_registry_host(first) => (first, rest.to_owned()),
            _ => (DOCKER_HUB, name.to_owned()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        if !is_valid_host(registry) {
            return Err(fail(&"the registry must be HOST or HOST:PORT"));
        }
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let repository = RepositoryName::from_str(&path).map_err(|e| fail(&e))?;
        let reference = match (digest, tag) {
            (Some(d), _) => Reference::Digest(Digest::from_str(d).map_err(|e| fail(&e))?),
            (None, Some(t)) => Reference::Tag(Tag::from_str(t).map_err(|e| fail(&e))?),
            (None, None) => Reference::Tag(Tag::from_str("latest").map_err(|e| fail(&e))?),
        };
        if let (Some(_), Some(t)) = (digest, tag) {
            // `name:tag@digest` is valid; the tag is informational. Still reject a bad one.
            Tag::from_str(t).map_err(|e| fail(&e))?;
        }
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            reference,
        })
    }

    /// `host[:port]/repository`, the name part of a docker reference without tag or digest
    /// (distribution's `reference.Named.Name()`): `docker.io/library/alpine`,
    /// `127.0.0.1:5000/demo/hello`. This is what a simple-signing payload's
    /// `docker-reference` starts with.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository, pinned to `digest`.
    pub fn with_digest(&self, digest: &Digest) -> ImageReference {
        ImageReference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            reference: Reference::Digest(digest.clone()),
        }
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<ImageReference, ReferenceError> {
        ImageReference::parse(input)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}:{t}", self.name()),
            Reference::Digest(d) => write!(f, "{}@{d}", self.name()),
        }
    }
}

/// The origin a registry serves its API from: `https://host[:port]/` (`http://` when
/// `plain_http`), with Docker Hub's API host in place of `docker.io`.
pub(crate) fn api_origin(registry: &str, plain_http: bool) -> Result<Url, ReferenceError> {
    if !is_valid_host(registry) {
        return Err(ReferenceError::new(
            registry,
            "the registry must be HOST or HOST:PORT",
        ));
    }
    let host = match registry {
        DOCKER_HUB | "index.docker.io" => DOCKER_HUB_API_HOST,
        other => other,
    };
    let scheme = if plain_http { "http" } else { "https" };
    Url::parse(&format!("{scheme}://{host}/")).map_err(|e| ReferenceError::new(registry, e))
}

fn is_registry_host(segment: &str) -> bool {
    segment.contains(['.', ':'])
        || segment == "localhost"
        || segment.chars().any(|c| c.is_ascii_uppercase())
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    name_ok && port_ok
}
