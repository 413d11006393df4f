-- Who caused each change. A write made for a request puts the request's actor (address, user
-- agent, request id) into `request_context` inside its own savepoint and removes it before the
-- savepoint ends; the event triggers copy it into the event. Writes with no request behind
-- them (workers, start-up) leave it empty, and their events have a null actor.
CREATE TABLE request_context (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    actor  TEXT    NOT NULL
) STRICT;

ALTER TABLE events ADD COLUMN actor TEXT;

-- A manifest's story (the history API) is read by digest.
CREATE INDEX events_by_digest ON events (digest, seq);

DROP TRIGGER events_artifact_pushed;
DROP TRIGGER events_artifact_deleted;
DROP TRIGGER events_tag_created;
DROP TRIGGER events_tag_moved;
DROP TRIGGER events_tag_deleted;
DROP TRIGGER events_scan_finished;
DROP TRIGGER events_attachment_verified;

CREATE TRIGGER events_artifact_pushed AFTER INSERT ON manifests BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'artifact.pushed', NEW.repository, NEW.digest, NULL,
            json_object('media_type', NEW.media_type, 'artifact_type', NEW.artifact_type,
                        'subject', NEW.subject, 'size', length(NEW.content)),
            NEW.created_at,
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_artifact_deleted AFTER DELETE ON manifests BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'artifact.deleted', OLD.repository, OLD.digest, NULL,
            json_object('media_type', OLD.media_type), unixepoch(),
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_tag_created AFTER INSERT ON tags BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'tag.updated', NEW.repository, NEW.manifest_digest,
            NEW.name, json_object('previous', NULL), NEW.updated_at,
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_tag_moved AFTER UPDATE OF manifest_digest ON tags
WHEN OLD.manifest_digest != NEW.manifest_digest BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'tag.updated', NEW.repository, NEW.manifest_digest,
            NEW.name, json_object('previous', OLD.manifest_digest), NEW.updated_at,
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_tag_deleted AFTER DELETE ON tags BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'tag.deleted', OLD.repository, OLD.manifest_digest,
            OLD.name, json_object(), unixepoch(),
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_scan_finished AFTER UPDATE OF state ON scan_jobs
WHEN NEW.state IN ('done', 'failed') AND OLD.state != NEW.state BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.state WHEN 'done' THEN 'scan.completed' ELSE 'scan.failed' END,
            NEW.repository, NEW.manifest_digest, NULL,
            json_object('reason', NEW.reason, 'attempts', NEW.attempts),
            coalesce(NEW.finished_at, unixepoch()),
            (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_attachment_verified AFTER INSERT ON attachments BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.kind WHEN 'signature' THEN 'signature.added' ELSE 'attestation.added' END,
            NEW.repository, NEW.subject, NULL,
            json_object('source', NEW.source_digest, 'via', NEW.via), NEW.verified_at,
            (SELECT actor FROM request_context WHERE id = 1));
END;
