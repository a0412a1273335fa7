"""The product id index (service/app/id_index.py): its hash table finds exactly what a dict
would, with or without the ids' bytes, through collisions, full buckets and growth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.app.id_index import SLOTS, IdIndex, _same_bytes, _words, encode

ids_text = st.text(min_size=1, max_size=40)  # (lone surrogates included)


def _index(held: dict[str, int], table_from: int) -> IdIndex:
    index = IdIndex(table_from)
    index.replace(list(held), np.array(list(held.values()), dtype=np.int64))
    return index


def _expected(held: dict[str, int], asked: list[str]) -> list[int]:
    return [held.get(i, 0) for i in asked]


@settings(max_examples=200, deadline=None)
@given(
    stored=st.lists(ids_text, unique=True, max_size=60),
    others=st.lists(ids_text, max_size=30),
    table_from=st.sampled_from([1, 10**9]),
    seed=st.integers(0, 2**32 - 1),
)
def test_rows_are_a_dicts_answer_with_and_without_the_ids_bytes(
    stored: list[str], others: list[str], table_from: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.choice(np.arange(1, 10 * len(stored) + 2), size=len(stored), replace=False)
    held = dict(zip(stored, rows.tolist(), strict=True))
    # Asked: some held, some not, some held ids with a byte more or less.
    near = [s[:-1] for s in stored if len(s) > 1] + [s + "x" for s in stored[:5]]
    asked = list(dict.fromkeys([*stored[::2], *others, *near]))
    rng.shuffle(asked)  # type: ignore[arg-type]
    index = _index(held, table_from)
    expected = _expected(held, asked)
    assert expected == index.rows(asked).tolist()
    assert expected == index.rows(asked, encode(asked)).tolist()
    assert expected == [index.get(i) for i in asked]


def test_a_large_table_finds_every_id_including_those_past_a_full_bucket() -> None:
    held = {f"product-{i}": 3 * i + 1 for i in range(40_000)}
    index = _index(held, 1)
    table = index._table
    assert table is not None
    # At this size some buckets are full (their ids overflow into the next bucket).
    assert 0 < int(np.count_nonzero(table._slots[:, SLOTS - 1]))
    asked = [*held, *(f"product-{i}" for i in range(40_000, 41_000))]
    assert _expected(held, asked) == index.rows(asked, encode(asked)).tolist()


def test_an_id_sharing_another_ids_slot_tag_is_still_told_apart_by_its_bytes() -> None:
    held = {"alpha": 1, "beta": 2}
    index = _index(held, 1)
    table = index._table
    assert table is not None
    # Make "gamma" (not held) look like "beta" to the hash table: a slot with gamma's
    # tag pointing at beta's row, ahead of everything in gamma's bucket.
    tag = (hash("gamma") | (1 << 32)) & -(1 << 32)
    bucket = hash("gamma") & table._mask
    table._slots[bucket] = np.roll(table._slots[bucket], 1)
    table._slots[bucket, 0] = tag | 2
    asked = ["gamma", "beta", "alpha"]
    assert [0, 2, 1] == index.rows(asked, encode(asked)).tolist()
    assert [0, 2, 1] == index.rows(asked).tolist()


def test_adding_ids_one_by_one_moves_to_the_table_and_keeps_growing_it() -> None:
    index = IdIndex(table_from=100)
    held: dict[str, int] = {}
    for i in range(2_000):
        product_id = f"p{i}-é" if i % 7 == 0 else f"p{i}"
        held[product_id] = i + 1
        index.add(product_id, i + 1)
        if i == 98:
            assert not index.uses_table
    assert index.uses_table
    assert len(held) == len(index)
    asked = [*held, "p-nope", "p1-é"]
    assert _expected(held, asked) == index.rows(asked, encode(asked)).tolist()
    assert list(held.values()) == index.used_rows().tolist()
    assert "p8" == index.ids[9]


def test_adding_an_id_already_held_at_that_row_changes_nothing() -> None:
    index = _index({"a": 1, "b": 2}, 1)
    index.add("a", 1)
    assert 2 == len(index)
    assert [1, 2] == index.rows(["a", "b"]).tolist()


def test_replacing_the_index_forgets_the_ids_held_before() -> None:
    index = _index({"a": 1, "b": 2}, 1)
    index.replace(["c"], np.array([5], dtype=np.int64))
    assert [0, 0, 5] == index.rows(["a", "b", "c"], encode(["a", "b", "c"])).tolist()
    assert ["", "", "", "", "", "c"] == index.ids


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.binary(max_size=30), st.binary(max_size=30)), max_size=20))
def test_comparing_bytes_eight_at_a_time_equals_comparing_them_whole(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    # Each pair cut to the shorter length: same-length strings, equal or not.
    firsts = [a[: min(len(a), len(b))] for a, b in pairs]
    seconds = [b[: min(len(a), len(b))] for a, b in pairs]
    a, b = _joined(firsts), _joined(seconds)
    longest = max(map(len, seconds), default=0)
    b_words = _words(np.concatenate([b[0], np.zeros(longest, np.uint8)]))
    same = _same_bytes(_words(a[0]), a[1], b_words, b[1], a[2], longest)
    assert [x == y for x, y in zip(firsts, seconds, strict=True)] == same.tolist()


def _joined(items: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = np.array([len(i) for i in items], dtype=np.int64)
    data = np.frombuffer(b"".join(items) + bytes(8), dtype=np.uint8)
    return data, (length.cumsum() - length).astype(np.int64), length


@pytest.mark.parametrize("table_from", [1, 10**9])
def test_an_empty_index_finds_nothing(table_from: int) -> None:
    index = _index({}, table_from)
    assert [0, 0] == index.rows(["a", "b"], encode(["a", "b"])).tolist()
    assert 0 == len(index)
