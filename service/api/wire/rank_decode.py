"""Decoding a RankRequest's candidates in bulk: the other half of Rank's hot path.

The protobuf runtime hands out repeated sub-messages one Python object at a time, and
reading two fields from each costs about half a microsecond per candidate: more than
the ranking itself. Here the C parser does the work, with two *views* of the wire
format (service/api/wire/views.py):

1. RankRequest with ``candidates`` as ``bytes``: each candidate's encoding, as is;
2. those encodings joined and parsed as one ``{repeated string product_id = 1;
   repeated double relevance = 2}``: every id and every relevance, in order.

The ids and relevances line up with the candidates when every candidate is encoded
the way every protobuf library writes it, which numpy checks for all at once::

    0x0a <id length, < 128> <id, UTF-8>  0x11 <relevance, 8 bytes>

or without the relevance part, which proto3 leaves out when it is 0.0. Any other
encoding (fields in another order or repeated, unknown fields, long ids) falls back to
the protobuf runtime, so the result never differs from it (tests/api/test_rank_decode.py
compares the two).

The joined encodings are kept (:class:`CandidateBlock`): a RankedProduct has a
Candidate's wire shape (string 1, double 2), so service/api/wire/results.py builds the results
from them, scores in place of relevances, without encoding any id again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from reviewrank.service.api.wire import views as wire_views
from reviewrank.service.app.id_index import PADDING, EncodedIds
from reviewrank.service.domain.errors import InvalidArgument, too_many_items
from reviewrank.v1 import ranking_pb2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_ID_TAG = 0x0A  # field 1, length-delimited
_RELEVANCE_TAG = 0x11  # field 2, 8 bytes
_RELEVANCE_SIZE = 9  # its tag and value
_PADDING = bytes(PADDING)  # after the candidates' bytes, for eight-byte reads of the ids
# Below this many candidates the bulk path's fixed cost (a dozen numpy calls) is more
# than reading them one by one (measured: equal near 70).
BULK_MIN_CANDIDATES = 80


def _request_view(message: descriptor_pb2.DescriptorProto) -> None:
    """RankRequest with its candidates as their encodings."""
    [candidates] = [f for f in message.field if f.name == "candidates"]
    wire_views.as_bytes(candidates)
    if any(f.type_name for f in message.field):
        raise RuntimeError("RankRequest gained a message field: extend the view")


_View, _Columns = wire_views.view_classes(
    "rank_views.proto",
    {
        "RankRequestView": (ranking_pb2.RankRequest.DESCRIPTOR, _request_view),
        "CandidateColumns": (ranking_pb2.Candidate.DESCRIPTOR, wire_views.columns),
    },
)


class CandidateBlock(NamedTuple):  # (one per call: a tuple is quicker to make)
    """Every candidate's encoding, joined, checked to be ``0x0a <id length> <id>`` then
    ``0x11 <relevance>`` or nothing; each starts at ``start`` and is ``size`` bytes
    long, and ``result_size`` long once it has a relevance (a score, in a result)."""

    data: npt.NDArray[np.uint8]  # (then PADDING zero bytes)
    start: IntArray
    size: IntArray
    id_size: IntArray  # each id's length in bytes
    result_size: IntArray  # size, plus the relevance field's 9 bytes where it has none

    def encoded_ids(self) -> EncodedIds:
        """The ids' bytes, where they are (after each candidate's tag and length)."""
        return EncodedIds(self.data, self.start + 2, self.id_size)


class RankInput(NamedTuple):  # (one per call: a tuple is quicker to make)
    """A decoded RankRequest: its candidates as two columns, and the message itself for
    the other fields (a view of it when the fast path decoded the candidates, which
    also keeps their encodings in ``block``)."""

    message: Any  # limit, profile, explain, user_id, min_seq
    product_ids: list[str]
    relevance: FloatArray
    block: CandidateBlock | None = None
    columnar: bool = False  # sent as candidate_ids and candidate_relevances

    @property
    def encoded_ids(self) -> EncodedIds | None:
        """The ids' bytes when the fast path kept them (quicker catalogue lookups)."""
        return None if self.block is None else self.block.encoded_ids()


