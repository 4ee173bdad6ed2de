"""How a request body becomes a Submission: columns for a well-formed batch, rows otherwise."""

from __future__ import annotations

import json

import pytest

from camcount.counting.ingest import MAX_BATCH_EVENTS, Rejected
from camcount.counting.submission import read_submission
from camcount.errors import InvalidInput


def _body(*events: dict[str, object]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


GOOD = {
    "event_id": "e1",
    "camera_id": 1,
    "count_type": "in",
    "count_value": 2,
    "occurred_at": "2026-12-01T10:00:00Z",
}


def test_a_well_formed_batch_is_read_into_columns() -> None:
    submission = read_submission(_body(GOOD, {**GOOD, "event_id": "e2"}))
    assert submission.columns is not None
    assert submission.columns.event_id == ["e1", "e2"]
    assert (submission.size, submission.storable, submission.too_large) == (2, 2, False)


def test_a_batch_with_a_bad_event_is_read_event_by_event_and_counts_only_the_good_ones() -> None:
    submission = read_submission(_body(GOOD, {**GOOD, "event_id": "e2", "count_value": -1}))
    assert submission.columns is None
    assert isinstance(submission.rows[1], Rejected)
    assert "count_value" in submission.rows[1].reason
    assert (submission.size, submission.storable) == (2, 1)


def test_an_oversized_batch_is_only_sized() -> None:
    events = [{"event_id": f"e{i}", "camera_id": "not a number"} for i in range(MAX_BATCH_EVENTS + 1)]
    submission = read_submission(_body(*events))
    assert submission.too_large
    assert submission.size == MAX_BATCH_EVENTS + 1
    assert submission.rows == ()


@pytest.mark.parametrize(
    ("body", "field"),
    [(b"{not json", "body"), (b'{"events": {}}', "events"), (b"[]", "events"), (b"\xff\xfe", "body")],
)
def test_a_body_that_is_not_a_batch_is_invalid_input(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_submission(body)
    assert caught.value.field == field
