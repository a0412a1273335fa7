"""Views of the wire format: message types that read reviewrank.v1's bytes another way.

A view keeps a message's field numbers and changes what the parser makes of them: a
sub-message typed ``bytes`` is handed out as its encoding, as is; a message with every
field ``repeated`` reads the fields of many messages, their encodings joined, as one
column per field. The runtime's C parser then does in one call what the generated
classes do one Python object at a time (rank_decode.py, batch_codec.py).
Views are built from the generated descriptors, so they follow the protos, and live in a
descriptor pool of their own, apart from the types the services use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "reviewrank.internal"
_FIELD = descriptor_pb2.FieldDescriptorProto

Edit = Callable[[descriptor_pb2.DescriptorProto], None]


def view_classes(
    file_name: str, views: Mapping[str, tuple[descriptor.Descriptor, Edit]]
) -> list[Any]:
    """A message class per view, in order: ``name -> (message copied, edit of the copy)``."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=f"reviewrank/internal/{file_name}", package=PACKAGE, syntax="proto3"
    )
    for name, (source, edit) in views.items():
        message = file_proto.message_type.add()
        source.CopyToProto(message)
        message.name = name
        edit(message)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return [
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in views
    ]


def as_bytes(field: descriptor_pb2.FieldDescriptorProto) -> None:
    """A sub-message field read as its encoding."""
    field.type = _FIELD.TYPE_BYTES
    field.ClearField("type_name")


def as_int32(field: descriptor_pb2.FieldDescriptorProto) -> None:
    """An enum field read as its number."""
    field.type = _FIELD.TYPE_INT32
    field.ClearField("type_name")


def columns(message: descriptor_pb2.DescriptorProto) -> None:
    """Every field repeated (a oneof's members too): the fields of many messages."""
    del message.oneof_decl[:]
    for field in message.field:
        field.label = _FIELD.LABEL_REPEATED
        field.ClearField("oneof_index")


def field_numbers(message: descriptor_pb2.DescriptorProto) -> dict[str, int]:
    return {field.name: field.number for field in message.field}


def sizes(items: Sequence[Sized]) -> npt.NDArray[np.int64]:
    """Each item's length (bytes: in bytes; str: in characters)."""
    return np.fromiter(map(len, items), dtype=np.int64, count=len(items))