class RankRequestDecoder:
    """Decodes Rank's requests (raising DecodeError as the runtime would, and
    InvalidArgument for more than ``max_candidates`` candidates, before reading any: a
    request of tiny candidates may hold a million). ``DESCRIPTOR`` is RankRequest's:
    what an undecodable request is explained against."""

    DESCRIPTOR = ranking_pb2.RankRequest.DESCRIPTOR

    def __init__(self, max_candidates: int | None = None) -> None:
        self._most = max_candidates

    def decode(self, data: bytes) -> RankInput:
        view = _View.FromString(data)
        count = len(view.candidates)
        if view.candidate_ids or view.candidate_relevances:
            return self._columns(view, count)
        if self._most is not None and count > self._most:
            raise InvalidArgument([("candidates", too_many_items(self._most, count))])
        if count >= BULK_MIN_CANDIDATES:
            fast = split_candidates(list(view.candidates))
            if fast is not None:
                return RankInput(view, *fast)
        # Raises for what the runtime refuses (bad UTF-8 in an id), as without the view.
        message = ranking_pb2.RankRequest.FromString(data)
        return from_message(message)

    def _columns(self, view: Any, candidates: int) -> RankInput:
        """A request sent in columns, decoded by the protobuf runtime."""
        if candidates:
            column = "candidate_ids" if view.candidate_ids else "candidate_relevances"
            raise InvalidArgument(
                [(column, "send the candidates either as candidates or as columns")]
            )
        count = len(view.candidate_ids)
        if self._most is not None and count > self._most:
            raise InvalidArgument([("candidate_ids", too_many_items(self._most, count))])
        if len(view.candidate_relevances) != count:
            problem = f"{len(view.candidate_relevances)} relevances for {count} ids"
            raise InvalidArgument([("candidate_relevances", problem)])
        ids: list[str] = list(view.candidate_ids)
        relevance = np.array(view.candidate_relevances, dtype=np.float64)
        return RankInput(view, ids, relevance, None, True)


def from_message(message: ranking_pb2.RankRequest) -> RankInput:
    """The candidates of a parsed RankRequest, read one by one."""
    ids: list[str] = []
    relevance: list[float] = []
    add_id, add_relevance = ids.append, relevance.append
    for candidate in message.candidates:  # one pass: each element access costs
        add_id(candidate.product_id)
        add_relevance(candidate.relevance)
    return RankInput(message, ids, np.array(relevance, dtype=np.float64))


def split_candidates(
    encoded: Sequence[bytes],
) -> tuple[list[str], FloatArray, CandidateBlock] | None:
    """Ids and relevances of candidates encoded as in the module docstring, and their
    encodings; None when any is encoded otherwise."""
    n = len(encoded)
    if n == 0:
        return None
    blob = b"".join(encoded)
    try:
        columns = _Columns.FromString(blob)
    except DecodeError:  # e.g. an id that is not UTF-8: the runtime names it
        return None
    ids: list[str] = list(columns.product_id)
    if len(ids) != n:
        return None
    given = len(columns.relevance)
    size = wire_views.sizes(encoded)
    start = size.cumsum()
    start -= size
    data = np.frombuffer(blob + _PADDING, dtype=np.uint8)
    # "clip": a candidate too short to hold the bytes read fails the tests anyway.
    if given in (n, 0):
        # Each candidate must start with an id field whose length byte is its size less
        # the relevance field's 9 bytes (or 0). Then each holds at least one id, so, n
        # ids in all, exactly one; and what follows it (9 bytes or nothing) holds at most
        # one relevance, so, n or 0 relevances in all, one each or none at all.
        id_size = size - (2 + _RELEVANCE_SIZE if given else 2)
        ok = (data.take(start, mode="clip") == _ID_TAG) & (
            data.take(start + 1, mode="clip") == id_size
        )
        result_size = size if given else size + _RELEVANCE_SIZE
    else:
        # Some relevances left out (0.0): each candidate must be an id field whose length
        # fits its one byte, then nothing, or the relevance field filling the rest.
        id_size = data.take(start + 1, mode="clip").astype(np.int64)
        rest = size - 2 - id_size
        has = rest == _RELEVANCE_SIZE
        ok = (
            (data.take(start, mode="clip") == _ID_TAG)
            & (id_size < 0x80)
            & (
                (rest == 0)
                | (has & (data.take(start + 2 + id_size, mode="clip") == _RELEVANCE_TAG))
            )
        )
        if np.count_nonzero(has) != given:  # (equal whenever every candidate is ok)
            return None
        result_size = size + _RELEVANCE_SIZE
        result_size[has] = size[has]
    # tobytes and compare: cheaper than a numpy reduction on arrays this small.
    if ok.tobytes() != b"\x01" * n:
        return None
    block = CandidateBlock(data, start, size, id_size, result_size)
    if given == n:
        return ids, np.array(columns.relevance, dtype=np.float64), block
    relevance = np.zeros(n, dtype=np.float64)
    if given:
        relevance[has] = columns.relevance  # (the runtime read exactly these: one each)
    return ids, relevance, block
