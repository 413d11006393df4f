-- A failed scan is retried with backoff: it goes back to `pending` and is not taken again
-- before `not_before` (unix seconds). NULL: at once.
ALTER TABLE scan_jobs ADD COLUMN not_before INTEGER;
