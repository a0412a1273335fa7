"""A budget for the work done on a request before it is known to be valid.

Every request of the feedback and ranking services is checked, before any parsing, against
the size of the largest valid request of its method: one ``len()``. That size follows from
the input limits (service/api/validation.py, :class:`InputLimits`) and the message layout:
each repeated field at its most items, each string at its most characters of four UTF-8
bytes, each varint at its longest, each tag and length prefix counted, the largest member
of a oneof. A request over it cannot be valid and is refused at once, without being read
(measured: a cut-short 4 MiB GetProductStats held the server for 1.7 s of CPU, a cut-short
4 MiB Rank for 2.3 s, the former in the polling thread every call waits for). The status
is INVALID_ARGUMENT naming the limits, as for too many items: no retry can succeed,
whereas RESOURCE_EXHAUSTED tells a caller to back off and try again.

A request within the budget may still be made of many tiny items; two more bounds keep
its cost proportional to the limits: decoders that count items stop at the limit
(api/wire/rank_decode.py, api/wire/batch_codec.py), and the explanation of an undecodable
request (service/api/parse_errors.py) stops at a repeated field's limit and reads no more
fields than the largest valid request holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from reviewrank.ranking.polls import MAX_SHOWN
from reviewrank.service.api.interceptors import Undecodable, undecodable
from reviewrank.service.api.validation import (
    MAX_BATCH_COMMENT_BYTES,
    MAX_BATCH_SHOWN_BYTES,
    MAX_CHANNEL_LENGTH,
    MAX_COMMENT_TEXT,
    MAX_LANGUAGE_TAG,
    MAX_PAGE_TOKEN,
    MAX_PROFILE_NAME,
    InputLimits,
)
from reviewrank.service.api.wire.results import varint
from reviewrank.service.domain.errors import InvalidArgument

# Room beyond the largest valid request, for fields a newer client may add: 1/16 more,
# and 4 KiB (bytes), or 64 fields, more still.
_HEADROOM_BYTES = 4096
_HEADROOM_FIELDS = 64

_T = FieldDescriptor
# The longest encoding of each scalar type's value (varints: 10 bytes for a negative
# int32, int64 or enum; 5 for uint32 and sint32).
_SCALAR_SIZES = {
    _T.TYPE_BOOL: 1,
    _T.TYPE_INT32: 10,
    _T.TYPE_INT64: 10,
    _T.TYPE_UINT32: 5,
    _T.TYPE_UINT64: 10,
    _T.TYPE_SINT32: 5,
    _T.TYPE_SINT64: 10,
    _T.TYPE_ENUM: 10,
    _T.TYPE_FIXED32: 4,
    _T.TYPE_SFIXED32: 4,
    _T.TYPE_FLOAT: 4,
    _T.TYPE_FIXED64: 8,
    _T.TYPE_SFIXED64: 8,
    _T.TYPE_DOUBLE: 8,
}
_UTF8_MAX = 4  # bytes a character may take
# The string fields holding identifiers (at most max_id_length characters each).
_ID_FIELDS = frozenset(
    {
        "event_id", "product_id", "user_id", "category", "product_ids", "candidate_ids",
        "poll_id", "shown", "chosen",
    }
)  # fmt: skip
_FIXED_LENGTHS = {
    "profile": MAX_PROFILE_NAME,
    "page_token": MAX_PAGE_TOKEN,
    "channel": MAX_CHANNEL_LENGTH,
    "text": MAX_COMMENT_TEXT,
    "language": MAX_LANGUAGE_TAG,
}
# The setting limiting each repeated field's items.
_ITEM_LIMITS = {
    "candidates": "max_candidates",
    "candidate_ids": "max_candidates",
    "candidate_relevances": "max_candidates",
    "product_ids": "max_stats_products",
    "events": "max_batch_events",
}


# The repeated field of a batch, whose comments' texts share one limit (in bytes) rather
# than each being as long as one comment's may be: counted once for the whole request.
_BATCH_FIELD = "events"
_BATCH_TEXT = "text"
_BATCH_SHOWN = "shown"  # and so do its poll votes' products shown
_LENGTH_PREFIX_MAX = 3  # the varint of a text's length (under 2**21 bytes)


# Fields sent instead of another (RankRequest's candidates as columns): the request is
# as large as the larger of the two forms, not both.
_INSTEAD_OF = {"candidate_ids": "candidates", "candidate_relevances": "candidates"}


# Repeated fields of a fixed most items: a poll vote's products shown.
_FIXED_ITEMS = {"shown": MAX_SHOWN}


def _items(limits: InputLimits) -> dict[str, int]:
    """The most items of each repeated field, by field name."""
    items = {name: getattr(limits, setting) for name, setting in _ITEM_LIMITS.items()}
    return items | _FIXED_ITEMS


def _characters(limits: InputLimits, message: str, field: str) -> int:
    """The most characters of a string field."""
    if field in _ID_FIELDS:
        return limits.max_id_length
    if field in _FIXED_LENGTHS:
        return _FIXED_LENGTHS[field]
    raise ValueError(f"no length limit for {message}.{field}: add one to {__name__}")


@dataclass(frozen=True)
class _Layout:
    """The largest valid encoding of a message: its bytes, its fields (counting nested
    ones), and the settings that bound it."""

    size: int
    fields: int
    settings: frozenset[str]


def _largest(message: Descriptor, limits: InputLimits, in_batch: bool = False) -> _Layout:
    size = fields = 0
    settings: set[str] = set()
    oneofs: dict[str, _Layout] = {}
    alternatives: dict[str, _Layout] = {}
    sizes: dict[str, _Layout] = {}
    for field in message.fields:
        one = _largest_field(message, field, limits, in_batch)
        settings |= one.settings
        sizes[field.name] = one
        instead_of = _INSTEAD_OF.get(field.name)
        if instead_of is not None:
            known = alternatives.get(instead_of, _Layout(0, 0, frozenset()))
            alternatives[instead_of] = _Layout(
                known.size + one.size, known.fields + one.fields, known.settings
            )
        elif field.containing_oneof is None:
            size += one.size
            fields += one.fields
        else:  # one member at most is set
            best = oneofs.get(field.containing_oneof.name)
            if best is None or one.size > best.size:
                oneofs[field.containing_oneof.name] = one
    for one in oneofs.values():
        size += one.size
        fields += one.fields
    for name, other in alternatives.items():  # the larger form counts
        size += max(0, other.size - sizes[name].size)
        fields += max(0, other.fields - sizes[name].fields)
    return _Layout(size, fields, frozenset(settings))


def _largest_field(
    message: Descriptor, field: FieldDescriptor, limits: InputLimits, in_batch: bool = False
) -> _Layout:
    """Every occurrence of the field: its tag, length prefix and value, at their longest.
    In a batch's events, a comment's text counts its tag and length prefix only (its
    bytes are the batch's: MethodBudget.of)."""
    tag = len(varint(field.number << 3))  # (the wire type never lengthens it)
    nested = 0
    settings: set[str] = set()
    if field.type == _T.TYPE_STRING and in_batch and field.name in (_BATCH_TEXT, _BATCH_SHOWN):
        body = _LENGTH_PREFIX_MAX
    elif field.type == _T.TYPE_STRING:
        payload = _UTF8_MAX * _characters(limits, message.full_name, field.name)
        body = len(varint(payload)) + payload
        if field.name in _ID_FIELDS:
            settings.add("max_id_length")
    elif field.type == _T.TYPE_MESSAGE:
        inner = _largest(field.message_type, limits, in_batch or field.name == _BATCH_FIELD)
        body = len(varint(inner.size)) + inner.size
        nested = inner.fields
        settings |= inner.settings
    elif field.type in _SCALAR_SIZES:  # (repeated: unpacked, a tag each, is the larger)
        body = _SCALAR_SIZES[field.type]
    else:
        raise ValueError(f"no size bound for {message.full_name}.{field.name}: see {__name__}")
    count = 1
    if field.is_repeated and field.name in _FIXED_ITEMS:
        count = _FIXED_ITEMS[field.name]
    elif field.is_repeated:
        setting = _ITEM_LIMITS.get(field.name)
        if setting is None:
            raise ValueError(f"no item limit for {message.full_name}.{field.name}: see {__name__}")
        count = getattr(limits, setting)
        settings.add(setting)
    return _Layout(count * (tag + body), count * (1 + nested), frozenset(settings))


@dataclass(frozen=True)
class MethodBudget:
    """What may be read of one method's requests before they are known to be valid."""

    descriptor: Descriptor  # the request message's
    largest: int  # bytes of its largest valid encoding
    max_bytes: int  # the budget: the largest, and headroom
    max_fields: int  # the most fields an explanation of undecodable bytes reads
    items: Mapping[str, int]  # the most items of each repeated field
    limits_in_force: str  # e.g. "max_stats_products=1000, max_id_length=128"

    @classmethod
    def of(cls, descriptor: Descriptor, limits: InputLimits) -> MethodBudget:
        layout = _largest(descriptor, limits)
        if _BATCH_FIELD in descriptor.fields_by_name:  # texts and products shown, together
            extra = MAX_BATCH_COMMENT_BYTES + MAX_BATCH_SHOWN_BYTES
            layout = _Layout(layout.size + extra, layout.fields, layout.settings)
        named = ", ".join(f"{name}={getattr(limits, name)}" for name in sorted(layout.settings))
        return cls(
            descriptor,
            layout.size,
            layout.size + layout.size // 16 + _HEADROOM_BYTES,
            layout.fields + layout.fields // 16 + _HEADROOM_FIELDS,
            MappingProxyType(_items(limits)),
            named,
        )

    def too_large(self, size: int) -> InvalidArgument:
        return InvalidArgument(
            [],
            f"the request ({size} bytes) is larger than any valid {self.descriptor.full_name} "
            f"can be ({self.max_bytes} bytes at most, with {self.limits_in_force}): "
            "refused unread",
        )

    def undecodable(self, data: bytes) -> InvalidArgument:
        """The error for bytes that do not parse, read within this budget."""
        return undecodable(data, self.descriptor, self.items, self.max_fields)

    def guard(self, decode: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
        """A request deserializer that refuses requests over the budget unread, and
        returns Undecodable (service/api/interceptors.py) for those ``decode`` refuses:
        InvalidArgument as raised (a decoder stopping at an item limit), any other error
        explained within the budget. ``decode`` None: the request stays bytes."""
        most = self.max_bytes
        too_large = self.too_large

        if decode is None:

            def sized(data: bytes) -> Any:
                return data if len(data) <= most else Undecodable(too_large(len(data)))

            return sized

        explain = self.undecodable

        def deserialize(data: bytes) -> Any:
            if len(data) > most:
                return Undecodable(too_large(len(data)))
            try:
                return decode(data)
            except InvalidArgument as error:
                return Undecodable(error)
            except Exception:
                return Undecodable(explain(data))

        return deserialize
