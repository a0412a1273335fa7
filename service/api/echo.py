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


async def _serve_aio(address: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    bench_pb2_grpc.add_BenchServiceServicer_to_server(_AioBenchServicer(), server)
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


class _AioBenchServicer(bench_pb2_grpc.BenchServiceServicer):
    async def Echo(  # noqa: N802 (gRPC method name)
        self, request: bench_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> bench_pb2.EchoResponse:
        return bench_pb2.EchoResponse(candidates=request.candidates)


def main(argv: list[str] | None = None) -> int:
    """``python -m service.api.echo ADDRESS``: Echo alone on a bare grpc.aio server,
    the other way of serving gRPC in Python, which the benchmark also measures so that
    its ceiling is the better of the two."""
    import asyncio
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m service.api.echo HOST:PORT", file=sys.stderr)
        return 2
    asyncio.run(_serve_aio(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
