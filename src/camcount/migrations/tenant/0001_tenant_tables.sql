-- The one tenant DDL. Applied with search_path set to the target schema (the shared `pooled`
-- schema, a tenant's own `t_<id>`, or `tenant` inside a tenant's own database): never name a
-- schema here. tenant_id leads every key, so the same tables serve every placement and are ready
-- for Citus distribution by tenant_id.
--
-- Row-Level Security is enabled and forced on every table in every placement. The policy reads
-- the transaction-scoped setting once per statement; unset (NULL) or reset ('') matches no row.

CREATE TABLE sites (
    tenant_id       bigint NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone        text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    -- {"mon": [["08:00", "20:00"]], ...} in the site's local time; empty = always open.
    business_hours  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE cameras (
    tenant_id         bigint NOT NULL,
    id                bigint GENERATED ALWAYS AS IDENTITY,
    site_id           bigint NOT NULL,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    location          text CHECK (length(location) <= 500),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'maintenance')),
    -- Counting line and detector settings fetched by the edge worker.
    config            jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_delivery_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, site_id, name),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE RESTRICT
);

CREATE TABLE users (
    tenant_id      bigint NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    username       text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('owner', 'admin', 'user', 'viewer')),
    password_hash  text,
    is_active      boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- Names are compared without case, within one tenant only.
CREATE UNIQUE INDEX users_username ON users (tenant_id, lower(username));
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));

-- Device keys: only a public prefix and an argon2 hash are stored.
CREATE TABLE api_keys (
    tenant_id     bigint NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix        text NOT NULL CHECK (prefix ~ '^[A-Za-z0-9]{8,32}$'),
    key_hash      text NOT NULL,
    site_id       bigint,
    camera_id     bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, prefix),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

-- Raw count events, partitioned by month (partitions are created ahead by camcount, plus a
-- default partition so no insert ever fails for want of one). The primary key is also the
-- index for per-camera time ranges.
CREATE TABLE counting_results (
    tenant_id     bigint NOT NULL,
    camera_id     bigint NOT NULL,
    event_id      text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
    count_type    text NOT NULL CHECK (count_type ~ '^[a-z][a-z0-9_]{0,31}$'),
    object_class  text NOT NULL DEFAULT '' CHECK (object_class ~ '^[a-z0-9_]{0,32}$'),
    count_value   integer NOT NULL CHECK (count_value >= 0),
    confidence    real CHECK (confidence BETWEEN 0 AND 1),
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, camera_id, occurred_at, event_id),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
) PARTITION BY RANGE (occurred_at);
CREATE TABLE counting_results_default PARTITION OF counting_results DEFAULT;

-- Idempotency: a unique key on a partitioned table must contain the partition key, so
-- "(camera, event_id) at most once" lives in this unpartitioned table. Ingestion inserts here
-- first (ON CONFLICT DO NOTHING) and stores only the events that were new.
CREATE TABLE counting_event_ids (
    tenant_id    bigint NOT NULL,
    camera_id    bigint NOT NULL,
    event_id     text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, camera_id, event_id),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX counting_event_ids_occurred ON counting_event_ids (occurred_at);

-- Exact aggregates kept at ingestion, per 15 minutes in UTC: every IANA offset in use is a
-- multiple of 15 minutes, so hours and days in any site time zone are sums of whole buckets.
CREATE TABLE counting_rollups (
    tenant_id       bigint NOT NULL,
    camera_id       bigint NOT NULL,
    count_type      text NOT NULL,
    object_class    text NOT NULL DEFAULT '',
    bucket_start    timestamptz NOT NULL,
    total           bigint NOT NULL DEFAULT 0,
    events          integer NOT NULL DEFAULT 0,
    confidence_sum  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, camera_id, bucket_start, count_type, object_class),
    FOREIGN KEY (tenant_id, camera_id) REFERENCES cameras (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE sites FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sites
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE cameras ENABLE ROW LEVEL SECURITY;
ALTER TABLE cameras FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cameras
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE counting_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE counting_results FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON counting_results
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE counting_event_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE counting_event_ids FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON counting_event_ids
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));

ALTER TABLE counting_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE counting_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON counting_rollups
    USING (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('camcount.tenant_id', true), '')::bigint));
