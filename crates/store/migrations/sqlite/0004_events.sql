-- The outbox: every state change writes its event in the same transaction as the change.
-- Triggers on the tables that hold the state make that hold for every code path (a push, a
-- delete, a tag cascading away with its manifest), not only the ones that remember to.
-- `seq` orders events; `id` is the stable event id consumers see (the same on every
-- delivery). Consumers keep their position in `event_cursors` and read at least once.

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    repository  TEXT,
    digest      TEXT,
    tag         TEXT,
    data        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE event_cursors (
    consumer    TEXT    NOT NULL PRIMARY KEY,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER events_artifact_pushed AFTER INSERT ON manifests BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'artifact.pushed', NEW.repository, NEW.digest, NULL,
            json_object('media_type', NEW.media_type, 'artifact_type', NEW.artifact_type,
                        'subject', NEW.subject, 'size', length(NEW.content)),
            NEW.created_at);
END;

CREATE TRIGGER events_artifact_deleted AFTER DELETE ON manifests BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'artifact.deleted', OLD.repository, OLD.digest, NULL,
            json_object('media_type', OLD.media_type), unixepoch());
END;

CREATE TRIGGER events_tag_created AFTER INSERT ON tags BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'tag.updated', NEW.repository, NEW.manifest_digest,
            NEW.name, json_object('previous', NULL), NEW.updated_at);
END;

CREATE TRIGGER events_tag_moved AFTER UPDATE OF manifest_digest ON tags
WHEN OLD.manifest_digest != NEW.manifest_digest BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'tag.updated', NEW.repository, NEW.manifest_digest,
            NEW.name, json_object('previous', OLD.manifest_digest), NEW.updated_at);
END;

CREATE TRIGGER events_tag_deleted AFTER DELETE ON tags BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'tag.deleted', OLD.repository, OLD.manifest_digest,
            OLD.name, json_object(), unixepoch());
END;

CREATE TRIGGER events_scan_finished AFTER UPDATE OF state ON scan_jobs
WHEN NEW.state IN ('done', 'failed') AND OLD.state != NEW.state BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.state WHEN 'done' THEN 'scan.completed' ELSE 'scan.failed' END,
            NEW.repository, NEW.manifest_digest, NULL,
            json_object('reason', NEW.reason, 'attempts', NEW.attempts),
            coalesce(NEW.finished_at, unixepoch()));
END;

CREATE TRIGGER events_attachment_verified AFTER INSERT ON attachments BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.kind WHEN 'signature' THEN 'signature.added' ELSE 'attestation.added' END,
            NEW.repository, NEW.subject, NULL,
            json_object('source', NEW.source_digest, 'via', NEW.via), NEW.verified_at);
END;
