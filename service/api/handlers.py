"""Registers a servicer from its service descriptor, letting responses be pre-encoded.

Equivalent to the generated ``add_*Servicer_to_server`` functions, except that a
method may return the response already serialized (bytes), as Rank does on its hot
path (service/api/wire/results.py), and take its request undecoded, as Rank does to decode it
in bulk (service/api/wire/rank_decode.py); messages are serialized as usual. Given the input
limits, every method's requests are refused unread over their byte budget
(service/api/request_budget.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor, message_factory

from reviewrank.service.api.request_budget import MethodBudget
from reviewrank.service.api.validation import InputLimits


def _serialize(response: Any) -> bytes:
    if isinstance(response, bytes):
        return response
    encoded: bytes = response.SerializeToString()
    return encoded


def add_servicer(
    server: grpc.Server,
    service: descriptor.ServiceDescriptor,
    servicer: Any,
    deserializers: Mapping[str, Callable[[bytes], Any] | None] | None = None,
    limits: InputLimits | None = None,
) -> None:
    """``deserializers``: request decoders replacing the message class's (by method name);
    None hands the method its request as bytes (Rank decodes its own). ``limits``: the
    input limits each method's byte budget follows from."""
    custom = deserializers or {}
    handlers = {}
    for method in service.methods:
        deserializer = custom.get(
            method.name, message_factory.GetMessageClass(method.input_type).FromString
        )
        if limits is not None:
            deserializer = MethodBudget.of(method.input_type, limits).guard(deserializer)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=deserializer,
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
