"""Synthetic catalogues for benchmarks, drawn from the real reviews' distributions.

Each synthetic product copies a randomly drawn real product's category and number of
reviews, and draws its star histogram from a multinomial with that real product's
star shares (so counts, long tail, means and categories follow the data set); likes
and dislikes follow its recommend share. Rows are written straight into the products
table of a fresh database (aggregates only, no individual votes): enough for ranking
benchmarks, not for recount checks.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from reviewrank.service.cli.dataset import REVIEWS_ZIP, read_reviews
from reviewrank.service.storage.sqlite.store import SQLiteStore


def real_products(path: Path = REVIEWS_ZIP) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(histograms (n, 5), recommend shares (n,), categories) of the real products."""
    histograms: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5))
    recommended: dict[str, int] = defaultdict(int)
    category: dict[str, str] = {}
    for review in read_reviews(path):
        histograms[review.product_id][review.stars - 1] += 1
        recommended[review.product_id] += review.recommended
        if review.category:
            category[review.product_id] = review.category
    ids = sorted(histograms)
    h = np.array([histograms[p] for p in ids])
    share = np.array([recommended[p] for p in ids]) / h.sum(axis=1)
    return h, share, [category.get(p, "") for p in ids]


def write_catalogue(database: Path, products: int, seed: int = 0, batch: int = 100_000) -> None:
    """Creates ``database`` holding ``products`` synthetic products (ids ``syn-<i>``)."""
    histograms, shares, categories = real_products()
    rng = np.random.default_rng(seed)
    store = SQLiteStore(database, synchronous="OFF")
    try:
        conn = store.conn
        conn.execute("BEGIN")
        for start in range(0, products, batch):
            n = min(batch, products - start)
            pick = rng.integers(0, histograms.shape[0], size=n)
            counts = histograms[pick].sum(axis=1).astype(np.int64)
            probabilities = histograms[pick] / counts[:, None]
            drawn = rng.multinomial(counts, probabilities)
            likes = rng.binomial(counts, shares[pick])
            star_sum = drawn @ np.arange(1, 6)
            rows = [
                (
                    f"syn-{start + i}",
                    categories[pick[i]],
                    int(counts[i]),
                    int(star_sum[i]),
                    *(int(x) for x in drawn[i]),
                    int(likes[i]),
                    int(counts[i] - likes[i]),
                    1,
                )
                for i in range(n)
            ]
            conn.executemany(
                "INSERT INTO products (product_id, category, rating_count, star_sum,"
                " s1, s2, s3, s4, s5, likes, dislikes, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'seq'")
        conn.execute("COMMIT")
    finally:
        store.close()
