-- +goose Up
-- The web UI: local users, their sessions and failed sign-ins (for throttling); and the indexes
-- the queue's sort orders and the incident page's merged-from list need at 100,000 incidents.

-- A user signs in to the web UI. Role and tenants mean what they mean for API tokens: admin sees
-- every tenant, analyst and viewer only theirs. Users who sign in through an identity provider
-- (OIDC, later) have no password hash.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,    -- lower case; audit entries and comments name it
    password_hash TEXT NOT NULL DEFAULT '', -- argon2id, PHC string format
    role          TEXT NOT NULL,
    tenants       TEXT NOT NULL DEFAULT '[]',
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL DEFAULT 0,
    disabled_at   BIGINT NOT NULL DEFAULT 0
);

-- A session is a signed-in browser. The cookie holds a random id; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,            -- the synchronizer token every form of the session carries
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Failed sign-ins, counted per user name and per client address over a window.
CREATE TABLE login_failures (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    ip   TEXT NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX login_failures_name ON login_failures (name, at);
CREATE INDEX login_failures_ip ON login_failures (ip, at);

-- The queue sorts by severity (highest first) with keyset paging: severity_rank orders the
-- severities (unknown and foreign values rank -1), a generated column kept by the database.
ALTER TABLE incidents ADD COLUMN severity_rank INTEGER GENERATED ALWAYS AS (
    CASE severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 WHEN 'informational' THEN 0 ELSE -1 END
) STORED;
CREATE INDEX incidents_severity_queue ON incidents (severity_rank, updated_at, id);
CREATE INDEX incidents_created_queue ON incidents (created_at, id);
CREATE INDEX incidents_merged_into ON incidents (tenant_id, merged_into);

-- +goose Down
DROP INDEX incidents_merged_into;
DROP INDEX incidents_created_queue;
DROP INDEX incidents_severity_queue;
ALTER TABLE incidents DROP COLUMN severity_rank;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE users;
