"""Reads the Women's E-Commerce Clothing Reviews data set shipped in data/.

The CSV (inside a zip) has one row per review: a row index, ``Clothing ID``,
``Rating`` (1-5), ``Recommended IND`` (1/0), the product's ``Class Name``, and the
review's ``Title`` and ``Review Text``.
It has no reviewer ids and no timestamps, so :func:`read_reviews` derives
stable ones from the row index: reviewer ``wcr-<row>`` and a time of
2019-01-01T00:00:00Z plus <row> minutes, keeping the file's order.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reviewrank.service.app.settings import DATA_DIR

REVIEWS_ZIP = DATA_DIR / "womens-clothing-reviews.csv.zip"
BASE_TIME_US = 1_546_300_800 * 1_000_000  # 2019-01-01T00:00:00Z
ROW_SPACING_US = 60 * 1_000_000


@dataclass(frozen=True, slots=True)
class Review:
    row: int
    product_id: str
    category: str
    stars: int
    recommended: bool
    # The review's title and text (either may be empty): the evaluation scores them as a
    # comment's would be (make evaluate); the import does not send them.
    title: str = ""
    text: str = ""

    @property
    def user_id(self) -> str:
        return f"wcr-{self.row}"

    @property
    def occurred_at_us(self) -> int:
        return BASE_TIME_US + self.row * ROW_SPACING_US


def read_reviews(path: Path = REVIEWS_ZIP) -> Iterator[Review]:
    """Yields the reviews in file order; rows without a product or rating are skipped.
    Raises ValueError (one line) for a file that is not the data set's zip."""
    try:
        yield from _read(path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not the reviews data set's CSV zip ({exc})") from exc
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{path}: not the reviews data set's layout (an index column, Clothing ID, "
            f"Rating, Recommended IND, Class Name): {exc!r}; a shop's own data is imported "
            "with `reviewrank import --data FILE` (docs/import.md)"
        ) from exc


def _read(path: Path) -> Iterator[Review]:
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one CSV file in the zip, found {members}")
        with archive.open(members[0]) as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            for record in reader:
                product = (record.get("Clothing ID") or "").strip()
                rating = (record.get("Rating") or "").strip()
                if not product or not rating:
                    continue
                yield Review(
                    row=int(record[""]),
                    product_id=product,
                    category=(record.get("Class Name") or "").strip(),
                    stars=int(rating),
                    recommended=(record.get("Recommended IND") or "").strip() == "1",
                    title=(record.get("Title") or "").strip(),
                    text=(record.get("Review Text") or "").strip(),
                )
