"""PostgreSQL storage: the same schema and semantics as service/storage/sqlite/store.py, shared by
many replicas (psycopg 3 with a connection pool).

Writers from every replica serialise on the row ``meta.seq`` (``SELECT … FOR UPDATE`` is
the first statement of each write transaction), so sequence numbers are taken without
gaps and committed in order: a reader that sees sequence ``n`` sees every change up to
``n``, which is what the change feed relies on. The rules themselves (duplicates,
newer wins, deltas) are decided in service/domain/voting.py; here they become set-based
statements over ``unnest`` arrays, a fixed number per transaction whatever its size.

A commit notifies the channel ``reviewrank_changes`` with its sequence number; each
replica's follower LISTENs on its own connection and polls as well, in case a
notification is lost with a connection.

Serialization failures, deadlocks, lock timeouts and lost connections roll the
transaction back and run it again (up to a few times, with backoff). That is safe
because events carry ids: if a lost connection hid a commit that did happen, the
events of the retry come back DUPLICATE, and the change feed brings the committed
rows into memory.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from service.app.store import (
    PRODUCT_NUMBERS,
    AppliedGroup,
    DatabaseURL,
    ProductTable,
    VoteTable,
    WeightsRow,
)
from service.domain.errors import StorageProbeFailed, StoreError
from service.domain.values import (
    Erasure,
    ErasureResult,
    Event,
    EventBatch,
    ProductRow,
    WriteResults,
)
from service.domain.voting import (
    VoteChanges,
    erasure_deltas,
    erasure_result,
    like_keys,
    plan_events,
    rating_keys,
)
from service.storage.common import (
    EXPORT_TABLES,
    LOAD_VOTES,
    PRODUCT_COLUMNS,
    RECOUNT_MISMATCHES,
    apply_jobs,
    event_hash,
    product_row,
)

T = TypeVar("T")

CHANNEL = "reviewrank_changes"
_MIGRATION_LOCK = 0x7265766965777261  # pg_advisory_xact_lock key: b"reviewra"
_ATTEMPTS = 5  # tries of one transaction before the storage is reported failing
_BACKOFF_SECONDS = 0.02

_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "m001_initial",
        [
            """CREATE TABLE products (
                idx INTEGER PRIMARY KEY,
                product_id TEXT NOT NULL UNIQUE,
                category TEXT NOT NULL DEFAULT '',
                rating_count BIGINT NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
                star_sum BIGINT NOT NULL DEFAULT 0 CHECK (star_sum >= 0),
                s1 BIGINT NOT NULL DEFAULT 0 CHECK (s1 >= 0),
                s2 BIGINT NOT NULL DEFAULT 0 CHECK (s2 >= 0),
                s3 BIGINT NOT NULL DEFAULT 0 CHECK (s3 >= 0),
                s4 BIGINT NOT NULL DEFAULT 0 CHECK (s4 >= 0),
                s5 BIGINT NOT NULL DEFAULT 0 CHECK (s5 >= 0),
                likes BIGINT NOT NULL DEFAULT 0 CHECK (likes >= 0),
                dislikes BIGINT NOT NULL DEFAULT 0 CHECK (dislikes >= 0),
                seq BIGINT NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX products_seq ON products (seq)",
            """CREATE TABLE ratings (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (product_id, user_id)
            )""",
            """CREATE TABLE likes (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                value INTEGER NOT NULL CHECK (value IN (-1, 0, 1)),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (product_id, user_id)
            )""",
            """CREATE TABLE events (
                event_id TEXT PRIMARY KEY,
                seq BIGINT NOT NULL UNIQUE,
                kind TEXT NOT NULL CHECK (kind IN ('rating', 'like')),
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                value INTEGER NOT NULL,
                occurred_at_us BIGINT NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
                recorded_at_us BIGINT NOT NULL
            )""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('seq', 0)",
        ],
    ),
    (
        "m002_erasure",
        [
            "CREATE INDEX ratings_user ON ratings (user_id)",
            "CREATE INDEX likes_user ON likes (user_id)",
            "CREATE INDEX events_user ON events (user_id)",
            """CREATE TABLE erased_events (
                event_hash BYTEA PRIMARY KEY,
                erased_at_us BIGINT NOT NULL
            )""",
        ],
    ),
    (
        "m003_weights_history",
        [
            """CREATE TABLE weights_history (
                version INTEGER PRIMARY KEY CHECK (version >= 1),
                applied_at_us BIGINT NOT NULL,
                source_kind TEXT NOT NULL CHECK (source_kind IN ('file', 'inline', 'rollback')),
                source TEXT NOT NULL,
                trigger TEXT NOT NULL,
                actor TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '',
                rollback_of INTEGER,
                content_sha256 TEXT NOT NULL,
                content TEXT NOT NULL
            )""",
        ],
    ),
    (
        # As SQLite's m004_rowid_tables (PostgreSQL's tables are heaps already): the votes
        # are unique by (user_id, product_id) and indexed by product_id (was: the other way
        # round), and nothing indexes the event log's seq, which nothing reads by.
        "m004_rowid_tables",
        [
            "DROP INDEX ratings_user",
            "ALTER TABLE ratings DROP CONSTRAINT ratings_pkey",
            "ALTER TABLE ratings ADD PRIMARY KEY (user_id, product_id)",
            "CREATE INDEX ratings_product ON ratings (product_id)",
            "DROP INDEX likes_user",
            "ALTER TABLE likes DROP CONSTRAINT likes_pkey",
            "ALTER TABLE likes ADD PRIMARY KEY (user_id, product_id)",
            "CREATE INDEX likes_product ON likes (product_id)",
            "ALTER TABLE events DROP CONSTRAINT events_seq_key",
        ],
    ),
]

# Adds the deltas of several products in one statement; returns the rows as they are now.
_PRODUCT_UPDATE = f"""
UPDATE products AS p SET
    category = CASE WHEN d.category <> '' THEN d.category ELSE p.category END,
    rating_count = p.rating_count + d.n, star_sum = p.star_sum + d.s,
    s1 = p.s1 + d.s1, s2 = p.s2 + d.s2, s3 = p.s3 + d.s3, s4 = p.s4 + d.s4, s5 = p.s5 + d.s5,
    likes = p.likes + d.likes, dislikes = p.dislikes + d.dislikes, seq = d.seq
FROM unnest(%s::text[], %s::text[], %s::int[], %s::int[], %s::int[], %s::int[], %s::int[],
            %s::int[], %s::int[], %s::int[], %s::int[], %s::bigint[])
    AS d(product_id, category, n, s, s1, s2, s3, s4, s5, likes, dislikes, seq)
WHERE p.product_id = d.product_id
RETURNING {", ".join(f"p.{c.strip()}" for c in PRODUCT_COLUMNS.split(","))}
"""
_INSERT_EVENTS = """
INSERT INTO events
    (event_id, seq, kind, product_id, user_id, value, occurred_at_us, outcome, recorded_at_us)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[],
                     %s::bigint[], %s::text[], %s::bigint[])
