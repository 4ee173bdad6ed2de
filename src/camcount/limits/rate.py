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
tenant's limits wins. Rates are cached in process for ``RATE_CACHE_SECONDS`` and dropped at once
when the tenant (or, for a plan's change, every tenant) is invalidated through
:class:`camcount.cache.Cache`, so a changed limit or plan applies from the next request in every
API process that hears of it (all of them with Redis).

The order on each authenticated request: device bucket, tenant bucket (both cheap, and a refused
request is not counted), then the daily API-call quota (:class:`camcount.limits.quotas.QuotaMeter`,
no database write per request). Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` and ``RateLimit-Policy`` (IETF draft); a refusal is 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camcount.config import Settings
from camcount.db.pools import Database
from camcount.errors import TooManyRequests
from camcount.limits.penalty import CHECKED_SCOPE_KEY, PENALTIES, PenaltyBox
from camcount.limits.quotas import API_CALLS, EVENTS, QuotaMeter
from camcount.limits.storage import check_storage_allows_ingest
from camcount.monitoring import metrics
from camcount.monitoring.http import route_template
from camcount.tenancy.models import Tenant
from limits import RateLimitItem, RateLimitItemPerSecond

RATE_CACHE_SECONDS = 10.0
STATS_SECONDS = 0.1
STATS_MAX_ENTRIES = 10_000
WINDOW_SECONDS = 1
STATE_KEY = "camcount_rate_headers"
REFUSED_KEY = "camcount_rate_refused"


class RateLimited(TooManyRequests):
    def __init__(self, who: str, rate: int, retry_after: int) -> None:
        self.rate = rate
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


def _storage(redis_url: str, namespace: str) -> Storage:
    scheme, _, rest = redis_url.partition("://")
    return RedisStorage(
        f"async+{scheme}://{rest}", implementation="redispy", key_prefix=f"camcount_rl:{namespace}"
    )


class LocalWindows:
    """The ``limits`` sliding window counter's arithmetic, in process and synchronous.

    Same semantics as ``SlidingWindowCounterRateLimiter`` over ``MemoryStorage``: windows of
    ``expiry`` seconds aligned on the epoch, the previous window's count weighted by the part of it
    still inside the sliding window, a hit admitted when ``floor(weighted) + 1 <= limit``. Without
    the library's awaits, key strings and expiry timers it costs a dictionary look-up: this is the
    hot path of every request when there is no Redis. Stale keys are dropped as the table grows.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[str, ...], list[int]] = {}  # key -> [window index, current, previous]
        self._prune_at = 1024

    def hit(self, key: tuple[str, ...], limit: int, expiry: int, now: float) -> tuple[bool, int, float]:
        """Take one unit if the window allows; returns (admitted, remaining, seconds to reset)."""
        index = int(now // expiry)
        entry = self._windows.get(key)
        if entry is None:
            entry = self._windows[key] = [index, 0, 0]
            if len(self._windows) > self._prune_at:
                self._prune(index)
        elif entry[0] != index:
            entry[2] = entry[1] if entry[0] == index - 1 else 0
            entry[0], entry[1] = index, 0
        previous, current = entry[2], entry[1]
        previous_ttl = (1 - ((now - expiry) / expiry) % 1) * expiry if previous else 0.0
        weighted = previous * previous_ttl / expiry + current
        admitted = math.floor(weighted) + 1 <= limit
        if admitted:
            current = entry[1] = current + 1
            weighted += 1
        remaining = max(0, limit - math.floor(weighted))
        # Reset as the library's get_window_stats computes it.
        reset_in = math.inf
        if previous:
            reset_in = previous_ttl % (expiry / previous)
        if current:
            reset_in = min(reset_in, ((1 - (now / expiry) % 1) * expiry + expiry) % expiry)
        return admitted, remaining, 0.0 if reset_in == math.inf else reset_in

    def _prune(self, index: int) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] >= index - 1}
        self._prune_at = max(1024, 2 * len(self._windows))


class RateLimiter:
    """Named buckets: ``hit`` admits or raises RateLimited.

    With ``redis_url`` the buckets are the ``limits`` library's sliding window counters in Redis,
    shared by every process; ``namespace`` (the main database's name) keeps deployments that share
    one Redis apart. Without it, :class:`LocalWindows` in process (the same arithmetic).
    """

    def __init__(self, redis_url: str | None = None, namespace: str = "camcount") -> None:
        self.local: LocalWindows | None = None
        self.limiter: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            self.storage: Storage | None = _storage(redis_url, namespace)
            self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        else:
            self.storage = None
            self.local = LocalWindows()
        self._items: dict[int, RateLimitItem] = {}
        # Redis only: the window's statistics per bucket, as last read (monotonic time read,
        # remaining, reset as epoch seconds); see hit().
        self._stats: dict[tuple[str, ...], tuple[float, int, float]] = {}

    def _item(self, rate: int) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = RateLimitItemPerSecond(rate, WINDOW_SECONDS)
        return item

    async def hit(self, who: str, rate: int, *key: str) -> tuple[int, int]:
        """Take one request from the bucket; returns (remaining, seconds to reset)."""
        if self.local is not None:
            allowed, remaining, reset_in = self.local.hit((who, *key), rate, WINDOW_SECONDS, time.time())
        else:
            assert self.limiter is not None
            item = self._item(rate)
            allowed = await self.limiter.hit(item, who, *key)
            remaining, reset_in = await self._window(item, (who, *key), allowed)
        reset = max(1, int(reset_in + 0.999))
        if not allowed:
            raise RateLimited(who, rate, reset)
        return remaining, reset

    async def _window(self, item: RateLimitItem, key: tuple[str, ...], allowed: bool) -> tuple[int, float]:
        """(remaining, seconds to reset) for the RateLimit headers, reading Redis at most every
        ``STATS_SECONDS`` per bucket: in between, each admitted request takes one from the last
        reading. The admission itself is always Redis's answer; only the headers of a busy bucket
        may lag by up to ``STATS_SECONDS`` (other processes' requests show at the next reading).
        Halves the round trips of every request of a tenant sending more than 10 per second."""
        now = time.monotonic()
        cached = self._stats.get(key)
        if allowed and cached is not None and now - cached[0] < STATS_SECONDS:
            remaining = max(0, cached[1] - 1)
            self._stats[key] = (cached[0], remaining, cached[2])
            return remaining, cached[2] - time.time()
        assert self.limiter is not None
        stats = await self.limiter.get_window_stats(item, *key)
        if len(self._stats) > STATS_MAX_ENTRIES:
            self._stats = {k: v for k, v in self._stats.items() if now - v[0] < STATS_SECONDS}
        self._stats[key] = (now, stats.remaining, stats.reset_time)
        return stats.remaining, stats.reset_time - time.time()


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

    def forget_rates(self, tenant_id: int | None) -> None:
        """Drop the cached rates of a tenant (``None``: of every tenant); a cache invalidation listener."""
        if tenant_id is None:
            self._rates.clear()
        else:
            self._rates.pop(tenant_id, None)

    async def rates_for(self, tenant: Tenant) -> Rates:
        cached = self._rates.get(tenant.id)
        if cached is not None and time.monotonic() - cached[0] < RATE_CACHE_SECONDS:
            return cached[1]
        async with self.db.app_control() as conn:
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

    async def admit(self, tenant: Tenant, principal: Any) -> list[tuple[bytes, bytes]]:
        """Admit one request or raise TooManyRequests; returns the RateLimit headers to send (encoded)."""
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
        fixed = _FIXED_HEADERS.get(limit)
        if fixed is None:
            fixed = _FIXED_HEADERS[limit] = (str(limit).encode(), f"{limit};w={WINDOW_SECONDS}".encode())
        return [
            (b"ratelimit-limit", fixed[0]),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", b"1" if reset == 1 else str(reset).encode()),
            (b"ratelimit-policy", fixed[1]),
        ]


# limit -> (RateLimit-Limit, RateLimit-Policy) values, encoded once.
_FIXED_HEADERS: dict[int, tuple[bytes, bytes]] = {}


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


async def admit_ingest(request: Any, db: Database, tenant: Tenant, events: int, *, now: datetime) -> None:
    """Called by ``POST /events`` before storing: storage limit (507), then the events quota (429)."""
    await check_storage_allows_ingest(db, tenant)
    enforcer: Enforcer | None = getattr(request.app.state, "limits", None)
    if enforcer is not None and events > 0:
        await enforcer.quota.consume(tenant, EVENTS, events, now=now)


def refund_ingest(request: Any, tenant: Tenant, events: int, *, now: datetime) -> None:
    """Called by ``POST /events`` after storing: the events admitted but not stored do not count."""
    enforcer: Enforcer | None = getattr(request.app.state, "limits", None)
    if enforcer is not None:
        enforcer.quota.refund(tenant, EVENTS, events, now=now)


class RateLimitHeadersMiddleware:
    """Pure ASGI: the RateLimit headers on every answer, and the penalty box (:mod:`camcount.limits.penalty`).

    Installed only when limits are enforced, and **outermost**. A request refused by a rate limit
    puts its exact ``Authorization`` value in the penalty box; while it is there, this middleware
    answers that credential 429 from memory, before the access log, the request id, routing,
    authentication and the database, and without reading the body (under ``camcount serve`` the
    HTTP protocol answers it even earlier, before the application). Those answers are counted in
    the request metrics (method, the route of the original refusal, 429) but not written to the
    access log one by one (that line is most of what a request costs; the refusal that started the
    penalty is logged).
    """

    def __init__(self, app: ASGIApp, penalties: PenaltyBox = PENALTIES) -> None:
        self.app = app
        self.penalties = penalties

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credential = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                credential = value
                break
        if credential and self.penalties and not scope.get(CHECKED_SCOPE_KEY):
            refusal = self.penalties.refusal(credential)
            if refusal is not None:
                started = time.monotonic()
                await send({"type": "http.response.start", "status": 429, "headers": refusal.headers})
                await send({"type": "http.response.body", "body": refusal.body})
                metrics.observe_request(
                    scope.get("method", ""), refusal.route, 429, time.monotonic() - started
                )
                return
        state = scope.setdefault("state", {})  # shared by every copy of the scope made further in

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = state.get(STATE_KEY)
                if headers:
                    present = message.get("headers") or []
                    if any(name[:10].lower() == b"ratelimit-" for name, _ in present):
                        names = {name.lower() for name, _ in present}
                        headers = [h for h in headers if h[0] not in names]
                    message["headers"] = [*present, *headers]
                elif message["status"] == 429 and credential and REFUSED_KEY in state:
                    refused: RateLimited = state[REFUSED_KEY]
                    self.penalties.remember(credential, refused, route_template(scope), refused.rate)
            await send(message)

        await self.app(scope, receive, send_with_headers)
