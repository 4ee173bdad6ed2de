"""Rate limits per tenant and per device key, and the enforcement every authenticated request passes.

Rate limiting uses the ``limits`` library (moving/sliding windows over memory or Redis storage)
rather than hand-written code. Its **sliding window counter** stands in for a token bucket: a
tenant gets ``rate`` requests per 1-second window, the previous window's count weighted by how
much of it still overlaps, so a burst at a window edge cannot double the rate (the flaw of a fixed
window). The difference from a true token bucket (rate r, burst r) is small: both allow about r
requests in any second, and neither lets a flood through. Storage is Redis when
``CAMCOUNT_REDIS_URL`` is set (shared by every API process), in process otherwise.

Rates: the plan's ``requests_per_second`` per tenant and ``device_requests_per_second`` per device
key; an operator override of ``requests_per_second`` / ``device_requests_per_second`` in the
tenant's limits wins. Rates are cached in process for ``RATE_CACHE_SECONDS``.

The order on each authenticated request: device bucket, tenant bucket (both cheap, and a refused
request is not counted), then the daily API-call quota (:class:`camcount.limits.quotas.QuotaMeter`,
no database write per request). Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` and ``RateLimit-Policy`` (IETF draft); a refusal is 429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camcount.api.problems import TYPE_PREFIX as PROBLEM_TYPE_PREFIX
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.errors import TooManyRequests
from camcount.limits.quotas import API_CALLS, EVENTS, QuotaMeter
from camcount.limits.storage import check_storage_allows_ingest
from camcount.tenancy.models import Tenant
from limits import RateLimitItem, RateLimitItemPerSecond

RATE_CACHE_SECONDS = 10.0
WINDOW_SECONDS = 1
STATE_KEY = "camcount_rate_headers"
REFUSED_KEY = "camcount_rate_refused"
# After a rate refusal, the same credential is answered 429 from memory for this long (seconds).
PENALTY_SECONDS = 0.1
PENALTY_MAX_ENTRIES = 10_000


class RateLimited(TooManyRequests):
    def __init__(self, who: str, rate: int, retry_after: int) -> None:
        super().__init__(
            f"rate limit exceeded: {rate} requests per second for this {who}; retry after {retry_after} s",
            code="rate-limited",
            retry_after=retry_after,
            headers={
                "RateLimit-Limit": str(rate),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after),
                "RateLimit-Policy": f"{rate};w={WINDOW_SECONDS}",
            },
        )


@dataclass(frozen=True)
class Rates:
    tenant: int
    device: int


def _storage(redis_url: str | None, namespace: str) -> Storage:
    if redis_url:
        scheme, _, rest = redis_url.partition("://")
        return RedisStorage(
            f"async+{scheme}://{rest}", implementation="redispy", key_prefix=f"camcount_rl:{namespace}"
        )
    return MemoryStorage()


class RateLimiter:
    """Named buckets over ``limits``: ``hit`` admits or raises RateLimited.

    ``namespace`` (the main database's name) keeps deployments that share one Redis apart.
    """

    def __init__(self, redis_url: str | None = None, namespace: str = "camcount") -> None:
        self.storage = _storage(redis_url, namespace)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._items: dict[int, RateLimitItem] = {}

    def _item(self, rate: int) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = RateLimitItemPerSecond(rate, WINDOW_SECONDS)
        return item

    async def hit(self, who: str, rate: int, *key: str) -> tuple[int, int]:
        """Take one request from the bucket; returns (remaining, seconds to reset)."""
        item = self._item(rate)
        allowed = await self.limiter.hit(item, who, *key)
        stats = await self.limiter.get_window_stats(item, who, *key)
        reset = max(1, int(stats.reset_time - time.time() + 0.999))
        if not allowed:
            raise RateLimited(who, rate, reset)
        return stats.remaining, reset


class Enforcer:
    """One per API process: rate limits, then the daily API-call quota, for each authenticated request."""

    def __init__(self, db: Database, settings: Settings, *, quota: QuotaMeter | None = None) -> None:
        self.db = db
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        self.rate = RateLimiter(redis_url, db.main_dbname)
        self.quota = quota or QuotaMeter(db)
        self._rates: dict[int, tuple[float, Rates]] = {}

    async def start(self) -> None:
        self.quota.start()

    async def stop(self) -> None:
        await self.quota.stop()

    async def rates_for(self, tenant: Tenant) -> Rates:
        cached = self._rates.get(tenant.id)
        if cached is not None and time.monotonic() - cached[0] < RATE_CACHE_SECONDS:
            return cached[1]
        pool = await self.db.app_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT coalesce((SELECT limit_value FROM control.tenant_limits
                                 WHERE tenant_id = %(t)s AND resource = 'requests_per_second'),
                                p.requests_per_second),
                       coalesce((SELECT limit_value FROM control.tenant_limits
                                 WHERE tenant_id = %(t)s AND resource = 'device_requests_per_second'),
                                p.device_requests_per_second)
                FROM control.plans p WHERE p.code = %(plan)s
                """,
                {"t": tenant.id, "plan": tenant.plan},
            )
            row = await cur.fetchone()
        rates = Rates(max(1, int(row[0])), max(1, int(row[1]))) if row else Rates(10, 5)
        self._rates[tenant.id] = (time.monotonic(), rates)
        return rates

    async def admit(self, tenant: Tenant, principal: Any) -> dict[str, str]:
        """Admit one request or raise TooManyRequests; returns the RateLimit headers to send."""
        rates = await self.rates_for(tenant)
        tid = str(tenant.id)
        remaining, reset = await self.rate.hit("tenant", rates.tenant, tid)
        limit = rates.tenant
        if getattr(principal, "kind", None) == "device":
            d_remaining, d_reset = await self.rate.hit(
                "device key", rates.device, tid, str(principal.subject_id)
            )
            if d_remaining < remaining:
                remaining, reset, limit = d_remaining, d_reset, rates.device
        await self.quota.consume(tenant, API_CALLS)
        return {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{limit};w={WINDOW_SECONDS}",
        }


