"""Row-level SQL for the tenant resource tables (sites, cameras, users, api_keys).

The few statements every resource repeats, once: insert a row, read one by id, a keyset page
(``WHERE id > after ORDER BY id LIMIT n``), change some columns, delete by id. Each helper takes
the connection of a tenant-scoped transaction (:func:`camcount.db.scope.tenant_transaction`) and
never sets tenant context itself: RLS confines every statement to the caller's tenant.

SQL is composed with :mod:`psycopg.sql`: table and column names through :class:`sql.Identifier`,
values always as parameters. A missing row (or another tenant's, which RLS hides) raises
:class:`NotFound` named after ``what`` (``"site 7 not found"``): the two are never told apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from camcount.errors import NotFound

Row = tuple[Any, ...]
NOW = sql.SQL("now()")
"""A value for :func:`update_row`: the transaction's timestamp (``updated_at``)."""


@dataclass(frozen=True)
class Filter:
    """One condition of a list query: SQL with ``%s`` placeholders, and their parameters."""

    clause: sql.Composable
    params: tuple[object, ...] = ()


def equals(column: str, value: object | None) -> Filter | None:
    """``column = value``; None (nothing asked for) filters nothing."""
    if value is None:
        return None
    return Filter(sql.SQL("{} = %s").format(sql.Identifier(column)), (value,))


def any_of(column: str, values: Sequence[object] | None) -> Filter | None:
    """``column`` is one of ``values``; None filters nothing (an empty list matches nothing)."""
    if values is None:
        return None
    return Filter(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)), (list(values),))


def is_set(column: str, wanted: bool | None) -> Filter | None:
    """``column IS NOT NULL`` (True) or ``IS NULL`` (False); None filters nothing."""
    if wanted is None:
        return None
    test = sql.SQL("IS NOT NULL" if wanted else "IS NULL")
    return Filter(sql.SQL("{} {}").format(sql.Identifier(column), test))


def columns_of(record: type[Any]) -> tuple[str, ...]:
    """The columns a record dataclass is built from: its field names, in order."""
    return tuple(field.name for field in dataclasses.fields(record))


def identifiers(columns: Iterable[str]) -> sql.Composed:
    """``"a", "b", "c"``: a select or returning list."""
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def select_by_id(*, table: str, columns: Sequence[str]) -> sql.Composed:
    """``SELECT columns FROM table WHERE id = %s``, for callers that send it themselves."""
    return sql.SQL("SELECT {} FROM {} WHERE id = %s").format(identifiers(columns), sql.Identifier(table))


async def insert_row(
    conn: AsyncConnection, *, table: str, values: Mapping[str, object], returning: Sequence[str]
) -> Row:
    """Insert one row (``values``: column to value, ``tenant_id`` included); its ``returning`` columns."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
        sql.Identifier(table),
        identifiers(values),
        sql.SQL(", ").join(sql.Placeholder() for _ in values),
        identifiers(returning),
    )
    cur = await conn.execute(query, tuple(values.values()))
    row = await cur.fetchone()
    assert row is not None
    return row


async def fetch_row(
    conn: AsyncConnection, *, table: str, columns: Sequence[str], id: int, what: str, lock: bool = False
) -> Row:
    """The row with this id (``lock``: ``FOR UPDATE``), or :class:`NotFound`."""
    query = select_by_id(table=table, columns=columns)
    if lock:
        query += sql.SQL(" FOR UPDATE")
    cur = await conn.execute(query, (id,))
    return _found(await cur.fetchone(), what=what, id=id)


async def fetch_page(
    conn: AsyncConnection,
    *,
    table: str,
    columns: Sequence[str],
    after_id: int,
    limit: int,
    filters: Iterable[Filter | None] = (),
) -> list[Row]:
    """Up to ``limit`` rows with an id above ``after_id``, in id order, matching every filter."""
    given = [f for f in filters if f is not None]
    conditions = [sql.SQL("id > %s"), *(f.clause for f in given)]
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id LIMIT %s").format(
        identifiers(columns), sql.Identifier(table), sql.SQL(" AND ").join(conditions)
    )
    cur = await conn.execute(query, (after_id, *(p for f in given for p in f.params), limit))
    return await cur.fetchall()


async def update_row(
    conn: AsyncConnection,
    *,
    table: str,
    id: int,
    changes: Mapping[str, object | None],
    returning: Sequence[str],
    what: str,
) -> Row:
    """Set the columns whose new value is not None; the changed row, or :class:`NotFound`.

    A value that is SQL (:data:`NOW`, ``sql.SQL("coalesce(revoked_at, now())")``) is written as
    an expression; any other value is a parameter. At least one value must be given.
    """
    assignments: list[sql.Composable] = []
    params: list[object] = []
    for column, value in changes.items():
        if value is None:
            continue
        if not isinstance(value, sql.Composable):
            params.append(value)
            value = sql.Placeholder()
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(column), value))
    query = sql.SQL("UPDATE {} SET {} WHERE id = %s RETURNING {}").format(
        sql.Identifier(table), sql.SQL(", ").join(assignments), identifiers(returning)
    )
    cur = await conn.execute(query, (*params, id))
    return _found(await cur.fetchone(), what=what, id=id)


async def delete_row(
    conn: AsyncConnection, *, table: str, id: int, what: str, returning: Sequence[str] = ("id",)
) -> Row:
    """Delete the row with this id; its ``returning`` columns, or :class:`NotFound`."""
    query = sql.SQL("DELETE FROM {} WHERE id = %s RETURNING {}").format(
        sql.Identifier(table), identifiers(returning)
    )
    cur = await conn.execute(query, (id,))
    return _found(await cur.fetchone(), what=what, id=id)


def _found(row: Row | None, *, what: str, id: int) -> Row:
    if row is None:
        raise NotFound(f"{what} {id} not found")
    return row
