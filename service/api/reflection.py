"""Server reflection that also resolves method symbols.

grpcio-reflection looks symbols up with ``DescriptorPool.FindFileContainingSymbol``,
which does not know method names, so a request for
``reviewrank.v1.RankingService.Rank`` (what ghz and grpcurl send) answers
NOT_FOUND (grpc/grpc#34743). This servicer falls back to the service part of
the name and answers with the file that defines the service, if the service
really has that method.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc


class MethodAwareReflectionServicer(reflection.ReflectionServicer):  # type: ignore[misc]
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        pool = self._pool
        try:
            pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            service_name, _, method_name = fully_qualified_name.rpartition(".")
            try:
                service = pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is not None and method_name in service.methods_by_name:
                fully_qualified_name = service_name
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable(service_names: list[str], server: grpc.Server) -> None:
    names = [*service_names, reflection.SERVICE_NAME]
    servicer = MethodAwareReflectionServicer(names, pool=descriptor_pool.Default())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
