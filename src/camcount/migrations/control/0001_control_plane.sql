-- The control plane: tenants, plans, limits, configuration, usage, billing, servers, audit.
-- Applied with search_path = control. The application role gets only the grants in
-- camcount/db/grants.py; secret columns are never granted to it.

CREATE TABLE plans (
    code                 text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name                 text NOT NULL,
    base_price           numeric(12, 2) NOT NULL CHECK (base_price >= 0),
    currency             text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    requests_per_second  integer NOT NULL CHECK (requests_per_second > 0),
    retention_days       integer NOT NULL CHECK (retention_days > 0),
    is_active            boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- A plan's limit per resource; reset_period is NULL for gauges (cameras, users, storage).
CREATE TABLE plan_limits (
    plan          text NOT NULL REFERENCES plans (code) ON UPDATE CASCADE ON DELETE CASCADE,
    resource      text NOT NULL CHECK (resource ~ '^[a-z][a-z0-9_]{1,47}$'),
    limit_value   bigint NOT NULL CHECK (limit_value >= 0),
    reset_period  text CHECK (reset_period IN ('daily', 'weekly', 'monthly', 'yearly')),
    PRIMARY KEY (plan, resource)
);

-- Usage prices per unit of a resource (storage per GB, API per call, ...).
CREATE TABLE plan_prices (
    plan        text NOT NULL REFERENCES plans (code) ON UPDATE CASCADE ON DELETE CASCADE,
    resource    text NOT NULL,
    unit_price  numeric(12, 4) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (plan, resource)
);

CREATE TABLE database_servers (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    -- The owner URL, Fernet-encrypted; NULL for the default server (the URL in the settings).
    url_ciphertext  bytea,
    is_default      boolean NOT NULL DEFAULT false,
    is_accepting    boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (is_default OR url_ciphertext IS NOT NULL)
);
CREATE UNIQUE INDEX database_servers_one_default ON database_servers (is_default) WHERE is_default;
INSERT INTO database_servers (name, is_default) VALUES ('default', true);

CREATE TABLE tenants (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    domain         text UNIQUE CHECK (length(domain) <= 253),
    subdomain      text UNIQUE CHECK (subdomain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    -- 'provisioning' only while a database-placement tenant's database is being created.
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('provisioning', 'active', 'suspended', 'inactive')),
    plan           text NOT NULL REFERENCES plans (code) ON UPDATE CASCADE,
    placement      text NOT NULL CHECK (placement IN ('pooled', 'schema', 'database')),
    server         text NOT NULL DEFAULT 'default' REFERENCES database_servers (name),
    schema_name    text NOT NULL,
    database_name  text,
    timezone       text NOT NULL DEFAULT 'UTC',
    billing_cycle  text NOT NULL DEFAULT 'monthly' CHECK (billing_cycle IN ('monthly', 'quarterly', 'yearly')),
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((placement = 'database') = (database_name IS NOT NULL))
);
CREATE INDEX tenants_status ON tenants (status);

-- Effective limits per tenant: copied from the plan at provisioning, overridable, with usage.
CREATE TABLE tenant_limits (
    tenant_id      bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource       text NOT NULL CHECK (resource ~ '^[a-z][a-z0-9_]{1,47}$'),
    limit_value    bigint NOT NULL CHECK (limit_value >= 0),
    is_override    boolean NOT NULL DEFAULT false,
    current_usage  bigint NOT NULL DEFAULT 0 CHECK (current_usage >= 0),
    reset_period   text CHECK (reset_period IN ('daily', 'weekly', 'monthly', 'yearly')),
    period_start   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource)
);

CREATE TABLE tenant_configs (
    tenant_id          bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key                text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_.]{0,63}$'),
    value_type         text NOT NULL CHECK (value_type IN ('string', 'integer', 'boolean', 'json')),
    -- Plain values live in value; secret ones only as ciphertext (Fernet, rotatable keys).
    value              text,
    secret_ciphertext  bytea,
    is_secret          boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key),
    CHECK (is_secret = (secret_ciphertext IS NOT NULL)),
    CHECK (NOT is_secret OR value IS NULL)
);

-- Usage history: one row per tenant, resource and day.
CREATE TABLE tenant_resource_usage (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource     text NOT NULL,
    usage_date   date NOT NULL,
    usage_value  bigint NOT NULL DEFAULT 0 CHECK (usage_value >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource, usage_date)
);

CREATE TABLE tenant_billing (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Invoices are financial records: they outlive a deleted tenant (slug kept for reference).
    tenant_id      bigint REFERENCES tenants (id) ON DELETE SET NULL,
    tenant_slug    text NOT NULL,
    billing_cycle  text NOT NULL CHECK (billing_cycle IN ('monthly', 'quarterly', 'yearly')),
    period_start   date NOT NULL,
    period_end     date NOT NULL CHECK (period_end > period_start),
    currency       text NOT NULL DEFAULT 'USD',
    base_amount    numeric(12, 2) NOT NULL,
    usage_amount   numeric(12, 2) NOT NULL DEFAULT 0,
    total_amount   numeric(12, 2) NOT NULL,
    line_items     jsonb NOT NULL DEFAULT '[]'::jsonb,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'overdue', 'cancelled')),
    due_date       date,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, period_start, period_end)
);

-- Who changed what. Not tied to tenants by a foreign key: the record outlives a deleted tenant.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    tenant_id    bigint,
    tenant_slug  text,
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);

-- The seed's four plans, as data.
INSERT INTO plans (code, name, base_price, requests_per_second, retention_days) VALUES
    ('basic', 'Basic', 29.99, 10, 90),
    ('standard', 'Standard', 99.99, 50, 365),
    ('premium', 'Premium', 299.99, 200, 730),
    ('enterprise', 'Enterprise', 999.99, 1000, 1825);

INSERT INTO plan_limits (plan, resource, limit_value, reset_period)
SELECT p.plan, l.resource, l.value, l.reset_period
FROM (VALUES ('basic', 1), ('standard', 2), ('premium', 3), ('enterprise', 4)) AS p (plan, tier)
CROSS JOIN LATERAL (VALUES
    ('cameras', (ARRAY[5, 10, 50, 200])[p.tier]::bigint, NULL),
    ('users', (ARRAY[10, 50, 200, 1000])[p.tier]::bigint, NULL),
    ('sites', (ARRAY[5, 20, 100, 1000])[p.tier]::bigint, NULL),
    ('api_keys', (ARRAY[10, 50, 200, 1000])[p.tier]::bigint, NULL),
    ('storage_gb', (ARRAY[50, 100, 500, 2000])[p.tier]::bigint, NULL),
    ('api_calls_per_day', (ARRAY[1000, 10000, 50000, 200000])[p.tier]::bigint, 'daily'),
    ('events_per_month', (ARRAY[1000000, 5000000, 25000000, 100000000])[p.tier]::bigint, 'monthly')
) AS l (resource, value, reset_period);

INSERT INTO plan_prices (plan, resource, unit_price)
SELECT p.code, r.resource, r.price
FROM plans p
CROSS JOIN (VALUES ('storage_gb', 0.10), ('api_calls', 0.001), ('cameras', 5.00), ('users', 2.00)) AS r (resource, price);
