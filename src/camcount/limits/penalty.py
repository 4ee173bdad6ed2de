"""The penalty box: a credential just refused by a rate limit is answered 429 from memory for a moment.

When a request is refused by a rate limit, the exact ``Authorization`` value that was refused goes
into the box for ``PENALTY_SECONDS`` (or the refusal's ``Retry-After``, if shorter), with its
answer prebuilt: the problem+json body and the headers, both as ASGI pairs and as HTTP/1.1 bytes.
Until then every request carrying that very credential gets that answer without authentication,
routing, the access log or the database. The bucket would have refused it anyway; at most it is
admitted up to ``PENALTY_SECONDS`` later than the window allows.

Two places answer from the box: :class:`camcount.api.protocol.PenaltyAwareHttpToolsProtocol`, below
the ASGI application (uvicorn's HTTP parser has just read the headers: no task, no scope copy, no
middleware), and :class:`camcount.limits.rate.RateLimitHeadersMiddleware`, the outermost middleware,
for servers that do not use that protocol. A flooding credential then costs the process a few
microseconds per request, which is what keeps one tenant's flood from slowing the others.

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
PENALTY_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Refusal:
    """A prebuilt 429 answer, valid until ``until`` (``time.monotonic()``)."""

    until: float
    body: bytes
    headers: list[tuple[bytes, bytes]]  # ASGI pairs, lower-case names
    head: bytes  # the same headers as HTTP/1.1 lines, each ending in CRLF
    route: str  # route template of the refusal that started the penalty (metrics label)


def build_refusal(exc: TooManyRequests, route: str, until: float) -> Refusal:
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
    return Refusal(until, body, headers, head, route)


class PenaltyBox:
    def __init__(self, seconds: float = PENALTY_SECONDS, max_entries: int = PENALTY_MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[bytes, Refusal] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def remember(self, credential: bytes, exc: TooManyRequests, route: str) -> None:
        """Answer ``credential`` with this refusal for the next moment."""
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v.until > now}
            if len(self._entries) >= self.max_entries:
                return  # full of live penalties: the normal path still refuses, only slower
        until = now + min(self.seconds, exc.retry_after)
        self._entries[credential] = build_refusal(exc, route, until)

    def refusal(self, credential: bytes) -> Refusal | None:
        """The prebuilt answer while ``credential`` is penalised, else None (an expired entry is dropped)."""
        entry = self._entries.get(credential)
        if entry is None:
            return None
        if time.monotonic() < entry.until:
            return entry
        self._entries.pop(credential, None)
        return None

    def refusal_for(self, headers: Iterable[tuple[bytes, bytes]]) -> Refusal | None:
        """:meth:`refusal` for a request's raw headers (its ``Authorization``, if any)."""
        if not self._entries:
            return None
        for name, value in headers:
            if len(name) == 13 and name.lower() == b"authorization":
                return self.refusal(value)
        return None


PENALTIES = PenaltyBox()
