"""SubmitBatch's response in bulk: its bytes, then the runtime's message parsed from them.

The response, one SubmitResponse per event, is encoded with numpy (the standard wire
format, checked byte for byte against the protobuf runtime in tests/api/test_batch_codec.py)
and parsed back by the runtime's C parser: cheaper than building 1,000 messages.

    SubmitBatchResponse = 1: repeated SubmitResponse results, 2: uint64 seq
    SubmitResponse      = 1: Outcome outcome (enum), 2: uint64 seq
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reviewrank.service.api.wire.results import varint
from reviewrank.service.domain.values import Outcome
from reviewrank.v1 import feedback_pb2

# Below this many results, the runtime builds the response faster than numpy's fixed cost.
BULK_MIN_RESULTS = 32

if any(int(o) != feedback_pb2.Outcome.Value(o.name) for o in Outcome):
    raise RuntimeError("reviewrank.service.domain.values.Outcome and the protobuf Outcome disagree")


def encode_batch_response(outcomes: Sequence[int], seqs: Sequence[int]) -> bytes:
    """The serialized SubmitBatchResponse of these results (seq 0: none, as for DUPLICATE),
    with ``seq`` the largest sequence number."""
    n = len(seqs)
    if n == 0:
        return b""
    seq = np.fromiter(seqs, dtype=np.uint64, count=n)
    top = int(seq.max())
    width = len(varint(top))  # the longest varint of a seq
    # Each seq's varint: 7 bits a byte, the high bit set on every byte but its last.
    shifted = seq[:, None] >> np.arange(0, 7 * width, 7, dtype=np.uint64)
    count = (shifted != 0).sum(axis=1)  # bytes of the varint; 0 for a zero seq (left out)
    more = np.arange(width) < (count - 1)[:, None]
    rows = np.empty((n, 5 + width), dtype=np.uint8)
    rows[:, 0] = 0x0A  # results: field 1, length-delimited
    rows[:, 1] = 2 + (count > 0) + count  # the SubmitResponse's length
    rows[:, 2] = 0x08  # outcome: field 1, varint
    first = outcomes[0]
    if outcomes.count(first) == n:  # the usual case: one outcome for all
        rows[:, 3] = int(first)
    else:
        rows[:, 3] = np.fromiter(map(int, outcomes), dtype=np.uint8, count=n)
    rows[:, 4] = 0x10  # seq: field 2, varint
    rows[:, 5:] = (shifted & np.uint64(0x7F)) | (more * np.uint64(0x80))
    # Each row's bytes in use: the outcome's 4, then the seq's tag and varint if any.
    keep = np.arange(5 + width) < np.where(count > 0, 5 + count, 4)[:, None]
    tail = b"\x10" + varint(top) if top else b""
    return bytes(rows[keep].tobytes()) + tail


def batch_response(
    outcomes: Sequence[int], seqs: Sequence[int]
) -> feedback_pb2.SubmitBatchResponse:
    """The SubmitBatchResponse, built from its encoding."""
    response: feedback_pb2.SubmitBatchResponse = feedback_pb2.SubmitBatchResponse.FromString(
        encode_batch_response(outcomes, seqs)
    )
    return response
