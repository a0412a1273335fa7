"""A client that opens health Watch streams and never reads them, in raw HTTP/2.

A gRPC client library always takes what the server sends; this one announces a stream
window of 0 bytes and never raises it, so the server's first message on each stream can
never leave: the send waits for as long as the stream is open. It answers the
connection's SETTINGS and PING frames (so the connection stays up) and records the
frames it gets, to see which streams the server ended.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING = 0x0, 0x1, 0x3, 0x4, 0x6
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1
_INITIAL_WINDOW_SIZE = 0x4
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _header(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing (no Huffman coding)."""
    raw_name, raw_value = name.encode(), value.encode()
    assert len(raw_name) < 127 and len(raw_value) < 127
    return b"\x00" + bytes([len(raw_name)]) + raw_name + bytes([len(raw_value)]) + raw_value


class NeverReadingClient:
    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.settimeout(None)
        self._send_lock = threading.Lock()
        self._next_stream = 1
        self._lock = threading.Lock()
        self.ended: set[int] = set()  # streams the server ended (RST_STREAM or END_STREAM)
        self.disconnected = threading.Event()  # the server closed the connection
        self._settled = threading.Event()  # the server has taken the window of 0
        self._send(_PREFACE + _frame(_SETTINGS, 0, 0, struct.pack(">HI", _INITIAL_WINDOW_SIZE, 0)))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._settled.wait(10):
            self.close()
            raise RuntimeError("the server did not acknowledge the settings")

    def watch(self, service: str = "") -> int:
        """Opens a Watch stream of ``service``; its stream id."""
        stream = self._next_stream
        self._next_stream += 2
        request = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
        headers = b"".join(
            _header(name, value)
            for name, value in [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/grpc.health.v1.Health/Watch"),
                (":authority", "127.0.0.1"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
        )
        message = b"\x00" + struct.pack(">I", len(request)) + request
        self._send(
            _frame(_HEADERS, _END_HEADERS, stream, headers)
            + _frame(_DATA, _END_STREAM, stream, message)
        )
        return stream

    def wait_ended(self, stream: int, seconds: float) -> bool:
        """Whether the server ends ``stream`` (or the whole connection) within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if stream in self.ended:
                    return True
            if self.disconnected.wait(0.02):
                return True
        return False

    def close(self) -> None:
        self._sock.close()

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(data)

    def _read(self) -> None:
        try:
            self._read_frames()
        finally:
            self.disconnected.set()

    def _read_frames(self) -> None:
        buffer = b""
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length = int.from_bytes(buffer[:3], "big")
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                try:
                    self._answer(kind, flags, stream, payload)
                except OSError:  # closed meanwhile
                    return

    def _answer(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == _SETTINGS and flags & _ACK:
            self._settled.set()
        elif kind == _SETTINGS:
            self._send(_frame(_SETTINGS, _ACK, 0))
        elif kind == _PING and not flags & _ACK:
            self._send(_frame(_PING, _ACK, 0, payload))
        elif kind == _RST_STREAM or (kind in (_HEADERS, _DATA) and flags & _END_STREAM):
            with self._lock:
                self.ended.add(stream)
