"""Delivery: send spooled events to the tenant's API until each is acknowledged.

Contract (``POST {api}/t/{slug}/events``, bearer device key, at most 5,000 events per
batch): each event comes back ``accepted``, ``duplicate`` or ``rejected``. Accepted and
duplicate mean the server holds it, so it may leave the spool; rejected events are kept,
marked with the reason, and never retried. Transport failures and 5xx are retried with
exponential backoff and full jitter; 429 waits for ``Retry-After``; 413 splits the batch;
401/403/404 are configuration errors: delivery stops and the spool is kept.

The transport sits behind :class:`DeliveryClient` so tests (and the end-to-end test
against ``camcount serve``) can point the same :class:`Deliverer` at any server.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from camcount.edge.aggregate import CountEvent
from camcount.edge.backoff import Backoff
from camcount.edge.spool import Spool

log = logging.getLogger(__name__)

MAX_BATCH = 5000


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Connection failure, timeout or 5xx: try again later."""


class SlowDown(DeliveryError):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"server asked to slow down (Retry-After {retry_after})")
        self.retry_after = retry_after


class BatchTooLarge(DeliveryError):
    pass


class ConfigurationError(DeliveryError):
    """Wrong URL, tenant, camera or key: retrying cannot help, a human must fix it."""


@dataclass
class SendResult:
    acknowledged: list[CountEvent] = field(default_factory=list)
    rejected: list[tuple[CountEvent, str]] = field(default_factory=list)
    unanswered: list[CountEvent] = field(default_factory=list)  # missing from the answer: resend


class DeliveryClient(Protocol):
    def send(self, events: list[CountEvent]) -> SendResult: ...


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpDeliveryClient:
    def __init__(
        self, api: str, tenant: str, key: str, *, timeout: float = 10.0, transport: Any = None
    ) -> None:
        self.tenant = tenant
        self.http = httpx.Client(
            base_url=api.rstrip("/"),
            headers={"Authorization": f"Bearer {key}", "User-Agent": "camcount-edge"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (401, 403, 404):
            raise ConfigurationError(
                f"{response.request.method} {response.request.url} answered {status}: "
                f"check --api, --tenant, --camera-id and --key ({response.text[:200]})"
            )
        if status == 413:
            raise BatchTooLarge(response.text[:200])
        if status in (429, 503):  # too many requests; the service briefly unavailable
            raise SlowDown(_retry_after(response.headers.get("Retry-After")))
        if status >= 500 or status != 200:
            raise TransientError(f"server answered {status}: {response.text[:200]}")

    def send(self, events: list[CountEvent]) -> SendResult:
        try:
            response = self.http.post(
                f"/t/{self.tenant}/events",
                json={"events": [e.to_json() for e in events]},
                headers={"Prefer": "return=minimal"},  # list only what was not accepted
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        self._check(response)
        try:
            results = response.json()["results"]
            by_id = {str(r["event_id"]): r for r in results}
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(f"unreadable answer from server: {response.text[:200]}") from exc
        # A server that applied return=minimal lists only the events it did not accept.
        minimal = "return=minimal" in response.headers.get("Preference-Applied", "")
        outcome = SendResult()
        for event in events:
            result = by_id.get(event.event_id, {"status": "accepted"} if minimal else None)
            status = result.get("status") if isinstance(result, dict) else None
            if status in ("accepted", "duplicate"):
                outcome.acknowledged.append(event)
            elif status == "rejected":
                outcome.rejected.append((event, str(result.get("reason") or "rejected") if result else ""))
            else:
                outcome.unanswered.append(event)
        return outcome

    def fetch_camera(self, camera_id: int) -> dict[str, Any]:
        try:
            response = self.http.get(f"/t/{self.tenant}/cameras/{camera_id}")
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        self._check(response)
        body = response.json()
        if not isinstance(body, dict):
            raise TransientError("camera record is not a JSON object")
        return body


@dataclass
class DeliveryStats:
    acknowledged: int = 0
    rejected: int = 0
    batches: int = 0
    failures: int = 0


class Deliverer:
    """Moves events from the spool to a :class:`DeliveryClient`, one batch per step."""

    def __init__(
        self,
        spool: Spool,
        client: DeliveryClient,
        *,
        batch_size: int = 500,
        backoff: Backoff | None = None,
        idle_wait: float = 1.0,
    ) -> None:
        self.spool = spool
        self.client = client
        self.batch_size = min(batch_size, MAX_BATCH)
        self.backoff = backoff or Backoff(base=0.5, cap=60.0)
        self.idle_wait = idle_wait
        self.stats = DeliveryStats()

    def step(self) -> float:
        """Send one batch; returns how long to wait before the next step.

        Raises :class:`ConfigurationError`, which must stop delivery (the spool is kept).
        """
        batch = self.spool.pending(self.batch_size)
        if not batch:
            return self.idle_wait
        try:
            self._send(batch)
        except SlowDown as exc:
            self.stats.failures += 1
            delay = exc.retry_after if exc.retry_after is not None else self.backoff.next_delay()
            log.warning("server asked to slow down; waiting %.1f s", delay)
            return delay
        except TransientError as exc:
            self.stats.failures += 1
            delay = self.backoff.next_delay()
            log.warning("delivery failed (%s); %d events kept, retrying in %.1f s", exc, len(batch), delay)
            return delay
        self.backoff.reset()
        return 0.0

    def _send(self, batch: list[CountEvent]) -> None:
        self.spool.note_attempt(batch)
        try:
            result = self.client.send(batch)
        except BatchTooLarge:
            if len(batch) == 1:
                self.spool.reject([(batch[0], "server: single event too large (413)")])
                self.stats.rejected += 1
                return
            # Halve and remember: later batches start at the size the server accepts.
            half = len(batch) // 2
            self.batch_size = max(1, min(self.batch_size, half))
            log.warning("batch of %d too large for the server; splitting", len(batch))
            self._send(batch[:half])
            self._send(batch[half:])
            return
        self.stats.batches += 1
        if result.acknowledged:
            self.spool.acknowledge(result.acknowledged)
            self.stats.acknowledged += len(result.acknowledged)
        if result.rejected:
            for event, reason in result.rejected:
                log.warning(
                    "server rejected event %s: %s (kept in the spool, not retried)", event.event_id, reason
                )
            self.spool.reject(result.rejected)
            self.stats.rejected += len(result.rejected)
        if result.unanswered:
            raise TransientError(f"{len(result.unanswered)} events missing from the server's answer")

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; returns early only on a configuration error."""
        while not stop.is_set():
            delay = self.step()
            if delay > 0:
                stop.wait(delay)

    def drain(self, *, deadline: float | None = None, clock: Any = None, sleep: Any = None) -> bool:
        """Deliver until nothing is pending (True) or the deadline passes (False)."""
        import time

        clock = clock or time.monotonic
        sleep = sleep or time.sleep
        while self.spool.pending(1):
            if deadline is not None and clock() >= deadline:
                return False
            delay = self.step()
            if delay > 0:
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - clock()))
                sleep(delay)
        return True
