"""uvicorn's httptools protocol, answering penalised credentials before the ASGI application runs.

Two changes to uvicorn's protocol, nothing else: the penalty box below, and every answer written
in one piece (:class:`_OneWriteResponse`: the head joined to the body, one system call instead
of two).

A tenant flooding the API is refused by its rate limit, and its credential goes into the penalty
box (:mod:`camcount.limits.penalty`). Answering those refusals inside the application still costs
a task, a scope, the middleware stack and uvicorn's response machinery per request: about 45 µs,
enough for a paced flood arriving in bursts to hold up other tenants' requests in the same worker.
Here the check runs as soon as uvicorn has parsed the request's headers: a penalised request is
answered with the prebuilt 429 bytes and never becomes an ASGI request. Everything else is
uvicorn's own code path. ``camcount serve`` uses this protocol whenever httptools is installed.

Then the connection is held back: the server reads nothing more from it for a penalty (100 ms)
plus a random time of up to two penalties more (as nginx's ``limit_req`` delays excess requests
rather than serving them at once). A client that honours ``Retry-After`` (at least a second)
never notices; a flooding client gets at most one answer per connection per hold, and the random
part spreads its connections out, so their requests stop arriving as bursts that other tenants'
requests queue behind. The tenant's own rate is still served: the box lets one of its requests
through to the rate limiter every ``1 / rate`` seconds (:mod:`camcount.limits.penalty`).

The early answer keeps HTTP/1.1 semantics as uvicorn does for any early response: a body still
arriving is read and discarded by the parser, keep-alive and pipelining continue, and a client that
asked for ``Connection: close`` gets it.
"""

from __future__ import annotations

import random
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from camcount.limits.penalty import CHECKED_SCOPE_KEY, PENALTIES, Refusal
from camcount.monitoring import metrics

_CLOSE = b"connection: close\r\n"
# A held-back connection waits a penalty plus a random 0 to HOLD_BACK_SPREAD penalties more.
# Measured with the noisy-neighbour bench (B's p99 ratio, 5 rounds, before the let-through was
# added; bench/RESULTS.md): spread 1: 1.05 to 1.21; 2: 0.97 and 1.25; 4: 1.13 (noise about ±0.1).
HOLD_BACK_SPREAD = 2.0


class _OneWriteResponse:
    """The cycle's transport, holding the response head back until the body, so both leave in one write.

    uvicorn writes the status line and headers, then the body, as two writes: two system calls and,
    on loopback or a fast network, two TCP segments for the peer to process. The first write made
    once the response has started (the head) is held and joined to the next write (the body), or
    written on its own when the response ends without a body write (HEAD) or the connection closes.
    A ``100 Continue`` interim answer is written before the response starts, so it is never held.
    """

    __slots__ = ("_cycle", "_held", "_transport", "_wrote_head")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self._transport = cycle.transport
        self._held: bytes | None = None
        self._wrote_head = False
        done = cycle.on_response

        def on_response() -> None:
            self.flush()
            done()

        cycle.on_response = on_response

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._wrote_head and self._cycle.response_started:
            self._wrote_head = True
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class PenaltyAwareHttpToolsProtocol(HttpToolsProtocol):
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        refusal = PENALTIES.refusal_for(cycle.scope["headers"]) if PENALTIES else None
        if refusal is None:
            cycle.scope[CHECKED_SCOPE_KEY] = True  # type: ignore[literal-required]
            cycle.transport = _OneWriteResponse(cycle)  # type: ignore[assignment]
            super()._start_asgi_task(cycle, app)
            return
        _answer(cycle, refusal)
        self._hold_back()

    def _hold_back(self) -> None:
        """Read nothing more from this connection for a penalty, and a random while more."""
        if self.transport.is_closing():
            return
        self.flow.pause_reading()
        spread = random.random() * HOLD_BACK_SPREAD  # noqa: S311 (spreads load; no secret)
        self.loop.call_later((1 + spread) * PENALTIES.seconds, self._resume_after_penalty)

    def _resume_after_penalty(self) -> None:
        if not self.transport.is_closing():
            self.flow.resume_reading()


def _answer(cycle: RequestResponseCycle, refusal: Refusal) -> None:
    """Write the refusal as the cycle's whole response and complete it, as uvicorn's ``send`` would."""
    started = time.monotonic()
    cycle.response_started = True
    cycle.waiting_for_100_continue = False  # the body will not be read: no "100 Continue"
    default = b"".join(name + b": " + value + b"\r\n" for name, value in cycle.default_headers)
    body = b"" if cycle.scope["method"] == "HEAD" else refusal.body
    close = b"" if cycle.keep_alive else _CLOSE
    cycle.transport.write(b"".join((STATUS_LINE[429], default, refusal.head, close, b"\r\n", body)))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    metrics.observe_request(cycle.scope["method"], refusal.route, 429, time.monotonic() - started)
    cycle.on_response()
