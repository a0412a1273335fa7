"""A non-Python client against a real server: clients/node/client.js (Node.js with
@grpc/grpc-js, the .proto files loaded at run time), as `make test` installs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, rating

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node" / "client.js"


def node_client(client: Client, event_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CLIENT), client.target, event_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_node_client_submits_a_rating_and_reads_its_own_write(client: Client) -> None:
    client.feedback.SubmitBatch(batch(*[rating("node-good", f"u{i}", 5) for i in range(20)]))

    done = node_client(client, "node-event-1")

    assert 0 == done.returncode, done.stderr
    answer = json.loads(done.stdout)
    assert ("APPLIED", ["node-good", "node-unknown"]) == (answer["outcome"], answer["result_ids"])
    assert int(answer["seq"]) > 0
    stats = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["node-good"])
    )
    assert 21 == stats.stats[0].rating_count


def test_the_node_clients_retry_with_the_same_event_id_is_a_duplicate(client: Client) -> None:
    node_client(client, "node-event-2")

    done = node_client(client, "node-event-2")

    assert 0 == done.returncode, done.stderr
    assert "DUPLICATE" == json.loads(done.stdout)["outcome"]


def test_the_node_client_reports_an_unreachable_server_by_its_status() -> None:
    done = subprocess.run(
        ["node", str(CLIENT), "127.0.0.1:1", "e"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert 1 == done.returncode
    assert done.stderr.startswith("UNAVAILABLE: ")
