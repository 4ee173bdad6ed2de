"""The penalty box: a credential refused by its rate limit is answered 429 from memory while it floods.

When a request is refused by a rate limit, the exact ``Authorization`` value that was refused goes
into the box with its answer prebuilt: the problem+json body and the headers, both as ASGI pairs
and as HTTP/1.1 bytes. While it is there, requests carrying that very credential get that answer
without authentication, routing, the access log or the database, except one request per
``1 / rate`` seconds, which is let through to the rate limiter (and normally admitted by it). So a
flooding tenant is still served at its plan's rate, and its admitted requests arrive evenly spaced
instead of in a burst each time a penalty runs out. The entry lasts ``PENALTY_SECONDS`` after the
last refusal (from memory or from the limiter): a tenant that stops flooding leaves the box within
100 ms.

Two places answer from the box: :class:`camcount.api.protocol.PenaltyAwareHttpToolsProtocol`, below
the ASGI application (uvicorn's HTTP parser has just read the headers: no task, no scope copy, no
middleware), and :class:`camcount.limits.rate.RateLimitHeadersMiddleware`, the outermost middleware,
for servers that do not use that protocol. A refused request then costs the process about 85 us of
CPU (half of it the kernel's loopback TCP), a fraction of a served one, which is what keeps one
tenant's flood from slowing the others.

One box per process (:data:`PENALTIES`): the protocol has no reference to the application that
fills it. Keys are whole credentials (a token or a device key), unique to one tenant, so sharing
the box between applications in one process (tests) mixes nothing up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from camcount.api.problems import TYPE_PREFIX as PROBLEM_TYPE_PREFIX

if TYPE_CHECKING:
    from camcount.errors import TooManyRequests

PENALTY_SECONDS = 0.1
# Set in the ASGI scope by the protocol once it has consulted the box, so the middleware does not
# consult it a second time (which would spend the request's turn to be let through).
CHECKED_SCOPE_KEY = "camcount.penalty_checked"
PENALTY_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Refusal:
    """A prebuilt 429 answer."""

    body: bytes
    headers: list[tuple[bytes, bytes]]  # ASGI pairs, lower-case names
    head: bytes  # the same headers as HTTP/1.1 lines, each ending in CRLF
    route: str  # route template of the refusal that started the penalty (metrics label)


def build_refusal(exc: TooManyRequests, route: str) -> Refusal:
    body = json.dumps(
        {"type": PROBLEM_TYPE_PREFIX + exc.code, "title": "Too Many Requests", "status": 429,
         "detail": str(exc), "request_id": "-"}
    ).encode()  # fmt: skip
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(name.lower().encode(), value.encode()) for name, value in exc.headers.items()]
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return Refusal(body, headers, head, route)


@dataclass
class _Penalty:
    refusal: Refusal
    until: float  # end of the penalty (time.monotonic())
    interval: float  # seconds between two requests let through to the rate limiter
    next_pass: float  # when the next one may go


class PenaltyBox:
    def __init__(self, seconds: float = PENALTY_SECONDS, max_entries: int = PENALTY_MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[bytes, _Penalty] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def remember(self, credential: bytes, exc: TooManyRequests, route: str, rate: float) -> None:
        """``credential`` was refused by a limit of ``rate`` requests per second: answer it from memory."""
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v.until > now}
            if len(self._entries) >= self.max_entries:
                return  # full of live penalties: the normal path still refuses, only slower
        interval = 1.0 / max(rate, 1e-3)
        until = now + min(self.seconds, exc.retry_after)
        self._entries[credential] = _Penalty(build_refusal(exc, route), until, interval, now + interval)

    def refusal(self, credential: bytes) -> Refusal | None:
        """The prebuilt answer while ``credential`` is penalised; None lets the request go on."""
        entry = self._entries.get(credential)
        if entry is None:
            return None
        now = time.monotonic()
        if now >= entry.until:
            self._entries.pop(credential, None)
            return None
        if now >= entry.next_pass:  # its turn: the rate limiter decides (and normally admits it)
            entry.next_pass = now + entry.interval
            return None
        entry.until = now + self.seconds  # still flooding: the penalty lasts a moment longer
        return entry.refusal

    def refusal_for(self, headers: Iterable[tuple[bytes, bytes]]) -> Refusal | None:
        """:meth:`refusal` for a request's raw headers (its ``Authorization``, if any)."""
        if not self._entries:
            return None
        for name, value in headers:
            if len(name) == 13 and name.lower() == b"authorization":
                return self.refusal(value)
        return None


PENALTIES = PenaltyBox()
