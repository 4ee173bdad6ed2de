"""When each credential was last used (``last_used_at``), without a write per request.

Device keys (``api_keys``, per tenant) and operator tokens (``control.operator_tokens``) alike:
authentication notes the use in memory (a dictionary assignment); every ``FLUSH_SECONDS`` the API
process writes what it noted, device keys one statement per tenant in that tenant's own scoped
transaction, operator tokens one statement on the control plane. So ``last_used_at`` lags by at
most ``FLUSH_SECONDS``; a process that dies, or a write that fails (logged), loses at most that
much of this hint, never a request. The column only moves forward: with several API processes, an
older note never overwrites a newer one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.periodic import PeriodicFlush
from camcount.tenancy.models import Tenant, TenantLocation

FLUSH_SECONDS = 60.0

log = logging.getLogger("camcount.keys")

_TOUCH = """
UPDATE api_keys k SET last_used_at = used.at
FROM unnest(%(ids)s::int8[], %(ats)s::timestamptz[]) AS used (id, at)
WHERE k.tenant_id = %(tenant_id)s AND k.id = used.id AND (k.last_used_at IS NULL OR k.last_used_at < used.at)
"""


_TOUCH_OPERATOR_TOKENS = """
UPDATE control.operator_tokens t SET last_used_at = used.at
FROM unnest(%(prefixes)s::text[], %(ats)s::timestamptz[]) AS used (prefix, at)
WHERE t.prefix = used.prefix AND (t.last_used_at IS NULL OR t.last_used_at < used.at)
"""


class KeyUsage(PeriodicFlush):
    """Device-key uses noted in memory and written to each tenant's ``api_keys`` now and then."""

    def __init__(self, db: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(db, flush_seconds)
        self._noted: dict[int, tuple[TenantLocation, dict[int, datetime]]] = {}

    def note(self, tenant: Tenant, key_id: int) -> None:
        """The key was just used (called on every successful device-key authentication)."""
        entry = self._noted.get(tenant.id)
        if entry is None:
            entry = self._noted[tenant.id] = (tenant.location, {})
        entry[1][key_id] = datetime.now(UTC)

    async def flush(self) -> int:
        """Write what was noted; returns the number of keys written (a failure is logged and dropped)."""
        noted, self._noted = self._noted, {}
        written = 0
        for tenant_id, (location, uses) in noted.items():
            ids = sorted(uses)
            try:
                async with tenant_transaction(self.db, location) as conn:
                    await conn.execute(
                        _TOUCH, {"ids": ids, "ats": [uses[i] for i in ids], "tenant_id": tenant_id}
                    )
            except Exception:  # a hint, not data: the next use notes it again
                log.warning("could not record device key use for tenant %s", tenant_id, exc_info=True)
                continue
            written += len(ids)
        return written


class OperatorTokenUsage(PeriodicFlush):
    """Operator-token uses noted in memory and written to ``control.operator_tokens`` now and then."""

    def __init__(self, db: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(db, flush_seconds)
        self._noted: dict[str, datetime] = {}

    def note(self, prefix: str) -> None:
        """The token with this prefix was just accepted."""
        self._noted[prefix] = datetime.now(UTC)

    async def flush(self) -> int:
        """Write what was noted; returns the number of tokens noted (a failure is logged and dropped)."""
        noted, self._noted = self._noted, {}
        if not noted:
            return 0
        prefixes = sorted(noted)
        try:
            async with self.db.app_control() as conn:
                await conn.execute(
                    _TOUCH_OPERATOR_TOKENS, {"prefixes": prefixes, "ats": [noted[p] for p in prefixes]}
                )
        except Exception:  # a hint, not data: the next use notes it again
            log.warning("could not record operator token use", exc_info=True)
            return 0
        return len(prefixes)
