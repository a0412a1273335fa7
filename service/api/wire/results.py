"""Hand-written protobuf encoding of the one message on the hot path: a RankResponse
without explanations.

Building 100 RankedProduct messages through the protobuf runtime costs more than the
rest of a Rank call; joining pre-encoded bytes costs a fraction of it. The encoding
is the standard wire format (tests/api/test_wire.py checks it byte for byte against the
protobuf runtime), so clients see no difference.

    RankResponse  = 1: repeated RankedProduct, 2: uint64 weights_version,
                    3: string profile, 4: string next_page_token
    RankedProduct = 1: string product_id, 2: double score
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import overload

import numpy as np
import numpy.typing as npt

from reviewrank.service.api.wire import views as wire_views
from reviewrank.service.api.wire.rank_decode import CandidateBlock


class InOrder(Sequence[str]):
    """Ids taken from a list in a given order, when first read: Rank's response is
    usually built from the candidates' encodings (results_from_candidates) without them."""

    __slots__ = ("_ids", "_items", "_order")

    def __init__(self, ids: Sequence[str], order: npt.NDArray[np.int64]) -> None:
        self._ids, self._order = ids, order
        self._items: list[str] | None = None

    def _list(self) -> list[str]:
        if self._items is None:
            ids = self._ids
            self._items = [ids[i] for i in self._order.tolist()]
        return self._items

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._list()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._list())


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SHORT_ID = 115  # longest id whose RankedProduct lengths fit in one varint byte
# A RankedProduct's first bytes for an id of n bytes (n <= _SHORT_ID).
_SHORT_PREFIX = [bytes([0x0A, n + 11, 0x0A, n]) for n in range(_SHORT_ID + 1)]
_HEADS_KEPT = 1 << 17  # products whose encoded head is kept (about 4 MB)
_heads: dict[str, bytes] = {}


def _result_head(product_id: str) -> bytes:
    """Field 1 tag and length of a RankedProduct, its product_id, and the score's tag."""
    encoded = product_id.encode("utf-8")
    if len(encoded) <= _SHORT_ID:  # both lengths fit in one byte
        return _SHORT_PREFIX[len(encoded)] + encoded + b"\x11"
    body = b"\x0a" + varint(len(encoded)) + encoded + b"\x11"
    return b"\x0a" + varint(len(body) + 8) + body


def _heads_of(product_ids: Sequence[str], heads: list[bytes | None]) -> list[bytes]:
    """Each product's result head, from the ones kept (``heads``, None where not)."""
    if None in heads:
        if len(_heads) >= _HEADS_KEPT:
            _heads.clear()
        for i, head in enumerate(heads):
            if head is None:
                heads[i] = _heads[product_ids[i]] = _result_head(product_ids[i])
    return heads  # type: ignore[return-value]


@lru_cache(maxsize=1 << 12)
def _result_head_without_score(product_id: str) -> bytes:
    """A RankedProduct whose score is +0.0, which proto3 leaves out."""
    encoded = product_id.encode("utf-8")
    body = b"\x0a" + varint(len(encoded)) + encoded
    return b"\x0a" + varint(len(body)) + body


_POSITIVE_ZERO = bytes(8)


def _string_field(tag: bytes, value: str) -> bytes:
    if not value:
        return b""
    encoded = value.encode("utf-8")
    return tag + varint(len(encoded)) + encoded


# From this many results up, when every id is ASCII and short, the whole repeated field
# is built by numpy (a fixed cost of some 20 µs, then almost nothing per result) instead
# of from kept per-product heads: these miss on large catalogues, and building a missing
# one in Python costs several times a kept one's lookup.
BULK_MIN_RESULTS = 200


