-- The tamper-evident audit log (crate `audit`): one entry per outbox event, leaves of an
-- RFC 6962 Merkle tree, and the checkpoints the server signed over that tree.
--
-- `audit_entries` holds what happened: the entry's canonical bytes (the Merkle leaf data) and
-- copies of a few of its fields for filtering. `seq` is the entry's leaf index, from 0 with
-- no gap; `event_id` makes appending idempotent (an event already in the log is skipped).
--
-- `audit_leaves` holds the leaf hash `SHA-256(0x00 || entry)` recorded when each entry was
-- appended. It is kept apart from the entries on purpose: an entry edited, deleted or moved
-- afterwards no longer matches the leaf recorded at its index, so the verifier can name it,
-- and proofs are computed from these hashes without reading the entries. There is no foreign
-- key between the two tables: deleting an entry must leave its leaf behind as evidence.
--
-- `audit_checkpoints` holds the signed tree heads (C2SP tlog-checkpoint text plus a `time`
-- line, see `audit::checkpoint`), at most one per tree size.

CREATE TABLE audit_entries (
    seq         INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 0),
    event_id    TEXT    NOT NULL UNIQUE,
    entry       BLOB    NOT NULL,
    time        INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    repository  TEXT,
    digest      TEXT,
    actor       TEXT
) STRICT;

CREATE INDEX audit_entries_by_repository ON audit_entries (repository, seq);
CREATE INDEX audit_entries_by_digest ON audit_entries (digest, seq);
CREATE INDEX audit_entries_by_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_by_time ON audit_entries (time, seq);

CREATE TABLE audit_leaves (
    seq   INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE TABLE audit_checkpoints (
    size        INTEGER NOT NULL PRIMARY KEY CHECK (size >= 0),
    origin      TEXT    NOT NULL,
    root        BLOB    NOT NULL CHECK (length(root) = 32),
    time        INTEGER NOT NULL,
    key_id      TEXT    NOT NULL,
    signature   BLOB    NOT NULL
) STRICT;
