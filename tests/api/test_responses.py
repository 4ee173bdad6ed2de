"""FastJSONResponse renders the JSON that Starlette's JSONResponse renders."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from camcount.api.responses import FastJSONResponse

COUNTS_PAGE = {
    "items": [
        {"id": "camera:7@2026-03-29T03:00:00+02:00[Europe/Paris]", "bucket": "2026-03-29T03:00:00+02:00",
         "timezone": "Europe/Paris", "camera_id": 7, "counts": {"in": 3, "out": 1}, "total": 4, "events": 4,
         "avg_confidence": 0.8125, "in": 3, "out": 1, "net": 2},
        {"site": "Zürich – Hauptbahnhof ☃", "flags": [True, False, None], "big": 2**62, "negative": -17},
    ],
    "next_cursor": "WyIyMDI2LTAzLTI5VDAxOjAwOjAwKzAxOjAwIl0",
}  # fmt: skip


def test_a_page_of_counts_is_the_same_bytes() -> None:
    assert FastJSONResponse(COUNTS_PAGE).body == JSONResponse(COUNTS_PAGE).body
    assert FastJSONResponse({"items": [], "next_cursor": None}).body == b'{"items":[],"next_cursor":null}'


@pytest.mark.parametrize("number", [1e-05, 5e-324, 1e16, 1e22, 0.1 + 0.2, 123456789.123, -0.0])
def test_a_float_reads_back_as_the_same_number(number: float) -> None:
    # An exponent may be written differently (0.00001 for 1e-05): the same number to a reader.
    content: Any = {"value": number}
    assert json.loads(FastJSONResponse(content).body) == json.loads(JSONResponse(content).body) == content
