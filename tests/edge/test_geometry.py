from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from camcount.edge.count import Anchor, Line, Zone, anchor_point

coords = st.floats(min_value=-1000, max_value=1000, allow_nan=False)


def test_points_right_of_the_direction_are_on_the_in_side() -> None:
    line = Line(0, 100, 200, 100)  # pointing right: "in" is below on screen (y grows down)
    assert line.signed_distance((50, 130)) == pytest.approx(30)
    assert line.signed_distance((50, 70)) == pytest.approx(-30)


def test_a_move_across_the_segment_crosses_but_around_its_end_does_not() -> None:
    line = Line(100, 100, 200, 100)
    assert line.path_crosses((150, 80), (150, 120))
    assert not line.path_crosses((250, 80), (250, 120))  # beyond the end: the extension only
    assert not line.path_crosses((150, 80), (160, 90))  # same side


@given(coords, coords, coords, coords, st.floats(0.05, 0.95), st.floats(1, 300))
def test_crossing_is_symmetric_and_sides_flip_with_direction(
    x1: float, y1: float, x2: float, y2: float, t: float, offset: float
) -> None:
    assume(abs(x2 - x1) + abs(y2 - y1) > 2)
    line = Line(x1, y1, x2, y2)
    # A point on the segment, pushed off along the normal either way.
    px, py = line.x1 + t * (line.x2 - line.x1), line.y1 + t * (line.y2 - line.y1)
    nx, ny = -(line.y2 - line.y1) / line.length, (line.x2 - line.x1) / line.length
    a, b = (px - offset * nx, py - offset * ny), (px + offset * nx, py + offset * ny)
    assert line.signed_distance(a) < 0 < line.signed_distance(b)
    assert line.path_crosses(a, b) and line.path_crosses(b, a)
    reverse = Line(line.x2, line.y2, line.x1, line.y1)
    assert reverse.signed_distance(a) > 0 > reverse.signed_distance(b)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,1,2", "", "nan,0,1,1", "0,0,0.5,0"])
def test_malformed_lines_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="line"):
        Line.parse(text)


def test_anchor_is_feet_for_people_and_centre_for_vehicles() -> None:
    box = (10.0, 20.0, 30.0, 60.0)
    assert anchor_point(box, Anchor.BOTTOM_CENTER) == (20.0, 60.0)
    assert anchor_point(box, Anchor.CENTER) == (20.0, 40.0)


def test_zone_contains_points_inside_a_concave_polygon() -> None:
    zone = Zone.parse("L:0,0,100,0,100,40,40,40,40,100,0,100")
    assert zone.contains((20, 80)) and zone.contains((80, 20))
    assert not zone.contains((80, 80))
    with pytest.raises(ValueError, match="zone"):
        Zone.parse("bad:1,2,3")
