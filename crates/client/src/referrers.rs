//! The referrers API (Distribution Spec v1.1, "Listing Referrers", endpoint end-12a):
//! `GET /v2/<name>/referrers/<digest>[?artifactType=<type>]` answers an image index whose
//! `manifests` describe the manifests whose `subject` is `<digest>`.
//!
//! The spec says that "a registry that supports the referrers API MUST NOT return a 404"; a
//! 404, or an answer that is not an index, therefore means the registry has no referrers API
//! (distribution 2.8.2 answers 404), and callers fall back to the referrers tag schema.
//! Pages are followed through `Link: <…>; rel="next"` (RFC 8288), at most
//! [`MAX_REFERRER_PAGES`] of them. Filtering by `artifactType` is a SHOULD for the registry,
//! so the filter is applied here too.
//!
//! The `Link` header is parsed by hand: only the `rel="next"` target is needed, and the
//! crates that parse RFC 8288 in full bring a web framework along.

use oci::{Descriptor, Digest, MediaType, RepositoryName};
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header::LINK;

use crate::error::{RemoteError, display_url, status_error};
use crate::registry::{MAX_DOCUMENT_BYTES, RegistryClient};
use crate::transport::{Access, Exchange, Method, read_document};

/// The most pages of referrers followed for one subject.
pub const MAX_REFERRER_PAGES: usize = 16;

/// One page of the referrers list.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrersPage {
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

impl RegistryClient {
    /// The descriptors of the manifests in `repository` whose subject is `digest`, with
    /// `artifact_type` if given; `None` when the registry has no referrers API.
    pub fn referrers(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, RemoteError> {
        let mut url = self
            .transport
            .url(&format!("v2/{repository}/referrers/{digest}"))?;
        if let Some(artifact_type) = artifact_type {
            url.query_pairs_mut()
                .append_pair("artifactType", artifact_type);
        }
        let mut found = Vec::new();
        for page in 0..MAX_REFERRER_PAGES {
            let response = self.transport.send(&Exchange {
                method: Method::Get,
                url: url.clone(),
                repository,
                access: Access::Pull,
                accept: Some(MediaType::OciIndex.as_str()),
                body: None,
            })?;
            if page == 0 && response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(status_error("GET", response));
            }
            let next = self.next_page(&response)?;
            let what = format!("referrers of {digest}");
            let bytes = read_document(response, &what, MAX_DOCUMENT_BYTES)?;
            let Some(manifests) = parse_page(&bytes) else {
                if page == 0 {
                    return Ok(None);
                }
                return Err(protocol(
                    &url,
                    "a later page of referrers is not an image index",
                ));
            };
            found.extend(manifests.into_iter().filter(|d| {
                artifact_type.is_none_or(|wanted| d.artifact_type.as_deref() == Some(wanted))
            }));
            match next {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
        Err(protocol(
            &url,
            &format!("more than {MAX_REFERRER_PAGES} pages of referrers"),
        ))
    }

    /// The `rel="next"` target of a page, resolved against the page's URL.
    fn next_page(
        &self,
        response: &reqwest::blocking::Response,
    ) -> Result<Option<Url>, RemoteError> {
        let url = response.url();
        let values = response
            .headers()
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(target) = values.filter_map(next_link).next() else {
            return Ok(None);
        };
        let next = url
            .join(target)
            .map_err(|e| protocol(url, &format!("bad Link: {e}")))?;
        self.transport
            .check_scheme(&next)
            .map_err(|e| protocol(url, &e))?;
        Ok(Some(next))
    }
}

/// The descriptors of an image index, or `None` when `bytes` are not one.
fn parse_page(bytes: &[u8]) -> Option<Vec<Descriptor>> {
    let page: ReferrersPage = serde_json::from_slice(bytes).ok()?;
    match page.media_type.as_deref().map(MediaType::parse) {
        None | Some(Some(MediaType::OciIndex)) => Some(page.manifests),
        Some(_) => None,
    }
}

/// The target of the `rel="next"` link in one `Link` header value (RFC 8288 section 3:
/// `Link = #link-value`, `link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )`,
/// where `rel` holds space-separated relation types).
fn next_link(value: &str) -> Option<&str> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = rest.get(open + 1..)?;
        let close = after.find('>')?;
        let target = after.get(..close)?;
        let params_and_more = after.get(close + 1..)?;
        // The parameters run to the next link-value.
        let params = params_and_more
            .find('<')
            .and_then(|end| params_and_more.get(..end))
            .unwrap_or(params_and_more);
        let is_next = params.split([';', ',']).any(|param| {
            param.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target);
        }
        rest = params_and_more;
    }
    None
}

fn protocol(url: &Url, reason: &str) -> RemoteError {
    RemoteError::Protocol {
        method: "GET",
        url: display_url(url),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/referrers/sha256:x?n=1&last=b>; rel="next""#),
            Some("/v2/a/referrers/sha256:x?n=1&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; type="a"; rel=next"#),
            Some("https://x/next")
        );
        assert_eq!(next_link(r#"<a>; rel="prev next""#), Some("a"));
        assert_eq!(next_link(r#"<a>; rel="nextish""#), None);
        assert_eq!(next_link("<unclosed; rel=next"), None);
        assert_eq!(next_link(""), None);
    }
}
