-- +goose Up
-- The forward stream's dead letters. A row that Logs Ingestion refuses for itself alone (a 400
-- after its batch was split down to that one row, or a 413 after it was truncated as far as it
-- goes) is set aside with the reason instead of being retried forever: it counts as done for the
-- forwarder (sent_at is set) and failed_at and fail_reason say why. socsync logs it, counts it in
-- socsync_forward_rows_total{result="failed"} and shows the number in socsync_forward_dead_letters.
ALTER TABLE outbox ADD COLUMN failed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN fail_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at > 0;

-- +goose Down
DROP INDEX outbox_failed;
ALTER TABLE outbox DROP COLUMN fail_reason;
ALTER TABLE outbox DROP COLUMN failed_at;