"""
_UPSERT_VOTES = """
INSERT INTO {table} (product_id, user_id, {column}, occurred_at_us, event_id)
SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::bigint[], %s::text[])
ON CONFLICT (product_id, user_id) DO UPDATE SET
    {column} = excluded.{column}, occurred_at_us = excluded.occurred_at_us,
    event_id = excluded.event_id
"""
_CURRENT_VOTES = """
SELECT v.product_id, v.user_id, v.{column}, v.occurred_at_us, v.event_id
FROM unnest(%s::text[], %s::text[]) AS k(product_id, user_id)
JOIN {table} AS v ON v.product_id = k.product_id AND v.user_id = k.user_id
"""


def _retryable(error: psycopg.Error) -> bool:
    """Worth running the transaction again: serialization failure, deadlock, lock
    timeout, a lost or refused connection, the server shutting down or starting."""
    return isinstance(error, psycopg.OperationalError)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arguments of unnest)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresStore:
    """The PostgreSQL database behind one replica. apply() is called by one writer thread;
    the pool lets the feed, probes and tools use connections of their own."""

    def __init__(
        self,
        url: str,
        busy_timeout_ms: int = 5000,
        migrate: bool = True,
        pool_size: int = 4,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self.location = DatabaseURL.parse(url).display
        self.committing = (0, 0)
        self._restoring: psycopg.Connection[Any] | None = None  # an import's transaction
        self._busy_timeout_ms = int(busy_timeout_ms)
        # Waits for another replica's write transaction are bounded like SQLite's busy timeout.
        options = (
            f"-c lock_timeout={self._busy_timeout_ms} -c idle_in_transaction_session_timeout=60000"
        )
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "options": options, "application_name": "reviewrank"},
            timeout=connect_timeout_seconds,
            open=False,
            name="reviewrank",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_seconds)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {self.location} within {connect_timeout_seconds:g} s",
                fault=True,
            ) from exc
        try:
            if migrate:
                self.migrate()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def follower(self) -> PostgresFollower:
        return PostgresFollower(self.url)

    # -- the retry loop ---------------------------------------------------------------------

    def _run(self, action: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Runs ``work`` on a pooled connection, again after a retryable failure (it must
        do everything in one transaction). Anything else, or the last failure, is raised
        as StoreError."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except psycopg.Error as exc:
                if not _retryable(exc):
                    raise StoreError(f"{action}: {exc}", fault=False) from exc
                if attempt == _ATTEMPTS:
                    raise StoreError(f"{action}: {exc}", fault=True) from exc
            except PoolTimeout as exc:
                if attempt == _ATTEMPTS:
                    raise StoreError(
                        f"{action}: no database connection: {exc}", fault=True
                    ) from exc
            time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Creates or upgrades the schema (one replica at a time); returns what it applied."""

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            applied: list[str] = []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS reviewrank_migrations ("
                    " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in conn.execute("SELECT name FROM reviewrank_migrations")}
                for name, statements in _MIGRATIONS:
                    if name in done:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO reviewrank_migrations (name) VALUES (%s)", (name,))
                    applied.append(name)
            return applied

        return self._run("migrating the schema", work)

    def applied_migrations(self) -> list[str]:
        def work(conn: psycopg.Connection[Any]) -> list[str]:
            exists = conn.execute("SELECT to_regclass('reviewrank_migrations')").fetchone()
            if exists is None or exists[0] is None:
                return []
            rows = conn.execute("SELECT name FROM reviewrank_migrations ORDER BY name")
            return [r[0] for r in rows]

        return self._run("reading the migrations", work)

    # -- writes -----------------------------------------------------------------------------

    def apply(
        self, jobs: Sequence[Sequence[Event] | Erasure], now_us: int | None = None
    ) -> AppliedGroup:
        """Applies every job (events, or an erasure) in one transaction, in order, and
        commits before returning (again after a retryable failure)."""
        recorded_at = now_us if now_us is not None else time.time_ns() // 1000
        try:
            return self._run("write failed", lambda conn: self._apply(conn, jobs, recorded_at))
        finally:
            self.committing = (0, 0)

    def _apply(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[Sequence[Event] | Erasure],
        recorded_at: int,
    ) -> AppliedGroup:
        touched: dict[str, ProductRow] = {}
        votes = VoteChanges()
        with conn.transaction():
            cur = conn.cursor()
            row = cur.execute("SELECT value FROM meta WHERE key = 'seq' FOR UPDATE").fetchone()
            assert row is not None
            seq = seq_before = int(row[0])
            results, seq = apply_jobs(
                jobs,
                seq,
                lambda events, at: self._apply_events(cur, events, at, recorded_at, touched, votes),
                lambda user, at: self._erase(cur, user, at, recorded_at, touched, votes),
            )
            if seq != seq_before:
                cur.execute("UPDATE meta SET value = %s WHERE key = 'seq'", (seq,))
                cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(seq)))
            self.committing = (seq_before, seq)  # committed as the block ends
        return AppliedGroup(
            results=results,
            products=list(touched.values()),
            seq=seq,
            votes=votes,
            seq_before=seq_before,
        )

    def _known_event_ids(self, cur: psycopg.Cursor[Any], event_ids: list[str]) -> set[str]:
        unique = list(dict.fromkeys(event_ids))
        rows = cur.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)", (unique,))
        known = {r[0] for r in rows}
        erased_any = cur.execute("SELECT EXISTS (SELECT 1 FROM erased_events)").fetchone()
        if erased_any is not None and erased_any[0]:
            hashes = {event_hash(e): e for e in unique if e not in known}
            rows = cur.execute(
                "SELECT event_hash FROM erased_events WHERE event_hash = ANY(%s)", (list(hashes),)
            )
            known.update(hashes[bytes(r[0])] for r in rows)
        return known

    def _current_votes(
        self, cur: psycopg.Cursor[Any], table: str, column: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int, str]]:
        if not keys:
            return {}
        products, users = _columns(list(keys), 2)
        query = sql.SQL(_CURRENT_VOTES).format(
            table=sql.Identifier(table), column=sql.Identifier(column)
        )
        rows = cur.execute(query, (products, users))
        return {(p, u): (v, t, e) for p, u, v, t, e in rows}

    def _apply_events(
        self,
        cur: psycopg.Cursor[Any],
        events: EventBatch,
        seq: int,
        recorded_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> tuple[WriteResults, int]:
        plan = plan_events(
            events,
            self._known_event_ids(cur, events.event_ids),
            self._current_votes(cur, "ratings", "stars", rating_keys(events)),
            self._current_votes(cur, "likes", "value", like_keys(events)),
            seq,
            recorded_at,
        )
        if plan.events[0]:
            cur.execute(_INSERT_EVENTS, plan.events)
        for table, column, final in (
            ("ratings", "stars", plan.ratings),
            ("likes", "value", plan.likes),
        ):
            if final[0]:
                query = sql.SQL(_UPSERT_VOTES).format(
                    table=sql.Identifier(table), column=sql.Identifier(column)
                )
                cur.execute(query, final)
        if plan.deltas:
            self._write_products(cur, plan.product_updates(), touched)
            votes.add(plan.changes, touched)
        return plan.results, plan.seq

    def _write_products(
        self,
        cur: psycopg.Cursor[Any],
        updates: list[tuple[str, str, list[int], int]],
        touched: dict[str, ProductRow],
    ) -> None:
        """Creates the products not yet known (idx numbered on from the largest, with no
        gaps: writers are serialised) and adds the deltas; keeps the rows as they are now."""
        ids = [p for p, _, _, _ in updates]
        existing = {
            r[0]
            for r in cur.execute(
                "SELECT product_id FROM products WHERE product_id = ANY(%s)", (ids,)
            )
        }
        new = [(p, c, s) for p, c, _, s in updates if p not in existing]
        if new:
            top = cur.execute("SELECT coalesce(max(idx), 0) FROM products").fetchone()
            assert top is not None
            first = int(top[0]) + 1
            cur.execute(
                "INSERT INTO products (idx, product_id, category, seq)"
                " SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::bigint[])",
                (list(range(first, first + len(new))), *_columns(new, 3)),
            )
        rows = [(p, c, *d, s) for p, c, d, s in updates]
        for row in cur.execute(_PRODUCT_UPDATE, _columns(rows, 12)):
            touched[row[1]] = product_row(row)

    def _erase(
        self,
        cur: psycopg.Cursor[Any],
        user_id: str,
        seq: int,
        erased_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> ErasureResult:
        """As SQLiteStore._erase: removes the user's votes and events, keeps event-id hashes."""
        ratings = cur.execute(
            "DELETE FROM ratings WHERE user_id = %s RETURNING product_id, stars, occurred_at_us",
            (user_id,),
        ).fetchall()
        likes = cur.execute(
            "DELETE FROM likes WHERE user_id = %s RETURNING product_id, value, occurred_at_us",
            (user_id,),
        ).fetchall()
        event_ids = [
            r[0]
            for r in cur.execute(
                "DELETE FROM events WHERE user_id = %s RETURNING event_id", (user_id,)
            )
        ]
        if not (ratings or likes or event_ids):
            return ErasureResult(0, 0, 0, 0)
        if event_ids:
            cur.execute(
                "INSERT INTO erased_events (event_hash, erased_at_us)"
                " SELECT h, %s FROM unnest(%s::bytea[]) AS h ON CONFLICT DO NOTHING",
                (erased_at, [event_hash(e) for e in event_ids]),
            )
        deltas, removed = erasure_deltas(ratings, likes)
        if deltas:
            self._write_products(cur, [(p, "", d, seq) for p, d in deltas.items()], touched)
        votes.add(removed, touched)
        return erasure_result(ratings, likes, len(event_ids), seq)

    def probe(self, min_free_bytes: int = 0) -> None:
        """Raises StorageProbeFailed unless a small write transaction commits (the free
        space is the database server's to watch)."""

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('probe', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (time.time_ns() // 1000,),
                )

        try:
            with self._pool.connection(timeout=self._busy_timeout_ms / 1000) as conn:
                work(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageProbeFailed(f"test write failed: {exc}") from exc

    def save_weights_entry(self, row: WeightsRow) -> None:
        columns = EXPORT_TABLES["weights_history"]
        query = sql.SQL("INSERT INTO weights_history ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(query, row)

        self._run("recording the weights", work)

    # -- reads ------------------------------------------------------------------------------

    def last_seq(self) -> int:
        return self._run("reading the sequence number", _last_seq)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        return self._run("reading the products", lambda conn: _load_products(conn, after_seq))

    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable:
        return self._run("reading the votes", lambda conn: _load_votes(conn, products))

    def load_weights_history(self) -> list[WeightsRow]:
        columns = ", ".join(EXPORT_TABLES["weights_history"])

        def work(conn: psycopg.Connection[Any]) -> list[WeightsRow]:
            rows = conn.execute(f"SELECT {columns} FROM weights_history ORDER BY version")
            return [tuple(r) for r in rows]

        return self._run("reading the weights history", work)

    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str:
        """Why a catalogue snapshot taken at ``seq`` does not fit this database ("" if it does)."""
        last = self.last_seq()
        if last < seq:
            return f"the database is at sequence {last}, before the snapshot's {seq}"
        top = int(idx.max()) if idx.size else 0
        step = max(1, idx.size // 64)
        sample = [int(i) for i in idx[::step]]
        expected = dict(zip(sample, product_ids[::step], strict=True))

        def work(conn: psycopg.Connection[Any]) -> str:
            count = conn.execute("SELECT count(*) FROM products WHERE idx <= %s", (top,)).fetchone()
            if count is None or count[0] != idx.size:
                return "the database holds other products"
            rows = conn.execute(
                "SELECT idx, product_id FROM products WHERE idx = ANY(%s)", (sample,)
            )
            found = dict(rows.fetchall())
            for i in sample:
                if found.get(i) != expected[i]:
                    return f"product {i} differs"
            return ""

        return self._run("checking the snapshot", work)

    def count_events(self) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0

        return self._run("counting events", work)

    def aggregate_mismatches(self) -> list[str]:
        def work(conn: psycopg.Connection[Any]) -> list[str]:
            return sorted(r[0] for r in conn.execute(RECOUNT_MISMATCHES))

        return self._run("recounting", work)

    # -- export and import ------------------------------------------------------------------

    def export(self, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """As SQLiteStore.export: one REPEATABLE READ snapshot, streamed by a server cursor."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield "seq", [(_last_seq(conn),)]
                for table, names in EXPORT_TABLES.items():
                    with conn.cursor(name=f"export_{table}") as cur:
                        cur.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1")
                        while rows := cur.fetchmany(chunk):
                            yield table, [_plain(r) for r in rows]
        except psycopg.Error as exc:
            raise StoreError(f"exporting: {exc}", fault=_retryable(exc)) from exc

    def restore(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Copies exported rows in (COPY), in a transaction that finish_restore commits."""
        columns = EXPORT_TABLES[table]
        try:
            conn = self._restore_connection()
            with conn.cursor() as cur:
                if table == "weights_history":  # the target's own versions are kept
                    existing = {r[0] for r in cur.execute("SELECT version FROM weights_history")}
                    rows = [r for r in rows if r[0] not in existing]
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            self._abandon_restore()
            raise StoreError(f"importing {table}: {exc}", fault=_retryable(exc)) from exc

    def finish_restore(self, seq: int) -> None:
        try:
            conn = self._restore_connection()
            conn.execute("UPDATE meta SET value = %s WHERE key = 'seq'", (seq,))
            wrong = conn.execute(RECOUNT_MISMATCHES).fetchall()
            if wrong:
                raise StoreError(
                    f"imported aggregates differ from a recount for {len(wrong)} products",
                    fault=False,
                )
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(seq)))
            conn.execute("COMMIT")
            self._pool.putconn(conn)
            self._restoring = None
        except psycopg.Error as exc:
            self._abandon_restore()
            raise StoreError(f"finishing the import: {exc}", fault=_retryable(exc)) from exc
        except BaseException:
            self._abandon_restore()
            raise

    def _restore_connection(self) -> psycopg.Connection[Any]:
        """The connection of the import under way, in its open transaction."""
        if self._restoring is None:
            conn = self._pool.getconn()
            try:
                conn.execute("BEGIN")
            except BaseException:
                self._pool.putconn(conn)
                raise
            self._restoring = conn
        return self._restoring

    def abort_restore(self) -> None:
        """Rolls back what restore() copied in (an import that failed before finish_restore)."""
        self._abandon_restore()

    def _abandon_restore(self) -> None:
        conn, self._restoring = self._restoring, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            self._pool.putconn(conn)


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    """bytea arrives as memoryview or bytes: always bytes."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def _last_seq(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    assert row is not None
    return int(row[0])


# Bulk load, a page of rows per query: the numbers packed by the server into one bytea
# (int8send per value, 8 bytes big-endian each) that numpy reads as it is, and the ids
# and categories as two text arrays (decoded by psycopg's C loader). All three
# aggregates consume the same rows in one pass, so they line up; each row carries its
# idx. No Python object is made per row but the strings.
_LOAD_PAGE = f"""
SELECT count(*), max(idx),
    string_agg({" || ".join(f"int8send({c}::int8)" for c in PRODUCT_NUMBERS)}, ''::bytea),
    array_agg(product_id), array_agg(category)
FROM (SELECT * FROM products WHERE seq > %s AND idx > %s ORDER BY idx LIMIT %s) AS page
"""
_PAGE_ROWS = 500_000  # far below PostgreSQL's 1 GB limit on one value


def _load_products(conn: psycopg.Connection[Any], after_seq: int) -> ProductTable:
    """One snapshot: the sequence number and the rows changed after ``after_seq``
    (a 1,000,000-product catalogue in about a second)."""
    numbers: list[npt.NDArray[np.int64]] = []
    product_ids: list[str] = []
    categories: list[str] = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        seq = _last_seq(conn)
        last_idx = 0
        with conn.cursor(binary=True) as cur:
            while True:
                row = cur.execute(_LOAD_PAGE, (after_seq, last_idx, _PAGE_ROWS)).fetchone()
                if row is None or not row[0]:
                    break
                count, last_idx, packed, ids, cats = row
                page = np.frombuffer(packed, dtype=">i8").reshape(count, len(PRODUCT_NUMBERS))
                numbers.append(page.astype(np.int64))
                product_ids += ids
                categories += cats
                if count < _PAGE_ROWS:
                    break
    table = np.concatenate(numbers) if numbers else np.zeros((0, len(PRODUCT_NUMBERS)), np.int64)
    order = np.argsort(table[:, 0], kind="stable")  # by idx, as the SQLite store returns them
    if not np.array_equal(order, np.arange(order.size)):
        table = table[order]
        product_ids = [product_ids[i] for i in order.tolist()]
        categories = [categories[i] for i in order.tolist()]
    return ProductTable.from_numbers(table, product_ids, categories, seq)


def _load_votes(conn: psycopg.Connection[Any], products: Sequence[int] | None) -> VoteTable:
    with conn.cursor(binary=True) as cur:
        if products is None:
            cur.execute(LOAD_VOTES.format(where="", also=""))
        else:
            wanted = [int(p) for p in products]
            cur.execute(
                LOAD_VOTES.format(where="WHERE p.idx = ANY(%s)", also="AND p.idx = ANY(%s)"),
                (wanted, wanted),
            )
        return VoteTable.from_rows(cur.fetchall())


class PostgresFollower:
    """The change feed's reader: one connection that LISTENs and reads; if it is lost,
    the feed polls on a new one until it is back."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and conn.broken:
            with contextlib.suppress(psycopg.Error):
                conn.close()
            conn = self._conn = None
        if conn is None:
            try:
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="reviewrank-feed",
                )
                conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                raise StoreError(f"change feed connection: {exc}", fault=True) from exc
            self._conn = conn
        return conn

    def wait(self, timeout: float) -> None:
        """Until a commit is notified, or ``timeout`` seconds pass."""
        try:
            conn = self._connection()
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except (psycopg.Error, StoreError):
            time.sleep(timeout)  # polling, until the connection is back

    def wake(self) -> None:
        """Nothing to do: a wait lasts one poll interval at most."""

    def _read(self, action: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        try:
            return work(self._connection())
        except psycopg.Error as exc:
            raise StoreError(f"{action}: {exc}", fault=True) from exc

    def last_seq(self) -> int:
        return self._read("reading the sequence number", _last_seq)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        return self._read("reading the products", lambda conn: _load_products(conn, after_seq))

    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable:
        return self._read("reading the votes", lambda conn: _load_votes(conn, products))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
