"""SQLite writes of the shop's catalogue (AdminService.UpsertProducts): each product's
category and listing as the shop says, in the writer's transaction (part of SQLiteStore)."""

from __future__ import annotations

from collections.abc import Sequence

from reviewrank.service.domain.values import CatalogueEntry, CatalogueResult, ProductRow
from reviewrank.service.storage.common import catalogue_changes, catalogue_values, product_values
from reviewrank.service.storage.sqlite.bulk import write_rows
from reviewrank.service.storage.sqlite.connection import NEW_PRODUCTS, SQLiteBase, largest_idx

_SET_CATALOGUE = """
UPDATE products SET category = ?, active = ?, owned = 1, more_categories = ?, display = ?,
    seq = ?
WHERE idx = ?
"""


class SQLiteCatalogue(SQLiteBase):
    def _upsert_catalogue(
        self,
        entries: Sequence[CatalogueEntry],
        seq: int,
        touched: dict[str, ProductRow],
        now_us: int,
    ) -> CatalogueResult:
        """Sets each product's category and listing as the shop says and marks it the
        shop's, creating the products not known yet (no feedback). Takes ``seq`` if
        anything changed."""
        conn = self.conn
        known = self._product_rows((entry.product_id for entry in entries), touched)
        current = {p: row for p, row in known.items() if row is not None}
        created, updated, unchanged = catalogue_changes(
            entries, current, largest_idx(conn) + 1, seq, now_us
        )
        if not (created or updated):
            return CatalogueResult(0, 0, unchanged, 0)
        write_rows(conn, NEW_PRODUCTS, [product_values(row) for row in created])
        conn.executemany(
            _SET_CATALOGUE,
            [catalogue_values(row) for row in updated],
        )
        touched.update((row.product_id, row) for row in (*created, *updated))
        return CatalogueResult(len(created), len(updated), unchanged, seq)
