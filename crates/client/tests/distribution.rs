//! The client against the CNCF distribution registry (Debian package `docker-registry`,
//! 2.8.2), which must be installed: push blobs and a tagged manifest, read them back by tag
//! and by digest, and see that it has no referrers API.

use std::io::Read;

use client::RegistryClient;
use client::testkit::DockerRegistry;
use serde_json::json;

use crate::server::{OCI_MANIFEST, repository, sha256};

#[test]
fn pushes_and_pulls_with_docker_registry() {
    let registry = DockerRegistry::start();
    let client = RegistryClient::new(registry.host(), true, None).unwrap();
    let repo = repository("demo/signed");

    let config = b"{}".to_vec();
    let payload = br#"{"critical":{"identity":{"docker-reference":"x"}},"optional":null}"#.to_vec();
    let config_digest = client.push_blob(&repo, &config).unwrap();
    let payload_digest = client.push_blob(&repo, &payload).unwrap();
    assert_eq!(
        (config_digest.clone(), payload_digest.clone()),
        (sha256(&config), sha256(&payload))
    );
    assert!(client.blob_exists(&repo, &payload_digest).unwrap());
    // Pushing again finds the blob and uploads nothing.
    assert_eq!(client.push_blob(&repo, &payload).unwrap(), payload_digest);

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest.to_string(),
            "size": payload.len(),
            "annotations": { "dev.cosignproject.cosign/signature": "MEUCIQ==" },
        }],
    }))
    .unwrap();
    let digest = client
        .put_manifest(&repo, "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    assert_eq!(digest, sha256(&manifest));

    let by_tag = client
        .get_manifest(&repo, "v1", &[OCI_MANIFEST])
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.bytes, manifest);
    assert_eq!(by_tag.digest, digest);
    assert_eq!(by_tag.media_type.as_deref(), Some(OCI_MANIFEST));
    let by_digest = client
        .get_manifest(&repo, &digest.to_string(), &[])
        .unwrap()
        .unwrap();
    assert_eq!(by_digest, by_tag);
    let head = client.head_manifest(&repo, "v1", &[]).unwrap().unwrap();
    assert_eq!(
        (head.digest, head.size),
        (digest.clone(), Some(manifest.len() as u64))
    );

    assert_eq!(
        client.get_blob(&repo, &payload_digest, 1 << 20).unwrap(),
        payload
    );
    let mut streamed = Vec::new();
    client
        .open_blob(&repo, &config_digest, Some(config.len() as u64))
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, config);

    assert_eq!(client.get_manifest(&repo, "missing", &[]).unwrap(), None);
    assert_eq!(client.head_manifest(&repo, "missing", &[]).unwrap(), None);
    // distribution 2.8.2 has no referrers API.
    assert_eq!(client.referrers(&repo, &digest, None).unwrap(), None);

    // A manifest naming a blob the repository lacks: the registry's error code shows.
    let dangling = String::from_utf8(manifest)
        .unwrap()
        .replace(&payload_digest.to_string(), &sha256(b"absent").to_string());
    let message = client
        .put_manifest(&repo, "dangling", OCI_MANIFEST, dangling.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        message
            .contains("/v2/demo/signed/manifests/dangling: 400 Bad Request: MANIFEST_BLOB_UNKNOWN"),
        "{message}"
    );
}
