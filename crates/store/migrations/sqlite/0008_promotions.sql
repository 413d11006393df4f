-- Promotion policies defined through the API (those of the configuration file are not
-- stored), the decisions taken for each image, and the tags promotions made immutable.

CREATE TABLE promotion_rules (
    name        TEXT    NOT NULL PRIMARY KEY,
    definition  TEXT    NOT NULL CHECK (json_valid(definition)),
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The latest decision of a rule about one tagged image. A change of verdict writes its event
-- in the same transaction (the trigger below), so webhooks and the audit log see every
-- decision that changed and nothing else.
CREATE TABLE promotion_decisions (
    rule               TEXT    NOT NULL,
    repository         TEXT    NOT NULL,
    tag                TEXT    NOT NULL,
    digest             TEXT    NOT NULL,
    verdict            TEXT    NOT NULL CHECK (verdict IN ('promoted', 'pending', 'rejected')),
    target_repository  TEXT,
    target_tag         TEXT,
    decision           TEXT    NOT NULL CHECK (json_valid(decision)),
    policy_digest      TEXT    NOT NULL,
    decided_at         INTEGER NOT NULL,
    -- When this rule copied this digest (once per rule and digest).
    promoted_at        INTEGER,
    PRIMARY KEY (rule, repository, tag, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX promotion_decisions_by_digest ON promotion_decisions (digest);

CREATE TRIGGER events_promotion_decided AFTER INSERT ON promotion_decisions BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.verdict WHEN 'promoted' THEN 'promotion.succeeded'
                             WHEN 'pending' THEN 'promotion.pending'
                             ELSE 'promotion.rejected' END,
            NEW.repository, NEW.digest, NEW.tag,
            json_object('decision', json(NEW.decision), 'target',
                        CASE WHEN NEW.target_repository IS NULL THEN NULL
                             ELSE json_object('repository', NEW.target_repository,
                                              'tag', NEW.target_tag) END),
            NEW.decided_at, (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_promotion_redecided AFTER UPDATE OF verdict ON promotion_decisions
WHEN OLD.verdict != NEW.verdict BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))),
            CASE NEW.verdict WHEN 'promoted' THEN 'promotion.succeeded'
                             WHEN 'pending' THEN 'promotion.pending'
                             ELSE 'promotion.rejected' END,
            NEW.repository, NEW.digest, NEW.tag,
            json_object('decision', json(NEW.decision), 'previous', OLD.verdict, 'target',
                        CASE WHEN NEW.target_repository IS NULL THEN NULL
                             ELSE json_object('repository', NEW.target_repository,
                                              'tag', NEW.target_tag) END),
            NEW.decided_at, (SELECT actor FROM request_context WHERE id = 1));
END;

-- Tags a promotion made immutable: they can be neither moved nor deleted, by any path (a
-- push, a tag delete, a manifest delete cascading to its tags).
CREATE TABLE tag_locks (
    repository  TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, tag)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER tag_locks_no_move BEFORE UPDATE OF manifest_digest ON tags
WHEN OLD.manifest_digest != NEW.manifest_digest
 AND EXISTS (SELECT 1 FROM tag_locks WHERE repository = OLD.repository AND tag = OLD.name) BEGIN
    SELECT RAISE(ABORT, 'bonded: immutable tag');
END;

CREATE TRIGGER tag_locks_no_delete BEFORE DELETE ON tags
WHEN EXISTS (SELECT 1 FROM tag_locks WHERE repository = OLD.repository AND tag = OLD.name) BEGIN
    SELECT RAISE(ABORT, 'bonded: immutable tag');
END;
