"""Every method the server exposes, for tests that call them with raw bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2  # noqa: F401  (registers the descriptors)
from grpc_reflection.v1alpha import reflection_pb2  # noqa: F401

from reviewrank.service.api.server import SERVICE_NAMES

OTHER_SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
ADMIN_TOKEN = "test-admin-token"
# Calls carry the admin token, so that admin methods are reached too (the test servers
# are started with it).
AUTH = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


@dataclass(frozen=True)
class Method:
    path: str  # /package.Service/Method
    request: Any  # the request message's descriptor
    client_streaming: bool
    server_streaming: bool

    def call_raw(
        self,
        channel: grpc.Channel,
        data: bytes,
        timeout: float,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> list[bytes]:
        """Sends ``data`` as the serialized request; returns the raw response messages."""
        if self.client_streaming:
            stream = channel.stream_stream(self.path)
            return list(stream(iter([data]), timeout=timeout, metadata=metadata))
        if self.server_streaming:
            call = channel.unary_stream(self.path)(data, timeout=timeout, metadata=metadata)
            return list(call)
        return [channel.unary_unary(self.path)(data, timeout=timeout, metadata=metadata)]


def all_methods() -> list[Method]:
    pool = descriptor_pool.Default()
    methods = []
    for name in [*SERVICE_NAMES, *OTHER_SERVICES]:
        service = pool.FindServiceByName(name)
        for m in service.methods:
            methods.append(
                Method(
                    f"/{service.full_name}/{m.name}",
                    m.input_type,
                    m.client_streaming,
                    m.server_streaming,
                )
            )
    return methods


@dataclass(frozen=True)
class StringField:
    """How to reach one string field from the top of a request (repeated: first item)."""

    steps: tuple[Any, ...]  # FieldDescriptors
    path: str  # as the server names it, e.g. events[0].rating.user_id


def string_fields(descriptor: Any, prefix: str = "", depth: int = 0) -> Iterator[StringField]:
    for field in descriptor.fields:
        name = prefix + field.name
        if field.is_repeated:
            name += "[0]"
        if field.type == FieldDescriptor.TYPE_STRING:
            yield StringField((field,), name)
        elif (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and depth < 4
            and not field.message_type.GetOptions().map_entry
        ):
            for inner in string_fields(field.message_type, name + ".", depth + 1):
                yield StringField((field, *inner.steps), inner.path)


def set_string(message: Any, field: StringField, value: str) -> None:
    target = message
    for step in field.steps[:-1]:
        if step.is_repeated:
            target = getattr(target, step.name).add()
        else:
            target = getattr(target, step.name)
    last = field.steps[-1]
    if last.is_repeated:
        getattr(target, last.name).append(value)
    else:
        setattr(target, last.name, value)
