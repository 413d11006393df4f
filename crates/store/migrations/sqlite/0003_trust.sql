-- Signing state. The trust service verifies signatures and hands the store its verdicts as
-- JSON documents and names; the store never interprets them.

-- Named sets of public keys (PEM), from the configuration file, the API or the server itself.
CREATE TABLE trust_authorities (
    name        TEXT    NOT NULL PRIMARY KEY,
    keys        TEXT    NOT NULL,
    origin      TEXT    NOT NULL CHECK (origin IN ('config', 'api', 'server')),
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A signature or attestation manifest (cosign's `.sig`/`.att` tag, or an OCI 1.1 referrer)
-- and the verification report of its layers. Rows go with the attachment manifest.
CREATE TABLE attachments (
    repository     TEXT    NOT NULL,
    source_digest  TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    via            TEXT    NOT NULL CHECK (via IN ('tag', 'referrer')),
    kind           TEXT    NOT NULL CHECK (kind IN ('signature', 'attestation')),
    report         TEXT    NOT NULL,
    verified_at    INTEGER NOT NULL,
    PRIMARY KEY (repository, source_digest),
    FOREIGN KEY (repository, source_digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX attachments_subject ON attachments(repository, subject);

-- The authorities whose keys produced a valid signature in an attachment: what the pull
-- policy reads on every manifest GET of a guarded repository.
CREATE TABLE attachment_signers (
    repository     TEXT    NOT NULL,
    source_digest  TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    authority      TEXT    NOT NULL,
    PRIMARY KEY (repository, source_digest, authority),
    FOREIGN KEY (repository, source_digest) REFERENCES attachments(repository, source_digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX attachment_signers_subject ON attachment_signers(repository, subject, kind);
