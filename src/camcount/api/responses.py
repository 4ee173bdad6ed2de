"""A JSON answer rendered by msgspec, for the large lists (counts, events) already made of JSON values.

Starlette's ``JSONResponse`` renders with the standard library's ``json.dumps``; for a page of 168
hourly buckets that was most of the time the route spent in Python after its query. msgspec writes
the same values (strings, numbers, booleans, None, lists and dicts, keys in order, non-ASCII as
UTF-8) several times faster; only a float that Python would print with an exponent may come out in
another valid notation (``0.00001`` for ``1e-05``), the same number to any JSON reader.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi.responses import JSONResponse

_ENCODER = msgspec.json.Encoder()


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)