async def enforce_request(request: Any, tenant: Tenant, principal: Any) -> None:
    """Called by ``camcount.api.deps.require`` once the request is authenticated."""
    enforcer: Enforcer | None = getattr(request.app.state, "limits", None)
    if enforcer is None:
        return
    try:
        headers = await enforcer.admit(tenant, principal)
    except RateLimited as exc:
        # Lets the middleware answer this credential's next requests from memory for a moment.
        request.scope.setdefault("state", {})[REFUSED_KEY] = exc
        raise
    request.scope.setdefault("state", {})[STATE_KEY] = headers


async def admit_ingest(request: Any, db: Database, tenant: Tenant, events: int) -> None:
    """Called by ``POST /events`` before storing: storage limit (507), then the events quota (429)."""
    await check_storage_allows_ingest(db, tenant)
    enforcer: Enforcer | None = getattr(request.app.state, "limits", None)
    if enforcer is not None and events > 0:
        await enforcer.quota.consume(tenant, EVENTS, events)


class RateLimitHeadersMiddleware:
    """Pure ASGI: the RateLimit headers on every answer, and the cheap refusal of a flooding credential.

    When a request was refused by a rate limit, the exact ``Authorization`` value that was refused
    is answered 429 straight from memory (before routing, authentication and the database) for the
    next ``PENALTY_SECONDS``: a flooding tenant then costs the process almost nothing, so it cannot
    slow other tenants down. Only a request carrying that very credential is affected, and the bucket
    would have refused it anyway (at most it is admitted up to 100 ms later than the window allows).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._penalty: dict[bytes, tuple[float, bytes, list[tuple[bytes, bytes]]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # shared by every copy of the scope made further in
        credential = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                credential = value
                break
        if credential and self._penalty:
            entry = self._penalty.get(credential)
            if entry is not None:
                if time.monotonic() < entry[0]:
                    await send({"type": "http.response.start", "status": 429, "headers": entry[2]})
                    await send({"type": "http.response.body", "body": entry[1]})
                    return
                del self._penalty[credential]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = state.get(STATE_KEY)
                if headers:
                    names = {name.lower() for name, _ in message.get("headers", [])}
                    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()
                             if k.lower().encode() not in names]  # fmt: skip
                    message["headers"] = [*message.get("headers", []), *extra]
                elif message["status"] == 429 and credential and REFUSED_KEY in state:
                    self._remember(credential, state[REFUSED_KEY])
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _remember(self, credential: bytes, exc: RateLimited) -> None:
        if len(self._penalty) >= PENALTY_MAX_ENTRIES:
            now = time.monotonic()
            self._penalty = {k: v for k, v in self._penalty.items() if v[0] > now}
            if len(self._penalty) >= PENALTY_MAX_ENTRIES:
                return
        body = json.dumps(
            {"type": PROBLEM_TYPE_PREFIX + exc.code, "title": "Too Many Requests", "status": 429,
             "detail": str(exc), "request_id": "-"}
        ).encode()  # fmt: skip
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        self._penalty[credential] = (time.monotonic() + min(PENALTY_SECONDS, exc.retry_after), body, headers)
