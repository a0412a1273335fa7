"""The in-memory catalogue applies committed product rows (service/app/catalogue.py,
Catalogue.apply) as applying them one at a time would: a row only if newer than the one
held, of a product named twice in one commit the newest, the columns grown as needed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.store import ProductTable
from reviewrank.service.domain.values import ProductRow
from reviewrank.service.storage.common import product_values


def _row(idx: int, seq: int, n: int, display: str, more: str, active: bool) -> ProductRow:
    return ProductRow(
        idx=idx, product_id=f"p{idx}", category=f"c{n % 3}", rating_count=n, star_sum=3 * n,
        histogram=(n, 0, n, 0, n), likes=n + 1, dislikes=n + 2, seq=seq, active=active,
        more_categories=more, display=display, shares=n + 3, listed_at_us=n + 4,
        comments=n + 5, sentiment_sum=-n, sentiment_squares=n * n, polls_shown=n % 4,
        polls_won=n % 2,
    )  # fmt: skip


rows = st.builds(
    _row,
    st.integers(1, 2_100),  # beyond the first 1,024 rows held
    st.integers(1, 30),
    st.integers(0, 50),
    st.sampled_from(["", '{"name": "x"}']),
    st.sampled_from(["", "tops", "tops\nknits"]),
    st.booleans(),
)
commits = st.lists(st.lists(rows, max_size=12), min_size=1, max_size=6)


def one_at_a_time(commits: list[list[ProductRow]]) -> dict[int, ProductRow]:
    held: dict[int, ProductRow] = {}
    for commit in commits:
        for row in commit:
            if row.idx not in held or row.seq > held[row.idx].seq:
                held[row.idx] = row
    return held


@settings(max_examples=200, deadline=None)
@given(commits=commits)
def test_rows_applied_per_commit_end_as_applied_one_at_a_time(
    commits: list[list[ProductRow]],
) -> None:
    catalogue = Catalogue()
    for seq, commit in enumerate(commits, start=1):
        catalogue.apply(commit, seq)

    assert_holds(catalogue, one_at_a_time(commits))


@settings(max_examples=100, deadline=None)
@given(commits=commits)
def test_rows_read_by_the_change_feed_end_as_applied_one_at_a_time(
    commits: list[list[ProductRow]],
) -> None:
    catalogue = Catalogue()
    for seq, commit in enumerate(commits, start=1):
        read = one_at_a_time([commit]).values()  # (the feed reads a product's row once)
        catalogue.apply_feed(ProductTable.from_rows([product_values(r) for r in read], seq), None)

    assert_holds(catalogue, one_at_a_time(commits))


def assert_holds(catalogue: Catalogue, expected: dict[int, ProductRow]) -> None:
    """The catalogue holds exactly these rows (by idx), every column of them."""
    columns = catalogue.columns()
    held = dict(zip(columns.idx.tolist(), range(len(columns.idx)), strict=True))
    assert sorted(expected) == sorted(held)
    for idx, row in expected.items():
        i = held[idx]
        assert (
            row.product_id, row.rating_count, row.histogram, row.likes, row.dislikes,
            row.shares, row.listed_at_us, row.comments, row.sentiment_sum,
            row.sentiment_squares, row.polls_shown, row.polls_won, row.seq, row.active,
            row.category, row.more_categories, row.display,
        ) == (
            columns.product_ids[i], int(columns.rating_count[i]),
            tuple(columns.histogram[i].tolist()), int(columns.likes[i]),
            int(columns.dislikes[i]), int(columns.shares[i]), int(columns.listed_at_us[i]),
            int(columns.comments[i]), int(columns.sentiment_sum[i]),
            int(columns.sentiment_squares[i]), int(columns.polls_shown[i]),
            int(columns.polls_won[i]), int(columns.row_seq[i]), bool(columns.active[i]),
            columns.category_names[columns.category_code[i]],
            columns.more_categories.get(idx, ""), columns.display.get(idx, ""),
        )  # fmt: skip
    assert list(expected) == catalogue.lookup([f"p{idx}" for idx in expected]).idx.tolist()


def test_a_commit_that_changes_poll_counts_moves_the_poll_generation_once() -> None:
    catalogue = Catalogue()
    catalogue.apply([_row(1, 1, 0, "", "", True), _row(2, 1, 0, "", "", True)], 1)
    before = catalogue.poll_generation

    catalogue.apply([_row(1, 2, 1, "", "", True), _row(2, 2, 2, "", "", True)], 2)

    assert (before + 1, True) == (catalogue.poll_generation, catalogue.polls_changed.is_set())


def test_a_commit_that_leaves_poll_counts_alone_keeps_the_poll_generation() -> None:
    catalogue = Catalogue()
    catalogue.apply([_row(1, 1, 4, "", "", True)], 1)  # (4 % 4, 4 % 2): no poll vote
    catalogue.polls_changed.clear()

    catalogue.apply([_row(1, 2, 8, "", "", True)], 2)

    assert (0, False) == (catalogue.poll_generation, catalogue.polls_changed.is_set())
