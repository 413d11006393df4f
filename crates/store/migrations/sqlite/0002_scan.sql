-- Scanning state. The store keeps what the scan worker hands it (JSON documents, digests)
-- and never interprets it.

-- One job per image manifest digest, queued in the transaction that stores the manifest.
CREATE TABLE scan_jobs (
    manifest_digest  TEXT    NOT NULL PRIMARY KEY,
    repository       TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    reason           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_at        INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX scan_jobs_by_state ON scan_jobs(state, queued_at);

-- Per-layer inventory fragments, keyed by the diff_id computed while reading the layer and
-- the analyzer version that produced them.
CREATE TABLE layer_fragments (
    diff_id     TEXT    NOT NULL,
    analyzer    TEXT    NOT NULL,
    fragment    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (diff_id, analyzer)
) STRICT, WITHOUT ROWID;

-- The diff_id a stored layer blob decompresses to, learned by reading it once.
CREATE TABLE layer_diff_ids (
    blob_digest  TEXT NOT NULL PRIMARY KEY,
    diff_id      TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The latest result per manifest: the inventory, the findings and the DB they came from.
CREATE TABLE scan_results (
    manifest_digest  TEXT    NOT NULL PRIMARY KEY,
    db_version       TEXT,
    inventory        TEXT    NOT NULL,
    findings         TEXT,
    summary          TEXT,
    scanned_at       INTEGER NOT NULL,
    matched_at       INTEGER
) STRICT, WITHOUT ROWID;

-- What changed for a manifest when a new DB re-matched its stored inventory.
CREATE TABLE scan_changes (
    id               INTEGER PRIMARY KEY,
    manifest_digest  TEXT    NOT NULL,
    from_db          TEXT,
    to_db            TEXT    NOT NULL,
    added            TEXT    NOT NULL,
    removed          TEXT    NOT NULL,
    at               INTEGER NOT NULL
) STRICT;
CREATE INDEX scan_changes_by_manifest ON scan_changes(manifest_digest, id);
