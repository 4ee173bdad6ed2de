"""The crossing rules, fed hand-made track positions (no video involved)."""

from __future__ import annotations

from dataclasses import dataclass

from camcount.edge.count import CrossingRules, Direction, Line, LineCounter
from camcount.edge.detectors import Box

LINE = Line(0, 100, 300, 100)  # "in" = moving down


@dataclass
class FakeTrack:
    track_id: int
    box: Box = (0.0, 0.0, 0.0, 0.0)
    age: int = 10
    confirmed: bool = True
    label: str = "person"
    confidence: float = 0.9


def feed(counter: LineCounter, track: FakeTrack, feet_y: list[float], x: float = 150.0) -> list[Direction]:
    directions = []
    for frame, y in enumerate(feet_y):
        track.box = (x - 8, y - 30, x + 8, y)
        track.age += 1
        crossing = counter.observe(track, frame, float(frame))
        if crossing is not None:
            directions.append(crossing.direction)
    return directions


def test_a_walk_down_counts_in_and_a_walk_up_counts_out() -> None:
    counter = LineCounter(LINE)
    assert feed(counter, FakeTrack(1), [80, 90, 98, 104, 110, 120]) == [Direction.IN]
    assert feed(counter, FakeTrack(2), [120, 110, 104, 96, 90, 80]) == [Direction.OUT]


def test_poking_over_the_line_for_one_frame_and_turning_back_counts_nothing() -> None:
    counter = LineCounter(LINE, rules=CrossingRules(dead_band=4, min_frames_on_side=2))
    assert feed(counter, FakeTrack(1), [80, 90, 106, 95, 85, 70]) == []


def test_standing_in_the_dead_band_counts_nothing_until_the_object_moves_on() -> None:
    counter = LineCounter(LINE)
    track = FakeTrack(1)
    assert feed(counter, track, [80, 90] + [99, 101, 103, 97] * 10) == []
    assert feed(counter, track, [108, 115, 120]) == [Direction.IN]


def test_unconfirmed_or_young_tracks_never_count() -> None:
    counter = LineCounter(LINE, rules=CrossingRules(min_track_age=50))
    assert feed(counter, FakeTrack(1, age=1), [80, 90, 110, 120]) == []
    counter = LineCounter(LINE)
    assert feed(counter, FakeTrack(2, confirmed=False), [80, 90, 110, 120]) == []


def test_a_track_counts_each_direction_at_most_once() -> None:
    counter = LineCounter(LINE)
    track = FakeTrack(1)
    path = [80, 110, 120, 80, 70, 110, 120, 80, 70]
    assert feed(counter, track, path) == [Direction.IN, Direction.OUT]
    assert counter.totals[("person", Direction.IN)] == 1


def test_walking_around_the_end_of_the_segment_is_not_a_crossing() -> None:
    counter = LineCounter(Line(100, 100, 200, 100))
    track = FakeTrack(1)
    assert feed(counter, track, [60, 70], x=150) == []
    assert feed(counter, track, [80, 100, 120, 140], x=250) == []  # passes beside the segment
    assert feed(counter, track, [140, 140], x=150) == []


def test_a_track_that_ends_just_after_crossing_is_counted_when_it_ends() -> None:
    counter = LineCounter(LINE, rules=CrossingRules(min_frames_on_side=3))
    track = FakeTrack(1)
    assert feed(counter, track, [80, 90, 108]) == []  # one frame beyond, then gone
    crossing = counter.finish(track, 3, 3.0)
    assert crossing is not None and crossing.direction is Direction.IN
    assert counter.finish(FakeTrack(2), 3, 3.0) is None
