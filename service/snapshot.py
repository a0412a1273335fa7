"""A binary snapshot of the in-memory catalogue, for a fast start on a large catalogue.

Reading a million product rows out of SQLite costs seconds (a Python object per
value); reading the same numbers from a NumPy file costs milliseconds. At a clean
shutdown the server writes ``<database>.catalogue.npz``: every product's aggregates,
id, category and row sequence number, and the catalogue's sequence number. At start-up
it loads the snapshot, checks it against the database (the database must be at or
past the snapshot's sequence number and hold the same products up to it), then reads
only the rows changed since through the change feed's query. The snapshot is a cache:
anything missing, unreadable or inconsistent means a full read of the products table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SEPARATOR = "\x1f"  # ids and categories are printable: they never contain it
FORMAT = 1


@dataclass(frozen=True)
class CatalogueColumns:
    """Every product as columns; categories as codes into ``category_names``."""

    seq: int
    idx: npt.NDArray[np.int64]
    product_ids: list[str]
    category_code: npt.NDArray[np.int32]
    category_names: list[str]
    rating_count: npt.NDArray[np.int64]
    star_sum: npt.NDArray[np.int64]
    histogram: npt.NDArray[np.int64]
    likes: npt.NDArray[np.int64]
    dislikes: npt.NDArray[np.int64]
    row_seq: npt.NDArray[np.int64]


def path_for(database: Path) -> Path:
    return database.with_name(database.name + ".catalogue.npz")


def _text(items: list[str]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(SEPARATOR.join(items).encode("utf-8"), dtype=np.uint8)


def _items(data: npt.NDArray[np.uint8], count: int) -> list[str]:
    if count == 0:
        return []
    items = data.tobytes().decode("utf-8").split(SEPARATOR)
    if len(items) != count:
        raise ValueError("snapshot text does not match its row count")
    return items


def save(columns: CatalogueColumns, path: Path) -> None:
    """Writes the snapshot atomically (a temporary file, then a rename)."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        np.savez(
            out,
            meta=np.array([FORMAT, columns.seq, len(columns.product_ids)], dtype=np.int64),
            idx=columns.idx,
            product_ids=_text(columns.product_ids),
            category_code=columns.category_code,
            category_names=_text(columns.category_names),
            n_categories=np.array([len(columns.category_names)], dtype=np.int64),
            rating_count=columns.rating_count,
            star_sum=columns.star_sum,
            histogram=columns.histogram,
            likes=columns.likes,
            dislikes=columns.dislikes,
            row_seq=columns.row_seq,
        )
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def load(path: Path) -> CatalogueColumns:
    """Reads a snapshot; raises OSError or ValueError if it is missing or damaged."""
    with np.load(path, allow_pickle=False) as data:
        version, seq, count = (int(x) for x in data["meta"])
        if version != FORMAT:
            raise ValueError(f"snapshot format {version}, expected {FORMAT}")
        columns = CatalogueColumns(
            seq=seq,
            idx=data["idx"],
            product_ids=_items(data["product_ids"], count),
            category_code=data["category_code"],
            category_names=_items(data["category_names"], int(data["n_categories"][0])),
            rating_count=data["rating_count"],
            star_sum=data["star_sum"],
            histogram=data["histogram"],
            likes=data["likes"],
            dislikes=data["dislikes"],
            row_seq=data["row_seq"],
        )
    sizes = {columns.idx.size, columns.category_code.size, columns.row_seq.size, count}
    if len(sizes) != 1 or columns.histogram.shape != (count, 5):
        raise ValueError("snapshot columns disagree in length")
    return columns
