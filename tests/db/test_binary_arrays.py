"""The column encoders build exactly what psycopg's own dumpers build, and PostgreSQL reads it back."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from psycopg.adapt import PyFormat, Transformer
from psycopg.types.numeric import Float4, Int4, Int8

from camcount.db import binary_arrays as ba
from camcount.db.pools import Database

RNG = random.Random(7)
TIMES = [
    datetime(2024, 3, 31, 1, 59, 59, 999_999, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),  # before the epoch
    datetime(2026, 12, 5, 10, 30, 1, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
]
CASES: list[tuple[Any, list[Any], str]] = [
    (ba.int8_array, [1, 2**63 - 1, -(2**63), 0, RNG.randrange(2**40)], "int8"),
    (ba.int4_array, [0, 5, 1_000_000, -(2**31), 2**31 - 1], "int4"),
    (ba.float4_array, [0.0, 0.731, 1.0, 0.5], "float4"),
    (ba.float4_array, [None, 0.25, None], "float4"),
    (ba.text_array, ["in", "", "é-ü-😀", "a" * 128, "cam-7:ev-9"], "text"),
    (ba.text_array, ["in", "out", "in", "é", "in", "out", "in", "in", "out"], "text"),
    (ba.timestamptz_array, TIMES, "timestamptz"),
]


# psycopg picks an element type from the Python type: a float dumps as float8 and an int as the
# smallest integer type that holds it, so the wrappers name the type the encoder builds.
_WRAPPERS: dict[str, Any] = {"float4": Float4, "int4": Int4, "int8": Int8}


def _psycopg_bytes(values: list[Any], element: str) -> bytes:
    wrap = _WRAPPERS.get(element)
    if wrap is not None:
        values = [None if v is None else wrap(v) for v in values]
    return bytes(Transformer().get_dumper(values, PyFormat.BINARY).dump(values))


@pytest.mark.parametrize(("encode", "values", "element"), CASES)
def test_the_bytes_are_psycopgs(encode: Any, values: list[Any], element: str) -> None:
    assert bytes(encode(values)) == _psycopg_bytes(values, element)


@pytest.mark.parametrize(("encode", "values", "element"), CASES)
async def test_postgresql_reads_the_values_back(
    db: Database, encode: Any, values: list[Any], element: str
) -> None:
    async with db.owner() as conn:
        cur = await conn.execute(f"SELECT unnest(%(a)b::{element}[])", {"a": encode(values)})
        back = [row[0] for row in await cur.fetchall()]
    if element == "float4":  # float4 keeps about 7 digits of a Python float
        assert back == [None if v is None else pytest.approx(v) for v in values]
    else:
        assert back == values


async def test_an_empty_array_is_read_as_empty(db: Database) -> None:
    async with db.owner() as conn:
        cur = await conn.execute("SELECT cardinality(%(a)b::int8[]), cardinality(%(t)b::text[])",
                                 {"a": ba.int8_array([]), "t": ba.text_array([])})  # fmt: skip
        assert await cur.fetchone() == (0, 0)


def test_text_with_nul_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        ba.text_array(["ok", "bad\x00"])
    with pytest.raises(TypeError):
        ba.timestamptz_array([datetime(2024, 1, 1)])  # noqa: DTZ001 (naive on purpose: its instant is unknown)
