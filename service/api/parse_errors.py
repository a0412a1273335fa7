"""Explains why bytes do not parse as a protobuf message, naming the field when it can.

protobuf's Python runtime refuses a whole message when a string field holds
invalid UTF-8, or when the wire data is malformed, and says neither which field
nor where. :func:`diagnose` walks the wire format itself, guided by the message's
descriptor, and returns the path of the first offending field in the same form as
the validation errors (``events[3].rating.user_id``).

The walk is Python, about 2 us a field: its work is bounded (service/api/request_budget.py
sets the bounds of each method). A repeated field found holding more items than its
limit ends the walk there, named with that limit, and no walk reads more than
``max_fields`` fields (a cut-short 4 MiB request of tiny fields held one for seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from reviewrank.service.domain.errors import too_many_items

_MAX_DEPTH = 100  # protobuf's own recursion limit
# The most fields a walk reads unless told otherwise (about 20 ms of walking): far more
# than a health or reflection request holds.
MAX_FIELDS = 10_000


@dataclass(frozen=True)
class Problem:
    field: str  # "" when no field can be blamed
    description: str


class _Malformed(Exception):
    """The bytes are not a well-formed protobuf message at this point."""


class _Enough(Exception):
    """The walk read as many fields as it may."""


class _Budget:
    """What a walk may still read: fields in all, and items of each repeated field (by
    name; unlimited for names not given)."""

    __slots__ = ("fields_left", "items")

    def __init__(self, max_fields: int, items: Mapping[str, int]) -> None:
        self.fields_left = max_fields
        self.items = items


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")


def _skip_group(data: bytes, pos: int, number: int, depth: int) -> int:
    """Skips an (unknown, deprecated) group up to its matching end tag."""
    if depth > _MAX_DEPTH:
        raise _Malformed("groups nested too deeply")
    while True:
        key, pos = _varint(data, pos)
        wire_type = key & 7
        if wire_type == 4:
            if key >> 3 != number:
                raise _Malformed("mismatched end of group")
            return pos
        pos = _skip(data, pos, key >> 3, wire_type, depth + 1)


def _skip(data: bytes, pos: int, number: int, wire_type: int, depth: int) -> int:
    if wire_type == 0:
        return _varint(data, pos)[1]
    if wire_type == 1:
        end = pos + 8
    elif wire_type == 5:
        end = pos + 4
    elif wire_type == 2:
        length, pos = _varint(data, pos)
        end = pos + length
    elif wire_type == 3:
        return _skip_group(data, pos, number, depth)
    else:
        raise _Malformed(f"invalid wire type {wire_type}")
    if end > len(data):
        raise _Malformed("truncated field")
    return end


def _walk(data: bytes, descriptor: Any, prefix: str, depth: int, budget: _Budget) -> Problem | None:
    if depth > _MAX_DEPTH:
        return Problem(prefix.rstrip("."), "messages nested too deeply")
    counts: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        budget.fields_left -= 1
        if budget.fields_left < 0:
            raise _Enough
        try:
            key, after_key = _varint(data, pos)
        except _Malformed as exc:
            return Problem(prefix.rstrip("."), f"malformed protobuf data: {exc}")
        number, wire_type = key >> 3, key & 7
        field = descriptor.fields_by_number.get(number) if number else None
        path = prefix.rstrip(".")
        if field is not None:
            path = prefix + field.name
            if field.is_repeated and wire_type == 2:
                index = counts.get(number, 0)
                most = budget.items.get(field.name)
                if most is not None and index >= most:
                    return Problem(path, too_many_items(most))
                counts[number] = index + 1
                path = f"{path}[{index}]"
        if number == 0 or wire_type in (4, 6, 7):
            return Problem(prefix.rstrip("."), "malformed protobuf data: invalid tag")
        try:
            end = _skip(data, after_key, number, wire_type, depth)
        except _Malformed as exc:
            return Problem(path, f"malformed protobuf data: {exc}")
        if field is not None and wire_type == 2:
            length_end = _varint(data, after_key)[1]
            payload = data[length_end:end]
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    payload.decode("utf-8")
                except UnicodeDecodeError:
                    return Problem(path, "is not valid UTF-8 (protobuf strings must be UTF-8)")
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                problem = _walk(payload, field.message_type, path + ".", depth + 1, budget)
                if problem is not None:
                    return problem
        pos = end
    return None


def diagnose(
    data: bytes,
    descriptor: Any,
    items: Mapping[str, int] | None = None,
    max_fields: int = MAX_FIELDS,
) -> Problem:
    """Why ``data`` does not parse as the message ``descriptor`` describes, read no
    further than ``max_fields`` fields, nor than the limit of a repeated field in
    ``items`` (the most items, by field name)."""
    try:
        problem = _walk(data, descriptor, "", 0, _Budget(max_fields, items or {}))
    except _Enough:
        return Problem(
            "", f"the request could not be parsed (read no further than {max_fields} fields)"
        )
    if problem is None:
        return Problem("", "the request could not be parsed")
    return problem
