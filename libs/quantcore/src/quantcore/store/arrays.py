"""Query results straight into NumPy columns, packed per group in SQL.

Scanners read hundreds of thousands of numbers per cycle (1.8 M heatmap levels for 500 coins
× 9 timeframes). One Python object per value costs seconds, and so does one protocol message
per row (COPY TO sends a message per row). So the SQL packs each group's values into one
bytea per column — `string_agg(float8send(x), ''::bytea ORDER BY …)` (see `packed`) — and a
few thousand rows come back, each unpacked with `np.frombuffer`.

A query for `fetch_packed` returns, per row: the integer key columns, then one packed bytea
per value column, all of the same element count. NULLs must be coalesced away in SQL
(string_agg would skip them and shift everything after).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from psycopg import AsyncConnection

ColumnType = Literal["int4", "int8", "float8"]
_WIRE = {"int4": ">i4", "int8": ">i8", "float8": ">f8"}


def packed(expr: str, kind: ColumnType, order_by: str | None) -> str:
    """SQL aggregating `expr` of a group into one big-endian bytea (NULL becomes NaN / 0).
    Without `order_by` the values keep the order the rows are read in (e.g. an index's)."""
    zero = "'NaN'" if kind == "float8" else "0"
    order = f" ORDER BY {order_by}" if order_by else ""
    return f"string_agg({kind}send(coalesce(({expr})::{kind}, {zero})), ''::bytea{order})"


async def fetch_packed(
    conn: AsyncConnection[Any],
    query: str,
    params: Sequence[Any] | dict[str, Any] | None,
    keys: Sequence[str],
    columns: Sequence[tuple[str, ColumnType]],
) -> dict[str, NDArray[Any]]:
    """Run `query` → flat arrays: each key repeated for its group's elements, each column
    concatenated over the groups (in row order)."""
    async with conn.cursor(binary=True) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return unpack(rows, keys, columns)


def unpack(
    rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: Sequence[tuple[str, ColumnType]]
) -> dict[str, NDArray[Any]]:
    nk = len(keys)
    out: dict[str, NDArray[Any]] = {}
    first = columns[0]
    blobs = [bytes(r[nk] or b"") for r in rows]
    width = np.dtype(_WIRE[first[1]]).itemsize
    counts = np.array([len(b) // width for b in blobs], dtype=np.int64)
    for k, name in enumerate(keys):
        out[name] = np.repeat(np.array([r[k] for r in rows], dtype=np.int64), counts)
    for j, (name, kind) in enumerate(columns):
        data = b"".join(bytes(r[nk + j] or b"") for r in rows)
        arr = np.frombuffer(data, dtype=_WIRE[kind]).astype(_WIRE[kind][1:])
        if arr.size != counts.sum():
            raise ValueError(f"column {name}: {arr.size} values for {counts.sum()} elements")
        out[name] = arr
    return out


# --- the other way: NumPy columns → binary COPY --------------------------------------------------

CopyType = Literal["int2", "int4", "int8", "float8"]
_COPY_WIRE = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8"}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def copy_binary(columns: Sequence[tuple[CopyType, ArrayLike]]) -> bytes:
    """A whole COPY … FROM STDIN (FORMAT BINARY) payload from equally long NumPy columns of
    fixed-width types, built as one structured array (no Python object per value). No NULLs:
    use NaN (or a sentinel) and turn it into NULL in SQL."""
    arrays = [np.asarray(a) for _, a in columns]
    n = int(arrays[0].size) if arrays else 0
    if any(a.size != n for a in arrays):
        raise ValueError("copy_binary: columns of different lengths")
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for j, (kind, _) in enumerate(columns):
        fields += [(f"len{j}", ">i4"), (f"val{j}", _COPY_WIRE[kind])]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for j, ((kind, _), a) in enumerate(zip(columns, arrays, strict=True)):
        rows[f"len{j}"] = np.dtype(_COPY_WIRE[kind]).itemsize
        rows[f"val{j}"] = a
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER
