"""max_streams_per_connection is what the server announces to each client connection
(HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS), read off the wire of a real server."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from tests.conftest import Client

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = 0x4
MAX_CONCURRENT_STREAMS = 0x3


def announced_settings(port: int) -> dict[int, int]:
    """The parameters of the first SETTINGS frame the server sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(PREFACE + struct.pack(">I", 0)[1:] + bytes([SETTINGS, 0]) + bytes(4))
        received = b""
        while True:
            while len(received) < 9:
                chunk = sock.recv(4096)
                assert chunk, "the server closed the connection"
                received += chunk
            length = int.from_bytes(received[:3], "big")
            kind = received[3]
            while len(received) < 9 + length:
                received += sock.recv(4096)
            payload, received = received[9 : 9 + length], received[9 + length :]
            if kind == SETTINGS and length and length % 6 == 0:
                return {
                    int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(
                        payload[i + 2 : i + 6], "big"
                    )
                    for i in range(0, length, 6)
                }


def test_the_server_announces_the_streams_a_connection_may_open(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(max_streams_per_connection=16)

    assert 16 == announced_settings(client.port).get(MAX_CONCURRENT_STREAMS)


def test_by_default_32_streams_a_connection_are_announced(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()

    assert 32 == announced_settings(client.port).get(MAX_CONCURRENT_STREAMS)


def test_with_0_no_stream_limit_below_grpcs_own_is_announced(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(max_streams_per_connection=0)

    assert announced_settings(client.port).get(MAX_CONCURRENT_STREAMS, 2**31 - 1) > 2**30