def _results_in_bulk(product_ids: Sequence[str], raw: npt.NDArray[np.float64]) -> bytes | None:
    """Every RankedProduct of the response, built at once; None unless every id is ASCII
    and at most _SHORT_ID characters and no score is +0.0 (which proto3 leaves out).

    Each result is 0x0a <L + 11> 0x0a <L> <id> 0x11 <score, 8 bytes>, L the id's length.
    """
    joined = "".join(product_ids)
    if not joined.isascii():
        return None
    count = len(product_ids)
    sizes = wire_views.sizes(product_ids)
    if int(sizes.max()) > _SHORT_ID or not raw.all():
        return None
    item = sizes + 13
    start = np.cumsum(item) - item
    out = np.empty(int(start[-1] + item[-1]), dtype=np.uint8)
    out[start] = 0x0A
    out[start + 1] = sizes + 11
    out[start + 2] = 0x0A
    out[start + 3] = sizes
    id_start = np.cumsum(sizes) - sizes
    ids = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    out[np.arange(ids.size) + np.repeat(start + 4 - id_start, sizes)] = ids
    score_tag = start + 4 + sizes
    out[score_tag] = 0x11
    out[(score_tag + 1)[:, None] + np.arange(8)] = raw.view(np.uint8).reshape(count, 8)
    return out.tobytes()


_BYTE_OFFSETS = np.arange(8)


def results_from_candidates(
    block: CandidateBlock, positions: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> bytes | None:
    """The RankedProducts of the candidates at ``positions`` (in that order) with these
    scores, built from the candidates' own encodings: a RankedProduct has a Candidate's
    wire shape, so each is ``0x0a <size>`` and the candidate's bytes with the score in
    place of the relevance (appended, with its tag, when there is none). None when a
    result's size needs two bytes or a score is +0.0 (which proto3 leaves out)."""
    raw = np.ascontiguousarray(scores, dtype="<f8")
    if not raw.all():
        return None
    body = block.result_size[positions]
    if int(body.max()) > 0x7F:
        return None
    item = body + 2
    end = item.cumsum()
    start = end - item
    # Every byte of the output from its candidate's byte at the same place (tags,
    # lengths and scores are written over afterwards; "clip" keeps those reads legal).
    source = np.arange(int(end[-1]), dtype=np.int64)
    source += np.repeat(block.start[positions] - start - 2, item)
    out = block.data.take(source, mode="clip")
    out[start] = 0x0A
    out[start + 1] = body
    out[end - 9] = 0x11  # (already there when the candidate has a relevance)
    out[(end - 8)[:, None] + _BYTE_OFFSETS] = raw.view(np.uint8).reshape(-1, 8)
    return out.tobytes()


def rank_response(
    product_ids: Sequence[str],
    scores: npt.NDArray[np.float64],
    weights_version: int,
    profile: str,
    next_page_token: str = "",
    block: CandidateBlock | None = None,
    positions: npt.NDArray[np.int64] | None = None,
) -> bytes:
    """The serialized RankResponse of results without explanations, in the order given.
    With the request's candidates (``block``) and where each result stands among them
    (``positions``), many results are built from their encodings."""
    count = len(product_ids)
    raw = np.ascontiguousarray(scores, dtype="<f8")
    bulk = None
    if count >= BULK_MIN_RESULTS:
        if block is not None and positions is not None:
            bulk = results_from_candidates(block, positions, raw)
        if bulk is None:
            bulk = _results_in_bulk(product_ids, raw)
    heads: list[bytes | None] = []
    if bulk is None:
        heads = list(map(_heads.get, product_ids))
        # Heads missing with no room left to keep them (a large catalogue): the results
        # are built from the candidates instead, when they can be.
        if (
            None in heads
            and len(_heads) >= _HEADS_KEPT
            and block is not None
            and positions is not None
            and count
        ):
            bulk = results_from_candidates(block, positions, raw)
    if bulk is not None:
        return bulk + _tail(weights_version, profile, next_page_token)
    parts: list[bytes] = [b""] * (2 * count)
    parts[0::2] = _heads_of(product_ids, heads)
    encoded_scores = raw.view("V8").tolist()  # each score's 8 bytes, as one bytes object
    parts[1::2] = encoded_scores
    if _POSITIVE_ZERO in encoded_scores:  # +0.0 exactly: proto3 leaves it out
        for i, encoded in enumerate(encoded_scores):
            if encoded == _POSITIVE_ZERO:
                parts[2 * i] = _result_head_without_score(product_ids[i])
                parts[2 * i + 1] = b""
    parts.append(_tail(weights_version, profile, next_page_token))
    return b"".join(parts)


@lru_cache(maxsize=256)
def _tail(weights_version: int, profile: str, next_page_token: str) -> bytes:
    """RankResponse's fields after the results."""
    version = b"\x10" + varint(weights_version) if weights_version else b""
    return version + _string_field(b"\x1a", profile) + _string_field(b"\x22", next_page_token)
