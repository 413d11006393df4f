-- Webhooks (issue 5): endpoints, one delivery per (endpoint, event), every attempt, and each
-- endpoint's circuit breaker. Times are unix milliseconds (`_ms`): retries are scheduled in
-- fractions of a second when tests shorten the policy.
--
-- A delivery keeps the CloudEvent it sends (`body`), fixed when it is created, so every retry
-- and every redelivery sends the same bytes with the same event id. `UNIQUE (webhook,
-- event_id)` makes creating deliveries idempotent: the outbox hands the same event again after
-- a crash and no second delivery appears. A worker claims a due delivery by writing a random
-- `claim` and a `lease_until_ms`; a worker that dies leaves the lease to expire, and the
-- delivery is taken again.

CREATE TABLE webhooks (
    name            TEXT    NOT NULL PRIMARY KEY,
    origin          TEXT    NOT NULL CHECK (origin IN ('config', 'api')),
    kind            TEXT    NOT NULL CHECK (kind IN ('standard', 'gitlab-trigger')),
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL CHECK (json_type(events) = 'array'),
    repositories    TEXT    NOT NULL CHECK (json_type(repositories) = 'array'),
    secret          TEXT,
    allow_private   INTEGER NOT NULL CHECK (allow_private IN (0, 1)),
    gitlab_project  TEXT,
    gitlab_token    TEXT,
    gitlab_ref      TEXT,
    gitlab_variables TEXT   CHECK (gitlab_variables IS NULL OR json_type(gitlab_variables) = 'object'),
    -- NULL while enabled; why it was disabled (a 410 Gone answer) and when, otherwise.
    disabled_reason TEXT,
    disabled_at_ms  INTEGER,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    CHECK ((disabled_reason IS NULL) = (disabled_at_ms IS NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    webhook            TEXT    NOT NULL REFERENCES webhooks (name) ON DELETE CASCADE,
    event_id           TEXT    NOT NULL,
    event_type         TEXT    NOT NULL,
    body               BLOB    NOT NULL,
    state              TEXT    NOT NULL
                       CHECK (state IN ('pending', 'delivered', 'failed', 'disabled')),
    -- Attempts recorded in all; attempts since the delivery was last (re)queued, which the
    -- retry budget counts.
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    round_attempts     INTEGER NOT NULL DEFAULT 0 CHECK (round_attempts >= 0),
    next_attempt_at_ms INTEGER,
    claim              TEXT,
    lease_until_ms     INTEGER,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    UNIQUE (webhook, event_id),
    CHECK ((state = 'pending') = (next_attempt_at_ms IS NOT NULL)),
    CHECK ((claim IS NULL) = (lease_until_ms IS NULL))
) STRICT;

-- The worker's question: what is due next?
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms)
    WHERE state = 'pending';
-- The API's listing, newest first, per webhook.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook, seq);

CREATE TABLE webhook_attempts (
    delivery        TEXT    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL CHECK (number >= 1),
    -- The HTTP status when a response came; otherwise why none came.
    status          INTEGER CHECK (status IS NULL OR status BETWEEN 0 AND 999),
    error           TEXT,
    duration_ms     INTEGER NOT NULL CHECK (duration_ms >= 0),
    -- The first 4 KiB of the response body.
    response        BLOB    NOT NULL CHECK (length(response) <= 4096),
    attempted_at_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery, number),
    CHECK ((status IS NULL) != (error IS NULL))
) STRICT, WITHOUT ROWID;

-- The circuit breaker of each endpoint, as the webhooks crate serializes it (JSON).
CREATE TABLE webhook_breakers (
    webhook         TEXT    NOT NULL PRIMARY KEY REFERENCES webhooks (name) ON DELETE CASCADE,
    state           TEXT    NOT NULL CHECK (json_valid(state)),
    updated_at_ms   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
