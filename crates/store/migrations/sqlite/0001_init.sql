-- Bonded metadata, SQLite flavour. Every table is STRICT so a type confusion is an error,
-- not a silent coercion. Digests are stored in their canonical string form.

CREATE TABLE repositories (
    name        TEXT    NOT NULL PRIMARY KEY,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Blobs whose bytes are committed to the blob store (verified digest).
CREATE TABLE blobs (
    digest      TEXT    NOT NULL PRIMARY KEY,
    size        INTEGER NOT NULL CHECK (size >= 0),
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A blob is visible in a repository only through a link (uploads, mounts); later GC walks this.
CREATE TABLE repository_blobs (
    repository  TEXT    NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest      TEXT    NOT NULL REFERENCES blobs(digest),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

-- Manifests, byte for byte as pushed.
CREATE TABLE manifests (
    repository    TEXT    NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest        TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    content       BLOB    NOT NULL,
    subject       TEXT,
    artifact_type TEXT,
    annotations   TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX manifests_subject ON manifests(repository, subject) WHERE subject IS NOT NULL;

-- What a manifest references (blobs for images, manifests for indexes): for GC and for
-- refusing deletes that would break an index later.
CREATE TABLE manifest_references (
    repository       TEXT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    target_digest    TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository, manifest_digest, target_digest, kind),
    FOREIGN KEY (repository, manifest_digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE tags (
    repository       TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    manifest_digest  TEXT    NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (repository, name),
    FOREIGN KEY (repository, manifest_digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX tags_order ON tags(repository, name COLLATE NOCASE, name);
CREATE INDEX tags_manifest ON tags(repository, manifest_digest);

-- Upload sessions. The hash state matches exactly `bytes_received` bytes of upload data, so
-- a session survives a restart without re-reading what was received.
CREATE TABLE uploads (
    id              TEXT    NOT NULL PRIMARY KEY,
    repository      TEXT    NOT NULL,
    bytes_received  INTEGER NOT NULL CHECK (bytes_received >= 0),
    algorithm       TEXT    NOT NULL,
    hash_state      BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
