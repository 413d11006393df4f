//! An in-process read cache for manifests: pulls read a manifest on every GET/HEAD, and going
//! to SQLite for each costs far more than the answer itself.
//!
//! Manifests are cached by (repository, digest): content-addressed, so an entry is never
//! stale, only deleted. Tags are cached as (repository, tag) → digest and change.
//!
//! Invariant: a cached answer is never older than a write this process acknowledged. Every
//! write that can change what a key resolves to bumps [`ManifestCache::generation`] after its
//! transaction commits and then removes the key (or clears the map). A reader notes the
//! generation before its database read, inserts what it read, and removes its insert again if
//! the generation moved meanwhile; either the writer's removal or the reader's own comes last.
//!
//! This holds because this process is the only writer of its database. With several replicas
//! on one PostgreSQL database (a later issue), tag entries need cross-replica invalidation.

use std::sync::atomic::{AtomicU64, Ordering};

use oci::{Digest, RepositoryName, Tag};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use store::StoredManifest;

#[derive(Clone)]
struct ManifestWeight;

impl Weighter<(RepositoryName, Digest), StoredManifest> for ManifestWeight {
    fn weight(&self, _key: &(RepositoryName, Digest), value: &StoredManifest) -> u64 {
        value.content.len() as u64 + 256
    }
}

pub struct ManifestCache {
    manifests: Cache<(RepositoryName, Digest), StoredManifest, ManifestWeight>,
    tags: Cache<(RepositoryName, Tag), Digest>,
    generation: AtomicU64,
}

impl ManifestCache {
    /// A cache holding up to `bytes` of manifest content.
    pub fn new(bytes: u64) -> ManifestCache {
        ManifestCache {
            manifests: Cache::with_weighter(10_000, bytes, ManifestWeight),
            tags: Cache::new(100_000),
            generation: AtomicU64::new(0),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn manifest(&self, repo: &RepositoryName, digest: &Digest) -> Option<StoredManifest> {
        self.manifests.get(&(repo.clone(), digest.clone()))
    }

    pub fn tag(&self, repo: &RepositoryName, tag: &Tag) -> Option<Digest> {
        self.tags.get(&(repo.clone(), tag.clone()))
    }

    /// Inserts what a read at generation `seen` returned.
    pub fn fill(
        &self,
        seen: u64,
        repo: &RepositoryName,
        tag: Option<&Tag>,
        manifest: &StoredManifest,
    ) {
        let mkey = (repo.clone(), manifest.digest.clone());
        self.manifests.insert(mkey.clone(), manifest.clone());
        let tkey = tag.map(|t| (repo.clone(), t.clone()));
        if let Some(k) = &tkey {
            self.tags.insert(k.clone(), manifest.digest.clone());
        }
        if self.generation() != seen {
            self.manifests.remove(&mkey);
            if let Some(k) = &tkey {
                self.tags.remove(k);
            }
        }
    }

    /// After a tag was moved or deleted.
    pub fn tag_changed(&self, repo: &RepositoryName, tag: &Tag) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.tags.remove(&(repo.clone(), tag.clone()));
    }

    /// After a manifest (and with it, its tags) was deleted.
    pub fn manifest_deleted(&self, repo: &RepositoryName, digest: &Digest) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.manifests.remove(&(repo.clone(), digest.clone()));
        self.tags.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use oci::Algorithm;

    fn manifest(content: &str) -> StoredManifest {
        StoredManifest {
            digest: Digest::compute(Algorithm::Sha256, content.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::copy_from_slice(content.as_bytes()),
        }
    }

    #[test]
    fn a_fill_racing_a_write_is_dropped() {
        let cache = ManifestCache::new(1 << 20);
        let repo: RepositoryName = "a/b".parse().unwrap();
        let tag: Tag = "v1".parse().unwrap();
        let old = manifest("old");
        // Reader saw generation g, then a writer moved the tag before the reader filled.
        let seen = cache.generation();
        cache.tag_changed(&repo, &tag);
        cache.fill(seen, &repo, Some(&tag), &old);
        assert_eq!(cache.tag(&repo, &tag), None);
        // A fill at the current generation sticks.
        cache.fill(cache.generation(), &repo, Some(&tag), &old);
        assert_eq!(cache.tag(&repo, &tag), Some(old.digest.clone()));
        cache.manifest_deleted(&repo, &old.digest);
        assert_eq!(cache.tag(&repo, &tag), None);
        assert!(cache.manifest(&repo, &old.digest).is_none());
    }
}
