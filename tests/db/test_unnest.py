"""unnest_params: rows to one list per column, for a statement that unnests them."""

from __future__ import annotations

import pytest

from camcount.db.pools import Database
from camcount.db.unnest import unnest_params


def test_rows_become_named_columns() -> None:
    assert unnest_params([(1, "a"), (2, "b")], "ids", "names") == {"ids": [1, 2], "names": ["a", "b"]}
    assert unnest_params([], "ids", "names") == {"ids": [], "names": []}
    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        unnest_params([(1,)], "ids", "names")


async def test_postgresql_reads_them_back_as_the_rows(db: Database) -> None:
    rows = [(3, "x"), (1, "ünï")]
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT * FROM unnest(%(ids)s::int8[], %(names)s::text[]) AS n (id, name)",
            unnest_params(rows, "ids", "names"),
        )
        assert await cur.fetchall() == rows
