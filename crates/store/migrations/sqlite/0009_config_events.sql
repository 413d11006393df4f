-- Configuration changes are events too (`config.changed`), written in the transaction of the
-- change: a trust authority or a webhook created, redefined or removed, through the API or by
-- a changed configuration file (rows rewritten with the same values at start-up write
-- nothing). Promotion rules write theirs from code (`PromotionStore` rules are not the whole
-- story: configuration rules are not stored). Secrets never appear in the event.

CREATE TRIGGER events_authority_created AFTER INSERT ON trust_authorities BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'authority', 'name', NEW.name, 'change', 'put',
                        'origin', NEW.origin),
            NEW.updated_at, (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_authority_changed AFTER UPDATE OF keys ON trust_authorities
WHEN OLD.keys IS NOT NEW.keys BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'authority', 'name', NEW.name, 'change', 'put',
                        'origin', NEW.origin),
            NEW.updated_at, (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_authority_deleted AFTER DELETE ON trust_authorities BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'authority', 'name', OLD.name, 'change', 'delete'),
            unixepoch(), (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_webhook_created AFTER INSERT ON webhooks BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'webhook', 'name', NEW.name, 'change', 'put',
                        'origin', NEW.origin, 'url', NEW.url),
            unixepoch(), (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_webhook_changed AFTER UPDATE OF kind, url, events, repositories ON webhooks
WHEN OLD.kind IS NOT NEW.kind OR OLD.url IS NOT NEW.url OR OLD.events IS NOT NEW.events
  OR OLD.repositories IS NOT NEW.repositories BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'webhook', 'name', NEW.name, 'change', 'put',
                        'origin', NEW.origin, 'url', NEW.url),
            unixepoch(), (SELECT actor FROM request_context WHERE id = 1));
END;

CREATE TRIGGER events_webhook_deleted AFTER DELETE ON webhooks BEGIN
    INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor)
    VALUES (lower(hex(randomblob(16))), 'config.changed', NULL, NULL, NULL,
            json_object('section', 'webhook', 'name', OLD.name, 'change', 'delete'),
            unixepoch(), (SELECT actor FROM request_context WHERE id = 1));
END;
