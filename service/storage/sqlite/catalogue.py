"""SQLite writes of the shop's catalogue (AdminService.UpsertProducts): each product's
category and listing as the shop says, in the writer's transaction (part of SQLiteStore)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from reviewrank.service.domain.values import CatalogueEntry, CatalogueResult, ProductRow
from reviewrank.service.storage.common import CATALOGUE_CURRENT, catalogue_changes, product_row
from reviewrank.service.storage.sqlite.connection import CHUNK_ROWS, SQLiteBase
from reviewrank.service.storage.tables import PRODUCT_COLUMNS


class SQLiteCatalogue(SQLiteBase):
    def _upsert_catalogue(
        self, entries: Sequence[CatalogueEntry], seq: int, touched: dict[str, ProductRow]
    ) -> CatalogueResult:
        """Sets each product's category and listing as the shop says and marks it the
        shop's, creating the products not known yet (no feedback). Takes ``seq`` if
        anything changed."""
        conn = self.conn
        ids = [entry.product_id for entry in entries]
        current: dict[str, tuple[str, int, int, str, str]] = {}
        for start in range(0, len(ids), CHUNK_ROWS):
            chunk = ids[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"{CATALOGUE_CURRENT} WHERE product_id IN ({marks})", chunk)
            current.update((r[0], (r[1], r[2], r[3], r[4], r[5])) for r in rows)
        created, updated, unchanged = catalogue_changes(entries, current)
        if not (created or updated):
            return CatalogueResult(0, 0, unchanged, 0)
        top = largest_idx(conn)
        conn.executemany(
            "INSERT INTO products"
            " (idx, product_id, category, active, owned, more_categories, display, seq)"
            " VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
            [
                (
                    top + i,
                    e.product_id,
                    e.category,
                    int(bool(e.active)),
                    e.more_text,
                    e.display,
                    seq,
                )
                for i, e in enumerate(created, start=1)
            ],
        )
        conn.executemany(
            "UPDATE products SET category = ?, active = ?, owned = 1, more_categories = ?,"
            " display = ?, seq = ? WHERE product_id = ?",
            [
                (e.category, int(bool(e.active)), e.more_text, e.display, seq, e.product_id)
                for e in updated
            ],
        )
        changed = [e.product_id for e in (*created, *updated)]
        for start in range(0, len(changed), CHUNK_ROWS):
            chunk = changed[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id IN ({marks})", chunk
            )
            for row in rows:
                touched[row[1]] = product_row(row)
        return CatalogueResult(len(created), len(updated), unchanged, seq)


def largest_idx(conn: sqlite3.Connection) -> int:
    """The largest idx of a product (0 for none): new ones are numbered on from it."""
    return int(conn.execute("SELECT coalesce(max(idx), 0) FROM products").fetchone()[0])
