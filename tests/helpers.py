"""Request builders, status, health and database helpers shared by the tests."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from reviewrank.service.api.auth import BearerToken
from reviewrank.service.domain.values import ProductRow
from reviewrank.service.storage.tables import EXPORT_TABLES
from reviewrank.v1 import feedback_pb2, ranking_pb2, ranking_pb2_grpc

if TYPE_CHECKING:
    from reviewrank.service.app.settings import Settings
    from reviewrank.service.app.store import Store, WeightsRow
    from tests.conftest import Client

_ids = itertools.count(1)


def next_id(prefix: str = "e") -> str:
    return f"{prefix}-{next(_ids)}"


def ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def rating(
    product: str,
    user: str,
    stars: int,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    category: str = "",
    verified: bool = False,
) -> feedback_pb2.SubmitRatingRequest:
    request = feedback_pb2.SubmitRatingRequest(
        event_id=event_id or next_id(),
        product_id=product,
        user_id=user,
        stars=stars,
        category=category,
        verified_purchase=verified,
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def like(
    product: str,
    user: str,
    value: int = feedback_pb2.LIKE,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    verified: bool = False,
) -> feedback_pb2.SubmitLikeRequest:
    request = feedback_pb2.SubmitLikeRequest(
        event_id=event_id or next_id(),
        product_id=product,
        user_id=user,
        value=value,
        verified_purchase=verified,
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def share(
    product: str,
    user: str,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    channel: str = "",
) -> feedback_pb2.SubmitShareRequest:
    request = feedback_pb2.SubmitShareRequest(
        event_id=event_id or next_id(), product_id=product, user_id=user, channel=channel
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def comment(
    product: str,
    user: str,
    text: str | None = None,
    score: float | None = None,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    channel: str = "",
    language: str = "",
) -> feedback_pb2.SubmitCommentRequest:
    """A comment: its text, or the sender's score."""
    request = feedback_pb2.SubmitCommentRequest(
        event_id=event_id or next_id(),
        product_id=product,
        user_id=user,
        channel=channel,
        language=language,
    )
    if text is not None:
        request.text = text
    if score is not None:
        request.score = score
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def poll_vote(
    poll: str,
    user: str,
    shown: Sequence[str],
    chosen: str,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    channel: str = "",
) -> feedback_pb2.SubmitPollVoteRequest:
    """A vote in a poll: the products shown, the one chosen."""
    request = feedback_pb2.SubmitPollVoteRequest(
        event_id=event_id or next_id(),
        poll_id=poll,
        user_id=user,
        shown=list(shown),
        chosen=chosen,
        channel=channel,
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def batch(*events: object) -> feedback_pb2.SubmitBatchRequest:
    items = []
    for event in events:
        if isinstance(event, feedback_pb2.SubmitRatingRequest):
            items.append(feedback_pb2.FeedbackEvent(rating=event))
        elif isinstance(event, feedback_pb2.SubmitShareRequest):
            items.append(feedback_pb2.FeedbackEvent(share=event))
        elif isinstance(event, feedback_pb2.SubmitCommentRequest):
            items.append(feedback_pb2.FeedbackEvent(comment=event))
        elif isinstance(event, feedback_pb2.SubmitPollVoteRequest):
            items.append(feedback_pb2.FeedbackEvent(poll_vote=event))
        else:
            assert isinstance(event, feedback_pb2.SubmitLikeRequest)
            items.append(feedback_pb2.FeedbackEvent(like=event))
    return feedback_pb2.SubmitBatchRequest(events=items)


def explaining(client: Client) -> ranking_pb2_grpc.RankingServiceStub:
    """A RankingService stub sending the admin token, which explained rankings need."""
    channel = grpc.intercept_channel(client.channel, BearerToken(client.settings.admin_token))
    return ranking_pb2_grpc.RankingServiceStub(channel)


def candidates(*items: str | tuple[str, float]) -> list[ranking_pb2.Candidate]:
    out = []
    for item in items:
        product, relevance = (item, 1.0) if isinstance(item, str) else item
        out.append(ranking_pb2.Candidate(product_id=product, relevance=relevance))
    return out


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """The google.rpc.BadRequest field violations of a failed call, field -> description."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status attached"
    out = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def health(client: Client, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(client.channel)
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return status


def wait_for_health(client: Client, service: str, status: int, seconds: float = 10) -> float:
    """Seconds until the service reports the status; AssertionError after ``seconds``."""
    started = time.monotonic()
    while health(client, service) != status:
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{service or 'server'} never became {status}")
        time.sleep(0.02)
    return time.monotonic() - started


def sqlite_rows(database: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on a SQLite file, opened read-only on a connection of its own."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def stored_event_ids(database: Path) -> set[str]:
    return {row[0] for row in sqlite_rows(database, "SELECT event_id FROM events")}


def query(settings: Settings, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the database the settings name, SQLite or PostgreSQL
    (``?`` placeholders; bytea comes back as bytes), on a connection of its own."""
    where = settings.storage
    if where.path is not None:
        return sqlite_rows(where.path, sql, params)
    import psycopg

    with psycopg.connect(where.url, autocommit=True) as pg:
        rows = pg.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


@contextmanager
def write_lock_held_elsewhere(database: Path) -> Iterator[None]:
    """Another process holds the database's write lock (BEGIN IMMEDIATE) until the end."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()",
            str(database),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert "locked" == holder.stdout.readline().strip()
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


# One weights_history row (service/storage/base.py WeightsRow) for stores that need one.
WEIGHTS_ROW: WeightsRow = (
    1, 1_700_000_000_000_000, "file", "data/weights.toml", "startup", "", "", None,
    "ab" * 32, "[profiles.default]\n",
)  # fmt: skip


def exported(store: Store, chunk: int) -> dict[str, Any]:
    """Everything an export carries (read ``chunk`` rows at a time), each table's rows
    sorted (the backends' collations differ)."""
    parts = list(store.export(chunk=chunk))
    tables: dict[str, list[tuple[Any, ...]]] = {table: [] for table in EXPORT_TABLES}
    for table, rows in parts[1:]:
        tables[table] += rows
    return {"seq": parts[0][1][0][0]} | {t: sorted(rows, key=repr) for t, rows in tables.items()}


def product_row(idx: int, stars: int, count: int, seq: int) -> ProductRow:
    """Product ``p<idx>`` of category "dresses" with ``count`` ratings of ``stars`` stars, as
    the writer hands it to the catalogue after commit ``seq``."""
    histogram = tuple(count if s == stars else 0 for s in range(1, 6))
    return ProductRow(
        idx=idx,
        product_id=f"p{idx}",
        category="dresses",
        rating_count=count,
        star_sum=stars * count,
        histogram=histogram,  # type: ignore[arg-type]
        likes=0,
        dislikes=0,
        seq=seq,
    )
