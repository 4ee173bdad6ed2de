-- Limits and billing: per-device request rate, plan history for proration, measured storage,
-- threshold crossings, and the invoice number sequence. Applied with search_path = control.

-- A device key's own request rate (the plan's requests_per_second is the tenant's).
ALTER TABLE plans ADD COLUMN device_requests_per_second integer NOT NULL DEFAULT 5
    CHECK (device_requests_per_second > 0);
UPDATE plans SET device_requests_per_second = v.rate
FROM (VALUES ('basic', 2), ('standard', 5), ('premium', 10), ('enterprise', 20)) AS v (code, rate)
WHERE plans.code = v.code;

-- Every plan change of a tenant, with its exact time: billing prorates from it. The plan in force
-- at time t is the from_plan of the first change after t, or the tenant's current plan.
CREATE TABLE tenant_plan_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    from_plan   text NOT NULL,
    to_plan     text NOT NULL,
    changed_at  timestamptz NOT NULL,
    actor       text NOT NULL
);
CREATE INDEX tenant_plan_history_tenant ON tenant_plan_history (tenant_id, changed_at);

-- The last storage measurement per tenant: exact relation sizes (schema, database placements)
-- or an estimate from row counts (pooled); see docs/limits-and-billing.md.
CREATE TABLE tenant_storage (
    tenant_id    bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    method       text NOT NULL CHECK (method IN ('exact', 'estimate')),
    measured_at  timestamptz NOT NULL
);

-- Crossing 80% (HIGH) and 100% (LIMIT_REACHED) of a limit, recorded once per tenant, resource,
-- threshold and period (the quota's period; the local calendar month for gauges).
CREATE TABLE usage_threshold_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    resource      text NOT NULL,
    threshold     integer NOT NULL CHECK (threshold IN (80, 100)),
    period_start  timestamptz NOT NULL,
    usage_value   bigint NOT NULL,
    limit_value   bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, resource, threshold, period_start)
);
CREATE INDEX usage_threshold_events_at ON usage_threshold_events (at);

-- Invoices: the run that made them and the plan changes they prorated are in line_items.
ALTER TABLE tenant_billing ADD COLUMN issued_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX tenant_billing_status ON tenant_billing (status, due_date);
