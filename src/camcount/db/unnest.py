"""Many rows in one statement: rows turned into one list per column, for ``unnest``.

A statement such as ``INSERT ... SELECT ... FROM unnest(%(a)s::int8[], %(b)s::text[]) AS n (a, b)``
writes any number of rows in one round trip, with the values as parameters; this builds its
parameters from the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def unnest_params(rows: Iterable[Sequence[Any]], *names: str) -> dict[str, list[Any]]:
    """``{name: [row[i] for row in rows]}`` for each column ``i`` named in ``names``."""
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        if len(row) != len(names):
            raise ValueError(f"a row of {len(row)} values for {len(names)} columns")
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return dict(zip(names, columns, strict=True))
