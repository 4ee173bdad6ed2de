"""Typed settings: the only module that reads the environment.

Everything is prefixed ``CAMCOUNT_``. With no ``CAMCOUNT_DATABASE_URL`` camcount runs an embedded
PostgreSQL under ``CAMCOUNT_HOME`` (see :mod:`camcount.db.embedded`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMCOUNT_", extra="ignore")

    # The owner connection: runs migrations and provisioning. Unset = embedded PostgreSQL.
    database_url: SecretStr | None = None
    home: Path = Path(".camcount")
    # Fernet keys (urlsafe base64, 32 bytes). The first encrypts; the others only decrypt (rotation).
    secret_key: SecretStr | None = None
    old_secret_keys: SecretStr | None = None

    owner_role: str = Field(default="camcount_owner", pattern=ROLE_NAME_PATTERN)
    app_role: str = Field(default="camcount_app", pattern=ROLE_NAME_PATTERN)
    # Password of the application role; trust/peer auth (local development) needs none.
    app_password: SecretStr | None = None

    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=500)
    owner_pool_max_size: int = Field(default=8, ge=1, le=100)
    # Pools of database-placement tenants close after this long without use.
    pool_idle_seconds: float = Field(default=300.0, gt=0)
    max_open_tenant_pools: int = Field(default=50, ge=1)
    migrate_workers: int = Field(default=4, ge=1, le=64)
    partitions_ahead_months: int = Field(default=3, ge=1, le=24)

    # -- HTTP API (`camcount serve`) ------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    # Tenants are also found by host name: `{subdomain}.{base_domain}` or a tenant's own domain.
    base_domain: str | None = None
    # Shared cache and invalidation across API processes; unset = in-process cache only.
    redis_url: SecretStr | None = None
    # HS256 key for access tokens; unset = derived from the secret key (HKDF), see docs/api.md.
    jwt_secret: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # Each SQL statement a request runs is cancelled after this long (0: never); a runaway query
    # must not hold a pooled connection the other tenants need. Jobs and commands are not bounded.
    request_statement_timeout_ms: int = Field(default=15_000, ge=0, le=600_000)
    # How long an API process trusts its copy of a tenant's status and plan.
    tenant_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # Adds GET /bench/constant (the benchmark's bare baseline). Off in production.
    bench_endpoints: bool = False
    # Rate limits and the daily API-call quota on every authenticated request (off: benchmarks only).
    limits_enforced: bool = True
    # Logs are JSON lines on stderr (camcount.monitoring.logs): DEBUG, INFO, WARNING or ERROR.
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
