"""Delivery against a real HTTP server on 127.0.0.1 (see conftest.FakeApi)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from camcount.edge.aggregate import Observation
from camcount.edge.backoff import Backoff
from camcount.edge.deliver import ConfigurationError, Deliverer, HttpDeliveryClient
from camcount.edge.spool import Spool
from tests.edge.conftest import KEY, FakeApi, start_fake_api

T0 = 1_767_225_600


def filled_spool(path: Path, intervals: int = 10, camera: int = 5) -> Spool:
    spool = Spool(path)
    obs = [
        Observation(f"k{i}{d}", T0 + 60 * i, d, "person", "", 1, 0.9)
        for i in range(intervals)
        for d in ("in", "out")
    ]
    spool.record(camera, 60, obs)
    spool.close_intervals(T0 + 60 * intervals)
    return spool


def deliverer(spool: Spool, url: str, **kwargs: object) -> Deliverer:
    backoff = Backoff(base=0.01, cap=0.05, rng=random.Random(1))
    return Deliverer(spool, HttpDeliveryClient(url, "acme", KEY, timeout=2.0), backoff=backoff, **kwargs)  # type: ignore[arg-type]


def test_events_arrive_once_and_leave_the_spool(tmp_path: Path, fake_api: FakeApi) -> None:
    spool = filled_spool(tmp_path / "s.sqlite")
    d = deliverer(spool, fake_api.url, batch_size=7)
    assert d.drain(deadline=None)
    assert len(fake_api.accepted) == 20 and fake_api.totals() == {"in": 10, "out": 10}
    assert fake_api.batches == [7, 7, 6]
    assert spool.stats().pending == 0
    body = next(iter(fake_api.accepted.values()))
    assert set(body) == {"event_id", "camera_id", "count_type", "count_value", "confidence", "occurred_at",
                         "object_class"}  # fmt: skip
    assert body["occurred_at"].endswith("+00:00")


def test_a_server_that_is_down_then_up_gets_everything_exactly_once(tmp_path: Path) -> None:
    with socket.socket() as s:  # find a free port, then leave it closed: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spool = filled_spool(tmp_path / "s.sqlite")
    d = deliverer(spool, f"http://127.0.0.1:{port}")
    assert d.step() > 0 and d.stats.failures == 1  # refused: back off, keep everything
    assert spool.stats().pending == 20
    api = FakeApi()
    server = start_fake_api(api, port)
    try:
        assert d.drain(deadline=None)
    finally:
        server.shutdown()
        server.server_close()
    assert len(api.accepted) == 20 and api.duplicates == 0


def test_5xx_429_503_and_dropped_connections_are_retried(tmp_path: Path, fake_api: FakeApi) -> None:
    spool = filled_spool(tmp_path / "s.sqlite")
    d = deliverer(spool, fake_api.url, batch_size=5)
    fake_api.mode = "error500"
    assert d.step() > 0 and spool.stats().pending == 20
    fake_api.mode = "slow_down"
    assert d.step() == pytest.approx(0.2)  # Retry-After honoured
    fake_api.mode = "unavailable"
    assert d.step() == pytest.approx(0.3)  # a 503's Retry-After too
    fake_api.mode = "drop"
    assert d.step() > 0
    assert d.drain(deadline=None)
    assert fake_api.totals() == {"in": 10, "out": 10} and len(fake_api.accepted) == 20


def test_duplicate_acknowledgements_also_empty_the_spool(tmp_path: Path, fake_api: FakeApi) -> None:
    first = filled_spool(tmp_path / "a.sqlite")
    assert deliverer(first, fake_api.url).drain(deadline=None)
    again = filled_spool(tmp_path / "b.sqlite")  # e.g. a spool restored from a backup
    assert deliverer(again, fake_api.url).drain(deadline=None)
    assert fake_api.duplicates == 20 and len(fake_api.accepted) == 20
    assert again.stats().pending == 0


@pytest.mark.parametrize("minimal", [False, True], ids=["full-answer", "minimal-answer"])
def test_outcomes_are_read_from_a_full_or_a_minimal_answer(
    tmp_path: Path, fake_api: FakeApi, minimal: bool
) -> None:
    """With ``Preference-Applied: return=minimal`` an event missing from the answer was accepted;
    without it, a missing event is unanswered and stays in the spool."""
    fake_api.minimal = minimal
    fake_api.reject_types = {"out"}
    spool = filled_spool(tmp_path / "s.sqlite")
    client = HttpDeliveryClient(fake_api.url, "acme", KEY, timeout=2.0)
    try:
        events = spool.pending(100)
        outcome = client.send(events)
        again = client.send(events)
    finally:
        client.close()
    assert len(outcome.acknowledged) == 10 and len(outcome.rejected) == 10 and not outcome.unanswered
    assert all(event.count_type == "in" for event in outcome.acknowledged)
    assert len(again.acknowledged) == 10 and len(again.rejected) == 10  # duplicates are acknowledged
    assert fake_api.duplicates == 10


def test_a_too_large_batch_is_split(tmp_path: Path, fake_api: FakeApi) -> None:
    fake_api.max_batch = 3
    spool = filled_spool(tmp_path / "s.sqlite")
    d = deliverer(spool, fake_api.url, batch_size=20)
    assert d.drain(deadline=None)
    assert len(fake_api.accepted) == 20 and max(fake_api.batches) <= 3 and d.batch_size <= 3


def test_rejected_events_are_kept_marked_and_not_retried(
    tmp_path: Path, fake_api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    fake_api.reject_types = {"out"}
    spool = filled_spool(tmp_path / "s.sqlite")
    assert deliverer(spool, fake_api.url).drain(deadline=None)
    requests = fake_api.requests
    assert spool.stats().pending == 0 and spool.stats().rejected == 10
    assert all(reason == "unknown type" for _, reason in spool.rejected())
    assert deliverer(spool, fake_api.url).drain(deadline=None) and fake_api.requests == requests
    assert "rejected" in caplog.text


def test_a_wrong_key_stops_delivery_and_keeps_the_spool(tmp_path: Path, fake_api: FakeApi) -> None:
    fake_api.mode = "unauthorised"
    spool = filled_spool(tmp_path / "s.sqlite")
    with pytest.raises(ConfigurationError, match="401"):
        deliverer(spool, fake_api.url).step()
    assert spool.stats().pending == 20


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0, min_delay=0.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(40)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert delays[0] <= 1.0 and max(delays[5:]) > 4.0  # ceiling 1, 2, 4, 8, 8, ...
    assert len(set(delays)) == len(delays)  # jittered
