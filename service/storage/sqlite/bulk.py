"""Many rows in few SQLite statements.

``executemany`` runs a statement once per row, and each run binds, steps and resets
it, and lets go of the GIL and takes it back. One statement with a VALUES list of up
to 256 rows does the same writes with a fraction of that. The lists come in a few
fixed lengths, so that only a few statement texts are compiled and cached; the last
few rows, and small groups, go through ``executemany``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

ROWS_PER_STATEMENT = (256, 64, 16)  # 256 rows of 17 values: 4,352 parameters


@lru_cache(maxsize=128)
def _statement(template: str, width: int, rows: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return template.replace("{values}", ", ".join([one] * rows))


def write_columns(
    conn: sqlite3.Connection,
    template: str,
    columns: Sequence[Sequence[Any]],
    one_row: str | None = None,
) -> None:
    """Runs ``template``, whose ``{values}`` stands for the VALUES list, over the rows
    given as columns (equal lengths, one per value), in order. Fewer rows than the
    shortest list are written by ``executemany`` of ``one_row`` (default: the template
    with one row)."""
    width, total, done = len(columns), len(columns[0]), 0
    for size in ROWS_PER_STATEMENT:
        if total - done >= size:
            sql = _statement(template, width, size)
            values: list[Any] = [None] * (size * width)
            while total - done >= size:
                for j, column in enumerate(columns):  # interleaved at C speed, no tuples
                    values[j::width] = column[done : done + size]
                conn.execute(sql, values)
                done += size
    if done < total:
        rows = zip(*(column[done:] for column in columns), strict=True)
        conn.executemany(one_row or _statement(template, width, 1), rows)


def write_rows(
    conn: sqlite3.Connection,
    template: str,
    rows: Sequence[Sequence[Any]],
    one_row: str | None = None,
) -> None:
    """As write_columns, for rows (all of one width)."""
    if rows:
        write_columns(conn, template, [list(column) for column in zip(*rows, strict=True)], one_row)
