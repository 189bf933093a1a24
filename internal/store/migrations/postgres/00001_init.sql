-- +goose Up
-- Times are Unix milliseconds (BIGINT) so that one SQL text serves SQLite and PostgreSQL.
-- JSON is stored as TEXT. Every table that holds tenant data has tenant_id.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,      -- Entra tenant id, lower case
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A source is one thing socsync polls: a tenant's Defender XDR (Graph) or one Sentinel workspace.
CREATE TABLE sources (
    id               TEXT PRIMARY KEY,  -- tenant/defender or tenant/sentinel/sub/rg/ws, lower case
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    kind             TEXT NOT NULL,     -- defender | sentinel
    workspace        TEXT NOT NULL DEFAULT '',  -- sub/rg/ws for Sentinel
    enabled          INTEGER NOT NULL DEFAULT 1,
    cursor           TEXT NOT NULL DEFAULT '',
    next_poll_at     BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expires_at BIGINT NOT NULL DEFAULT 0,
    fencing_token    BIGINT NOT NULL DEFAULT 0,
    last_poll_at     BIGINT NOT NULL DEFAULT 0,
    last_success_at  BIGINT NOT NULL DEFAULT 0,
    last_change_at   BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    degraded         TEXT NOT NULL DEFAULT '',  -- why the source cannot be polled (revoked consent …)
    calls            BIGINT NOT NULL DEFAULT 0,
    throttled        BIGINT NOT NULL DEFAULT 0,
    polls            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sources_due ON sources (next_poll_at);
CREATE INDEX sources_tenant ON sources (tenant_id);

-- Hub incidents: one per real incident. The row is the hub's desired state.
CREATE TABLE incidents (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    -- What makes two observations the same real incident within a tenant: graph:<Defender id>
    -- for a Defender incident and its Sentinel mirror, sentinel:<source>:<name> for a
    -- Sentinel-only one, webhook:<name>:<delivery> for a webhook alert. Unique, so that two
    -- pollers that see one incident at once cannot create it twice.
    corr_key               TEXT NOT NULL,
    title                  TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    status                 TEXT NOT NULL,
    severity               TEXT NOT NULL,
    owner                  TEXT NOT NULL DEFAULT '',
    classification         TEXT NOT NULL DEFAULT '',
    determination          TEXT NOT NULL DEFAULT '',
    classification_reason  TEXT NOT NULL DEFAULT '',
    classification_comment TEXT NOT NULL DEFAULT '',
    tags                   TEXT NOT NULL DEFAULT '[]',
    sources                TEXT NOT NULL DEFAULT '',  -- comma-separated, sorted
    alert_count            INTEGER NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    first_activity_at      BIGINT NOT NULL DEFAULT 0,
    last_activity_at       BIGINT NOT NULL DEFAULT 0,
    merged_into            TEXT NOT NULL DEFAULT '',
    -- the correlation key of the incident this one was merged into, while that one is not
    -- collected yet (then merged_into is set and this cleared)
    merge_target           TEXT NOT NULL DEFAULT '',
    version                BIGINT NOT NULL,
    sync_state             TEXT NOT NULL DEFAULT 'in_sync',
    -- when an analyst last changed the synced fields (latest-wins conflicts compare it)
    hub_changed_at         BIGINT NOT NULL DEFAULT 0,
    -- the reconciler: when the incident is due for another attempt, and which replica holds it
    next_sync_at           BIGINT NOT NULL DEFAULT 0,
    sync_lease_owner       TEXT NOT NULL DEFAULT '',
    sync_lease_expires_at  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, corr_key)
);
CREATE INDEX incidents_queue ON incidents (updated_at DESC, id DESC);
CREATE INDEX incidents_tenant_queue ON incidents (tenant_id, updated_at DESC, id DESC);
CREATE INDEX incidents_merge_target ON incidents (tenant_id, merge_target);
CREATE INDEX incidents_sync_due ON incidents (sync_state, next_sync_at);

