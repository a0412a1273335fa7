"""BenchService.Echo: decode and re-encode a Rank-shaped message, nothing else.

Registered only with the bench_echo setting: benchmarks compare Rank with it, served
by the same server with the same options and interceptors, as the ceiling of gRPC
in Python on the machine.
"""

from __future__ import annotations

import grpc
from reviewrank.v1 import bench_pb2, bench_pb2_grpc

SERVICE_NAME = bench_pb2.DESCRIPTOR.services_by_name["BenchService"].full_name


class BenchServicer(bench_pb2_grpc.BenchServiceServicer):
    def Echo(  # noqa: N802 (gRPC method name)
        self, request: bench_pb2.EchoRequest, context: grpc.ServicerContext
    ) -> bench_pb2.EchoResponse:
        return bench_pb2.EchoResponse(candidates=request.candidates)


def add_to_server(server: grpc.Server) -> None:
    bench_pb2_grpc.add_BenchServiceServicer_to_server(BenchServicer(), server)
