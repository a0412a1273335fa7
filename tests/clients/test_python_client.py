"""The Python client distribution (clients/python): its helper, reviewrank.client.Client,
against a real server, and the distribution installed alone into a fresh virtualenv."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from reviewrank.client import Client as ReviewrankClient
from tests.conftest import Client

ROOT = Path(__file__).resolve().parents[2]


def test_a_rating_is_applied_and_the_next_rank_reflects_it(client: Client) -> None:
    with ReviewrankClient(client.target) as shop:
        for i in range(10):
            shop.rate(f"old-{i}", "steady", f"u{i}", 4)

        outcome = shop.rate("new-1", "fresh", "u-new", 5)
        ranked = shop.rank({"unknown": 1.0, "steady": 1.0, "fresh": 1.0})

        assert "APPLIED" == outcome
        assert shop.last_seq > 0
        assert {"unknown", "steady", "fresh"} == {product for product, _ in ranked}
        assert [1] == [s.rating_count for s in shop.stats(["fresh"])]


def test_a_resent_event_is_a_duplicate(client: Client) -> None:
    with ReviewrankClient(client.target) as shop:
        shop.like("like-1", "p1", "u1")

        assert "DUPLICATE" == shop.like("like-1", "p1", "u1")


def test_a_share_is_applied_and_counted_once_per_user(client: Client) -> None:
    with ReviewrankClient(client.target) as shop:
        first = shop.share("share-1", "p1", "u1", channel="instagram")
        again = shop.share("share-2", "p1", "u1", channel="web")

        assert ("APPLIED", "APPLIED") == (first, again)
        assert [1] == [s.shares for s in shop.stats(["p1"])]


def test_a_bad_request_is_not_retried_and_raises_its_status(client: Client) -> None:
    with ReviewrankClient(client.target, attempts=5, backoff=10.0) as shop:
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            shop.rate("bad-1", "p1", "u1", 9)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert time.monotonic() - began < 5.0  # no 10 s backoff: not retried


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_write_to_a_server_not_yet_up_is_retried_with_its_event_id(
    start_server: Callable[..., Client],
) -> None:
    port = free_port()
    outcomes: list[str] = []
    shop = ReviewrankClient(f"127.0.0.1:{port}", timeout=1.0, attempts=30, backoff=0.05)
    writer = threading.Thread(target=lambda: outcomes.append(shop.rate("late-1", "p", "u", 3)))
    writer.start()
    time.sleep(0.5)  # the first attempts find no server

    server = start_server(address=f"127.0.0.1:{port}")
    writer.join(60)

    assert ["APPLIED"] == outcomes
    assert "DUPLICATE" == shop.rate("late-1", "p", "u", 3)
    assert [1] == [s.rating_count for s in shop.stats(["p"])]
    shop.close()
    assert server.port == port


SCRIPT = """
import importlib.util, sys
from reviewrank.client import Client
missing = [m for m in ("numpy", "scipy", "psycopg", "service", "ranking")
           if importlib.util.find_spec(m) is not None]
assert not missing, f"the server's packages came along: {missing}"
with Client(sys.argv[1]) as shop:
    print(shop.rate("venv-1", "venv-p", "venv-u", 5), shop.rank({"venv-p": 1.0})[0][0])
"""


def test_the_client_distribution_installs_alone_and_calls_the_server(
    client: Client, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "-c", str(ROOT / "constraints.txt"), str(ROOT / "clients" / "python")],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip

    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SCRIPT, client.target],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip

    assert 0 == done.returncode, done.stderr
    assert "APPLIED venv-p" == done.stdout.strip()
