"""What the client commands share: settings from the command line, the channel with its
token, one call with its failure printed, the common options."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reviewrank.service.app.settings import Settings, from_env


def settings_from(args: argparse.Namespace) -> Settings:
    return from_env(
        address=getattr(args, "address", None),
        database=getattr(args, "database", None),
        database_url=getattr(args, "database_url", None),
        weights=getattr(args, "weights", None),
        log_format=getattr(args, "log_format", None),
        log_level=getattr(args, "log_level", None),
        synchronous=getattr(args, "synchronous", None),
        workers=getattr(args, "workers", None),
        metrics_address=getattr(args, "metrics_address", None),
        log_sample_rate=getattr(args, "log_sample_rate", None),
        tracing=getattr(args, "tracing", None),
        open_erasure=getattr(args, "open_erasure", None),
    )


def client_token(args: argparse.Namespace, settings: Settings, admin: bool = False) -> str:
    """The bearer token a client command sends ("" for none): --token, else the configured
    admin token (admin commands, erasure) or API token (the others); an admin command with
    neither falls back to the token file `make serve` creates, if there is one."""
    from reviewrank.service.api.auth import read_token
    from reviewrank.service.cli.token_file import DEFAULT_ADMIN_TOKEN_FILE

    token: str | None = getattr(args, "token", None)
    if token:
        return token
    name = "admin_token" if admin else "api_token"
    token = read_token(getattr(settings, name), getattr(settings, name + "_file"), name)
    if not token and admin and DEFAULT_ADMIN_TOKEN_FILE.is_file():
        token = read_token("", DEFAULT_ADMIN_TOKEN_FILE, name)
    return token


def open_channel(args: argparse.Namespace, admin: bool = False):  # type: ignore[no-untyped-def]
    """A channel to --server (TLS with --ca-file or --tls), sending the bearer token
    (client_token)."""
    from reviewrank.service.api.auth import client_channel

    settings = settings_from(args)
    return client_channel(
        args.server or settings.address,
        token=client_token(args, settings, admin),
        ca_file=getattr(args, "ca_file", None),
        tls=getattr(args, "tls", False),
    )


def call(
    args: argparse.Namespace, stub_type: Any, method: str, request: Any, admin: bool = False
) -> Any:
    """Calls one method over a channel to --server (open_channel); returns the response, or
    the exit code (an int: no response message is one) after printing the status."""
    with open_channel(args, admin=admin) as channel:
        try:
            return getattr(stub_type(channel), method)(request, timeout=args.timeout)
        except Exception as exc:
            return fail(exc)


T = TypeVar("T")
RETRIES = 5  # of a call the server could not take now (UNAVAILABLE, RESOURCE_EXHAUSTED)


def retried(call: Callable[[], T]) -> T:
    """``call()``, asked again RETRIES times at most, backing off from 0.5 s (doubling),
    while the server cannot take it now (UNAVAILABLE, RESOURCE_EXHAUSTED): a resend with
    the same ids is harmless. Any other failure, or the last, is raised (grpc.RpcError)."""
    import grpc

    again = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    for attempt in range(RETRIES):
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() not in again:
                raise
            time.sleep(0.5 * 2**attempt)
    return call()


def fail(exc: Exception) -> int:
    import grpc

    if isinstance(exc, grpc.RpcError):
        print(f"reviewrank: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    raise exc


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", help="HOST:PORT of the server (default: the configured address)"
    )
    parser.add_argument("--timeout", type=seconds, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--token",
        help="bearer token to send (default: REVIEWRANK_API_TOKEN[_FILE], or for admin "
        "commands, catalogue and forget REVIEWRANK_ADMIN_TOKEN[_FILE], else data/admin-token if it "
        "exists; prefer those: flags show in `ps`)",
    )
    parser.add_argument("--tls", action="store_true", help="TLS, trusting the system's roots")
    parser.add_argument(
        "--ca-file", type=Path, help="TLS, trusting this PEM certificate (e.g. self-signed)"
    )


def count(text: str) -> int:
    """A whole number a uint32 field can carry, for argparse (which names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1} (got {value})")
    return value


def admin_call(args: argparse.Namespace, method: str, request: Any) -> Any:
    """Calls an AdminService method with the admin token; returns the response, or the
    exit code on failure (call)."""
    from reviewrank.v1 import admin_pb2_grpc

    return call(args, admin_pb2_grpc.AdminServiceStub, method, request, admin=True)


def when(stamp: Any) -> str:
    """A protobuf Timestamp as the tables show it."""
    return str(stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC"))


def seconds(text: str) -> float:
    """A positive number of seconds, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got {text})")
    return value