-- A link ties a hub incident to one remote incident and holds what was last seen there
-- (observed) and what both sides last agreed on (base).
CREATE TABLE links (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    incident_id          TEXT NOT NULL REFERENCES incidents (id),
    source_id            TEXT NOT NULL,
    kind                 TEXT NOT NULL,  -- graph | sentinel | webhook
    external_id          TEXT NOT NULL,
    provider_incident_id TEXT NOT NULL DEFAULT '',
    url                  TEXT NOT NULL DEFAULT '',
    etag                 TEXT NOT NULL DEFAULT '',
    observed             TEXT NOT NULL DEFAULT '{}',
    raw                  TEXT NOT NULL DEFAULT '{}',
    base                 TEXT NOT NULL DEFAULT '',
    remote_updated_at    BIGINT NOT NULL DEFAULT 0,
    observed_at          BIGINT NOT NULL DEFAULT 0,
    sync_state           TEXT NOT NULL DEFAULT 'in_sync',
    last_error           TEXT NOT NULL DEFAULT '',
    flags                TEXT NOT NULL DEFAULT '',
    -- when the link's alerts were last re-read for the alert rules (Sentinel does not change an
    -- incident when a Defender for Cloud alert's status changes)
    alerts_checked_at    BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, source_id, external_id)
);
CREATE INDEX links_incident ON links (tenant_id, incident_id);
CREATE INDEX links_external ON links (tenant_id, external_id);

-- Alerts, once per remote alert id per tenant; a version (the remote's change time) never
-- replaces a newer one.
CREATE TABLE alerts (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    remote_id        TEXT NOT NULL,
    incident_id      TEXT NOT NULL REFERENCES incidents (id),
    version          BIGINT NOT NULL,
    -- the change time of the incident observation that reported the alert: when an alert moves
    -- to another incident (a merge) without a new version, the newer report wins
    reported_at      BIGINT NOT NULL DEFAULT 0,
    title            TEXT NOT NULL DEFAULT '',
    severity         TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT '',
    service_source   TEXT NOT NULL DEFAULT '',
    detection_source TEXT NOT NULL DEFAULT '',
    product_name     TEXT NOT NULL DEFAULT '',
    category         TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL DEFAULT 0,
    raw              TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, remote_id)
);
CREATE INDEX alerts_incident ON alerts (tenant_id, incident_id);

CREATE TABLE comments (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    origin      TEXT NOT NULL,       -- hub | graph | sentinel | webhook
    author      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    text        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,       -- identity of a remote comment, to store it once
    UNIQUE (incident_id, fingerprint)
);

-- Where each comment has been written: its identity on each link once written.
CREATE TABLE comment_links (
    comment_id TEXT NOT NULL REFERENCES comments (id),
    link_id    BIGINT NOT NULL REFERENCES links (id),
    tenant_id  TEXT NOT NULL,
    remote_id  TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,        -- pending | written
    written_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (comment_id, link_id)
);

CREATE TABLE audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    link        TEXT NOT NULL DEFAULT '',
    field       TEXT NOT NULL DEFAULT '',
    before_value TEXT NOT NULL DEFAULT '',
    after_value  TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_incident ON audit (incident_id, id);

-- Forward stream: one row per (incident, version), written with the change.
CREATE TABLE outbox (
    incident_id      TEXT NOT NULL,
    version          BIGINT NOT NULL,
    tenant_id        TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    record           TEXT NOT NULL,
    claimed_by       TEXT NOT NULL DEFAULT '',
    claim_expires_at BIGINT NOT NULL DEFAULT 0,
    sent_at          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, version)
);
CREATE INDEX outbox_unsent ON outbox (sent_at, created_at);

CREATE TABLE webhook_deliveries (
    webhook     TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    incident_id TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL,
    PRIMARY KEY (webhook, delivery_id)
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL UNIQUE,  -- SHA-256 of the token; the token itself is never stored
    role         TEXT NOT NULL,
    tenants      TEXT NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE webhook_deliveries;
DROP TABLE outbox;
DROP TABLE audit;
DROP TABLE comment_links;
DROP TABLE comments;
DROP TABLE alerts;
DROP TABLE links;
DROP TABLE incidents;
DROP TABLE sources;
DROP TABLE tenants;
