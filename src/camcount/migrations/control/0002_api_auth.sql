-- API authentication: where device keys live, and operator tokens.

-- Device key prefix -> tenant, so a key finds its tenant without scanning tenant tables. The key
-- itself (hash, scope, revocation) lives in the tenant's api_keys, which stays authoritative:
-- resolution always verifies the hash there. A directory row without its key row (a create that
-- failed half-way across databases) authenticates nothing.
CREATE TABLE device_key_directory (
    prefix      text PRIMARY KEY CHECK (prefix ~ '^[A-Za-z0-9]{8,32}$'),
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_key_directory_tenant ON device_key_directory (tenant_id);

-- Operator tokens for /admin: `op_<prefix>_<secret>`, stored as prefix + SHA-256 hash.
CREATE TABLE operator_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[A-Za-z0-9]{8,32}$'),
    token_hash    text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
