-- Operations: the job ledger, per-tenant ingestion counters, health snapshots, rollup retention.
-- Applied with search_path = control.

-- One row per run of a periodic job. A scheduled run claims its slot (the start of the interval
-- it belongs to) with INSERT ... ON CONFLICT DO NOTHING, so across any number of workers each job
-- runs at most once per slot. Manual runs (`camcount jobs run NAME`) are recorded too, unclaimed.
CREATE TABLE job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text NOT NULL CHECK (job ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    slot         timestamptz NOT NULL,
    trigger      text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'manual')),
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    error        text,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX job_runs_once_per_slot ON job_runs (job, slot) WHERE trigger = 'schedule';
CREATE INDEX job_runs_recent ON job_runs (job, started_at DESC);
CREATE INDEX job_runs_running ON job_runs (job) WHERE status = 'running';

-- Ingestion outcomes per tenant and hour (written by the ingestion route through
-- camcount.monitoring.ingestion), for the error rate in tenant metrics and health.
CREATE TABLE ingestion_counters (
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour        timestamptz NOT NULL CHECK (date_trunc('hour', hour, 'UTC') = hour),
    accepted    bigint NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    duplicate   bigint NOT NULL DEFAULT 0 CHECK (duplicate >= 0),
    rejected    bigint NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, hour)
);

-- The latest health of each tenant, written by the `health` job (read by /metrics and dashboards).
CREATE TABLE tenant_health (
    tenant_id   bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('HEALTHY', 'WARNING', 'CRITICAL')),
    issues      jsonb NOT NULL DEFAULT '[]'::jsonb,
    checked_at  timestamptz NOT NULL
);

-- Rollups are kept longer than raw events (a tenant config `rollup_retention_days` overrides).
ALTER TABLE plans ADD COLUMN rollup_retention_days integer NOT NULL DEFAULT 1825
    CHECK (rollup_retention_days > 0);
UPDATE plans SET rollup_retention_days = CASE code
    WHEN 'basic' THEN 730
    WHEN 'standard' THEN 1095
    WHEN 'premium' THEN 1825
    WHEN 'enterprise' THEN 3650
    ELSE rollup_retention_days END;
