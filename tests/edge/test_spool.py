from __future__ import annotations

from pathlib import Path

import pytest

from camcount.edge.aggregate import Observation, build_events, interval_start, make_event_id
from camcount.edge.spool import Spool, SpoolFullError

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def crossing(key: str, at: float, direction: str = "in", confidence: float = 0.8) -> Observation:
    return Observation(key, interval_start(at, 60), direction, "person", "", 1, confidence)


def test_event_ids_are_deterministic_and_readable() -> None:
    assert make_event_id(7, T0, 60, "in", "person") == "c7-20260101T000000Z-60s-in-person"
    assert (
        make_event_id(7, T0, 60, "occupancy", "", "front door!")
        == "c7-20260101T000000Z-60s-occupancy--z_front_door_"
    )
    assert len(make_event_id(7, T0, 60, "in", "x" * 500, "y" * 500)) <= 128


def test_crossings_are_summed_per_interval_direction_and_class() -> None:
    obs = [crossing("a", T0 + 1), crossing("b", T0 + 59, confidence=0.6), crossing("c", T0 + 61),
           crossing("d", T0 + 5, "out")]  # fmt: skip
    events = {(e.occurred_at, e.count_type): e for e in build_events(3, 60, obs)}
    first = events[("2026-01-01T00:00:00+00:00", "in")]
    assert first.count_value == 2 and first.confidence == pytest.approx(0.7)
    assert events[("2026-01-01T00:01:00+00:00", "in")].count_value == 1
    assert events[("2026-01-01T00:00:00+00:00", "out")].count_value == 1


def test_occupancy_reports_the_peak_sample() -> None:
    obs = [Observation(f"o{i}", T0, "occupancy", "", "door", n, 1.0) for i, n in enumerate([1, 4, 2])]
    (event,) = build_events(1, 60, obs)
    assert event.count_value == 4 and event.count_type == "occupancy"


def test_an_interval_becomes_an_event_only_when_it_is_over(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        spool.record(1, 60, [crossing("a", T0 + 10), crossing("b", T0 + 20)])
        assert spool.close_intervals(T0 + 59) == 0
        assert spool.pending(10) == []
        assert spool.close_intervals(T0 + 60) == 1
        (event,) = spool.pending(10)
        assert event.count_value == 2 and spool.stats().open_observations == 0


def test_re_recording_the_same_observations_changes_nothing(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite") as spool:
        assert spool.record(1, 60, [crossing("a", T0), crossing("b", T0)]) == 2
        assert spool.record(1, 60, [crossing("a", T0), crossing("b", T0)]) == 0
        spool.close_intervals(T0 + 60)
        # A re-run after a crash re-creates the same observations and the same event id.
        spool.record(1, 60, [crossing("a", T0), crossing("b", T0)])
        spool.close_intervals(T0 + 60)
        (event,) = spool.pending(10)
        assert event.count_value == 2


def test_the_spool_survives_reopening_and_only_acknowledged_events_leave(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Spool(path) as spool:
        spool.record(1, 60, [crossing("a", T0), crossing("b", T0 + 60), crossing("c", T0 + 120, "out")])
        spool.close_intervals(T0 + 180)
    with Spool(path) as spool:
        events = spool.pending(10)
        assert len(events) == 3
        spool.acknowledge(events[:1])
        spool.reject([(events[1], "camera retired")])
    with Spool(path) as spool:
        assert [e.event_id for e in spool.pending(10)] == [events[2].event_id]
        assert spool.rejected() == [(events[1], "camera retired")]
        assert spool.stats().rejected == 1


def test_a_full_spool_refuses_new_counts_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path / "s.sqlite", max_events=2) as spool:
        spool.record(1, 60, [crossing("a", T0), crossing("b", T0 + 60, "out")])
        spool.close_intervals(T0 + 120)
        assert spool.stats().full
        with pytest.raises(SpoolFullError):
            spool.record(1, 60, [crossing("c", T0 + 130)])
        assert "spool" in caplog.text and "full" in caplog.text
        assert len(spool.pending(10)) == 2  # nothing old was dropped to make room
