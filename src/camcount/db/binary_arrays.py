"""One-dimensional arrays as binary query parameters, encoded a whole column at a time.

psycopg dumps a list parameter element by element in Python (a dumper call, a length and two
appends per element). For the ingestion statement's seven 1,000-element arrays that was 1.3 ms per
batch, the largest single cost in the API process (``bench/RESULTS.md``, Ingestion). The encoders
here build the same bytes, PostgreSQL's binary array format (a header, one dimension, then each
element as a length and its binary value), with one ``struct`` call or one ``join`` per array, so
no Python code runs per element. ``tests/db/test_binary_arrays.py`` checks them byte for byte
against psycopg's own dumpers.

The results are ``bytes`` subclasses whose registered dumper passes them through with the array
type's oid: ``%(ids)b`` in a query then reaches the server as an ``int8[]``.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from typing import ClassVar, cast

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Type oids (pg_type): element and array.
_INT4, _INT4_ARRAY = 23, 1007
_INT8, _INT8_ARRAY = 20, 1016
_FLOAT4, _FLOAT4_ARRAY = 700, 1021
_TEXT, _TEXT_ARRAY = 25, 1009
_TIMESTAMPTZ, _TIMESTAMPTZ_ARRAY = 1184, 1185

_HEAD = struct.Struct("!iiIii")  # dimensions (1), has nulls, element oid, length, lower bound (1)
_LENGTH = struct.Struct("!i")
_NULL = -1  # an element's length when it is NULL
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # binary timestamptz: microseconds since then
_MICROSECOND = timedelta(microseconds=1)


class BinaryArray(bytes):
    """A one-dimensional array already in PostgreSQL's binary format; subclasses name its type."""

    oid: ClassVar[int]


class Int4Array(BinaryArray):
    oid = _INT4_ARRAY


class Int8Array(BinaryArray):
    oid = _INT8_ARRAY


class Float4Array(BinaryArray):
    oid = _FLOAT4_ARRAY


class TextArray(BinaryArray):
    oid = _TEXT_ARRAY


class TimestamptzArray(BinaryArray):
    oid = _TIMESTAMPTZ_ARRAY


def _head(has_null: bool, element_oid: int, length: int) -> bytes:
    # An empty array has no dimensions at all in PostgreSQL's format.
    if not length:
        return struct.pack("!iiI", 0, 0, element_oid)
    return _HEAD.pack(1, int(has_null), element_oid, length, 1)


def _fixed_width(values: Sequence[int | float], code: str, width: int) -> bytes:
    """Elements of one fixed width, none NULL: (width, value) pairs in a single pack."""
    items: list[int | float] = [width] * (2 * len(values))
    items[1::2] = values
    return struct.pack("!" + ("i" + code) * len(values), *items)


def int4_array(values: Sequence[int]) -> Int4Array:
    return Int4Array(_head(False, _INT4, len(values)) + _fixed_width(values, "i", 4))


def int8_array(values: Sequence[int]) -> Int8Array:
    return Int8Array(_head(False, _INT8, len(values)) + _fixed_width(values, "q", 8))


def float4_array(values: Sequence[float | None]) -> Float4Array:
    if None not in values:
        present = cast("Sequence[float]", values)
        return Float4Array(_head(False, _FLOAT4, len(values)) + _fixed_width(present, "f", 4))
    # Rare on the hot path (devices send a confidence): element by element.
    parts = [_LENGTH.pack(_NULL) if v is None else struct.pack("!if", 4, v) for v in values]
    return Float4Array(_head(True, _FLOAT4, len(values)) + b"".join(parts))


def _text_cell(value: str) -> bytes:
    encoded = value.encode()
    return _LENGTH.pack(len(encoded)) + encoded


def text_array(values: Sequence[str]) -> TextArray:
    if "\x00" in "".join(values):
        raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
    distinct = set(values)
    if len(distinct) * 4 <= len(values):  # few values, many times (count_type): encode each once
        cells = {value: _text_cell(value) for value in distinct}
        body = b"".join(map(cells.__getitem__, values))
    else:
        encoded = [value.encode() for value in values]
        body = b"".join(chain.from_iterable(zip(map(_LENGTH.pack, map(len, encoded)), encoded, strict=True)))
    return TextArray(_head(False, _TEXT, len(values)) + body)


def timestamptz_array(values: Sequence[datetime]) -> TimestamptzArray:
    """Timezone-aware datetimes (a naive one raises TypeError: its instant is unknown)."""
    micros = list(map(operator.floordiv, map(operator.sub, values, repeat(_PG_EPOCH)), repeat(_MICROSECOND)))
    return TimestamptzArray(_head(False, _TIMESTAMPTZ, len(values)) + _fixed_width(micros, "q", 8))


class _PassThroughDumper(Dumper):
    """Sends a :class:`BinaryArray` as it is, typed by its class."""

    format = Format.BINARY

    def __init__(self, cls: type, context: psycopg.abc.AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.oid  # type: ignore[attr-defined]

    def dump(self, obj: object) -> bytes:
        assert isinstance(obj, BinaryArray)
        return obj


for _cls in (Int4Array, Int8Array, Float4Array, TextArray, TimestamptzArray):
    psycopg.adapters.register_dumper(_cls, _PassThroughDumper)
