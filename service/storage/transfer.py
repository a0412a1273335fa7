"""Export and import of a whole database: the way from SQLite to PostgreSQL and back.

The file is JSON Lines (UTF-8), gzip-compressed when its name ends in ``.gz``; ``-``
means standard output or input. Line by line:

1. a header: ``{"format": "reviewrank-export", "version": 7, "seq": N,
   "exported_at": "<ISO 8601>", "source": "sqlite" | "postgresql",
   "tables": {table: [column, …]}}``;
2. one line per row, ``{"t": table, "r": [value, …]}`` with the values in the order of
   the header's columns (``erased_events.event_hash`` hex-encoded);
3. a footer: ``{"end": "reviewrank-export", "seq": N, "counts": {table: rows}}``, so that
   a truncated file is noticed.

An export file is created readable by its owner only (it holds user ids). Both
directions stream: neither holds more than a chunk of rows in memory. An export
is one consistent snapshot of the source (one read transaction). An import goes into an
empty database only (weights versions it holds already are kept), in one transaction
that commits only if the footer's counts match and the aggregates equal a recount;
anything wrong leaves the target as it was and raises :class:`TransferError`.

Older files still import: version 1 (before shares: no ``shares`` table, no
``products.shares`` nor ``events.channel`` column) and version 2 (no
``products.listed_at_us``) and version 3 (before comments: no ``comments`` table nor
the products' comment sums) and version 4 (before poll votes: no ``poll_votes`` table
nor the products' poll counts) and version 5 (before burst decisions: no
``burst_decisions`` table) and version 6 (before verified purchases: no ``verified``
column of ratings and likes, which are then not verified); the missing columns take
their defaults, and a product's unknown listing time its earliest event's (as migration
m008 sets it).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from reviewrank.ranking.polls import MAX_SHOWN, MIN_SHOWN, ballot_faults
from reviewrank.service.app.store import POSTGRESQL, SQLITE, Store
from reviewrank.service.storage.tables import EXPORT_TABLES

FORMAT = "reviewrank-export"
VERSION = 7
# What each version added: columns appended to a table (with the value rows of older
# files take; a listing time of 0 is filled in by the store's finish_restore), and tables.
_COLUMNS_ADDED: dict[int, dict[str, tuple[tuple[str, Any], ...]]] = {
    2: {"products": (("shares", 0),), "events": (("channel", ""),)},
    3: {"products": (("listed_at_us", 0),)},
    4: {"products": (("comments", 0), ("sentiment_sum", 0), ("sentiment_squares", 0))},
    5: {"products": (("polls_shown", 0), ("polls_won", 0))},
    7: {"ratings": (("verified", 0),), "likes": (("verified", 0),)},
}
_TABLES_ADDED: dict[int, frozenset[str]] = {
    2: frozenset({"shares"}),
    4: frozenset({"comments"}),
    5: frozenset({"poll_votes"}),
    6: frozenset({"burst_decisions"}),
}
STDIO = "-"
GZIP_MAGIC = b"\x1f\x8b"
IMPORT_CHUNK = 5_000  # rows per store.restore() call
EXPORT_CHUNK = 10_000  # rows per read from the source

# Column types (all other columns are integers, never null).
_TEXT = frozenset(
    {
        "product_id",
        "category",
        "more_categories",
        "display",
        "user_id",
        "event_id",
        "kind",
        "outcome",
        "source_kind",
        "source",
        "trigger",
        "actor",
        "reason",
        "content_sha256",
        "content",
        "channel",
        "language",
        "analyzer",
        "poll_id",
        "chosen",
        "shown",
    }
)
_BYTES = frozenset({"event_hash"})  # hex in the file
_NULLABLE = frozenset({"rollback_of"})
# Columns holding a sequence number: none may exceed the header's.
_SEQ_COLUMN = {"products": "seq", "events": "seq"}


class TransferError(ValueError):
    """The export file cannot be written or imported (the message says why)."""


@dataclass(frozen=True)
class TransferResult:
    """What an export wrote or an import read."""

    seq: int  # the sequence number of the snapshot
    counts: dict[str, int]  # rows per table, in the order of EXPORT_TABLES
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def backend_kind(store: Store) -> str:
    """ "sqlite" or "postgresql" (the header's ``source``)."""
    from reviewrank.service.storage.sqlite.store import SQLiteStore

    if isinstance(store, SQLiteStore):
        return SQLITE
    module = type(store).__module__
    return POSTGRESQL if module.endswith("store_postgres") else type(store).__name__


# -- export ---------------------------------------------------------------------------------


def _encoder(table: str) -> Any:
    """A function from a row to its line (bytes values hex-encoded)."""
    prefix = json.dumps({"t": table})[:-1] + ', "r": '
    hex_at = [i for i, name in enumerate(EXPORT_TABLES[table]) if name in _BYTES]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def encode(row: Sequence[Any]) -> str:
        values = list(row)
        for i in hex_at:
            value = values[i]
            if isinstance(value, bytes | bytearray | memoryview):
                values[i] = bytes(value).hex()
        return f"{prefix}{dumps(values)}}}\n"

    return encode


@contextlib.contextmanager
def _output(file: str | Path) -> Iterator[IO[bytes]]:
    """A binary stream to ``file`` (stdout for "-"), gzip-compressed for a ``.gz`` name.
    A file appears under its name only once complete: written next to it, then renamed."""
    if str(file) == STDIO:
        stdout = sys.stdout.buffer
        yield stdout
        stdout.flush()
        return
    path = Path(file)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise TransferError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename=path.name[:-3], mode="wb", fileobj=raw, compresslevel=6
                ) as compressed:
                    yield cast(IO[bytes], compressed)
            else:
                yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def export_to(store: Store, file: str | Path, *, chunk: int = EXPORT_CHUNK) -> TransferResult:
    """Writes every exported table of ``store`` to ``file`` ("-": stdout), streaming."""
    started = time.monotonic()
    counts = dict.fromkeys(EXPORT_TABLES, 0)
    parts = store.export(chunk)
    try:
        first = next(parts, None)
        if first is None or first[0] != "seq":
            raise TransferError("the store's export did not start with its sequence number")
        seq = int(first[1][0][0])
        header = {
            "format": FORMAT,
            "version": VERSION,
            "seq": seq,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": backend_kind(store),
            "tables": {table: list(columns) for table, columns in EXPORT_TABLES.items()},
        }
        encoders = {table: _encoder(table) for table in EXPORT_TABLES}
        with _output(file) as out:
            out.write(json.dumps(header).encode() + b"\n")
            for table, rows in parts:
                encode = encoders[table]
                out.write("".join(encode(row) for row in rows).encode("utf-8"))
                counts[table] += len(rows)
            footer = {"end": FORMAT, "seq": seq, "counts": counts}
            out.write(json.dumps(footer).encode() + b"\n")
    except OSError as exc:
        raise TransferError(f"cannot write {file}: {exc.strerror or exc}") from exc
    finally:
        close = getattr(parts, "close", None)  # a generator: ends the source's transaction
        if close is not None:
            close()
    return TransferResult(seq, counts, time.monotonic() - started)


# -- import ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _input(file: str | Path) -> Iterator[IO[bytes]]:
    """A binary stream of ``file`` (stdin for "-"), decompressed if it is gzip."""
    if str(file) == STDIO:
        stdin = sys.stdin.buffer
        if not isinstance(stdin, io.BufferedReader):
            stdin = io.BufferedReader(cast(Any, stdin))
        if stdin.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=stdin) as compressed:
                yield cast(IO[bytes], compressed)
        else:
            yield stdin
        return
    try:
        raw = open(file, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise TransferError(f"cannot read {file}: {exc.strerror or exc}") from exc
    with raw:
        if str(file).endswith(".gz") or raw.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw) as compressed:
                yield cast(IO[bytes], compressed)
        else:
            yield raw


def _parse(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise TransferError(f"line {number}: not JSON ({exc}): the file is damaged") from exc
    if not isinstance(value, dict):
        raise TransferError(f"line {number}: expected a JSON object")
    return value


def _tables_of(version: int) -> dict[str, list[str]]:
    """The tables and columns of an export of that version."""
    tables = {table: list(columns) for table, columns in EXPORT_TABLES.items()}
    for later in range(version + 1, VERSION + 1):
        for table, added in _COLUMNS_ADDED.get(later, {}).items():
            for column, _ in added:
                tables[table].remove(column)
        for table in _TABLES_ADDED.get(later, ()):
            del tables[table]
    return tables


def _defaults_of(version: int) -> dict[str, list[Any]]:
    """Per table, the values appended to a row of a file of that version (its columns
    added since, in order)."""
    defaults: dict[str, list[Any]] = {}
    for later in range(version + 1, VERSION + 1):
        for table, added in _COLUMNS_ADDED.get(later, {}).items():
            defaults.setdefault(table, []).extend(value for _, value in added)
    return defaults


def _check_header(header: dict[str, Any]) -> tuple[int, int]:
    """The header's sequence number and version, if the header is one this version reads."""
    if header.get("format") != FORMAT:
        raise TransferError(f"not a reviewrank export (line 1 has no format {FORMAT!r})")
    version = header.get("version")
    if type(version) is not int or not 1 <= version <= VERSION:
        raise TransferError(
            f"export format version {version!r}: this reviewrank reads 1 to {VERSION}"
        )
    assert isinstance(version, int)
    seq = header.get("seq")
    if type(seq) is not int or seq < 0:
        raise TransferError(f"header: bad sequence number {seq!r}")
    tables = header.get("tables")
    if tables is not None:
        expected = _tables_of(version)
        if tables != expected:
            raise TransferError(
                "header: the file's tables and columns differ from this reviewrank's "
                f"(file {tables!r})"
            )
    return seq, version


def _kind(column: str) -> str:
    if column in _TEXT:
        return "text"
    if column in _BYTES:
        return "bytes"
    return "int?" if column in _NULLABLE else "int"


def _decoder(table: str) -> Any:
    """A function checking a row's values and returning them as the store takes them."""
    columns = [(i, name, _kind(name)) for i, name in enumerate(EXPORT_TABLES[table])]
    width = len(columns)

    def decode(values: Any, number: int) -> tuple[Any, ...]:
        if not isinstance(values, list) or len(values) != width:
            raise TransferError(f"line {number}: {table} rows have {width} values")
        for i, name, kind in columns:
            value = values[i]
            if kind == "int":
                ok = type(value) is int
            elif kind == "text":
                ok = type(value) is str
            elif kind == "int?":
                ok = value is None or type(value) is int
            else:
                ok = type(value) is str
                if ok:
                    try:
                        values[i] = bytes.fromhex(value)
                    except ValueError:
                        ok = False
            if not ok:
                raise TransferError(f"line {number}: {table}.{name}: bad value {value!r}")
        if table == "poll_votes":
            _check_ballot(values[2], values[-1], number)
        return tuple(values)

    return decode


def _check_ballot(chosen: str, shown: str, number: int) -> None:
    """A poll vote's products shown: a JSON array of 2 to 10 distinct ids, the product
    chosen among them (what the service takes; the recount checks the products' counts)."""
    try:
        products = json.loads(shown)
    except ValueError:
        products = None
    if (
        not isinstance(products, list)
        or not all(isinstance(p, str) and p for p in products)
        or ballot_faults(products, chosen)
    ):
        raise TransferError(
            f"line {number}: poll_votes.shown: want a JSON array of {MIN_SHOWN} to"
            f" {MAX_SHOWN} distinct product ids holding the one chosen, got {shown!r}"
        )


def _require_empty(store: Store) -> None:
    events = store.count_events()
    seq = store.last_seq()
    products = 0 if events or seq else len(store.load_products().product_ids)
    if events or seq or products:
        raise TransferError(
            f"{store.location} is not empty ({events} events, sequence {seq}"
            f"{f', {products} products' if products else ''}): "
            "an export is imported into an empty database only"
        )


def is_empty(store: Store) -> bool:
    """No events, no products, sequence 0 (what import_from requires)."""
    try:
        _require_empty(store)
    except TransferError:
        return False
    return True


def import_from(store: Store, file: str | Path, *, chunk: int = IMPORT_CHUNK) -> TransferResult:
    """Reads an export into ``store``, which must hold no events or products: all of it in
    one transaction, or (raising TransferError or StoreError) nothing at all."""
    started = time.monotonic()
    counts = dict.fromkeys(EXPORT_TABLES, 0)
    with _input(file) as stream:
        try:
            lines = iter(stream)
            first = next(lines, None)
            if first is None:
                raise TransferError(f"{file} is empty: not a reviewrank export")
            seq, version = _check_header(_parse(first, 1))
            _require_empty(store)
            try:
                footer = _restore_rows(store, lines, counts, seq, chunk, version)
                _check_footer(footer, counts, seq, version)
                store.finish_restore(seq)
            except BaseException:
                store.abort_restore()
                raise
        except (EOFError, OSError, zlib.error) as exc:
            raise TransferError(f"cannot read {file}: {exc} (truncated or damaged)") from exc
    return TransferResult(seq, counts, time.monotonic() - started)


def _restore_rows(
    store: Store,
    lines: Iterator[bytes],
    counts: dict[str, int],
    seq: int,
    chunk: int,
    version: int = VERSION,
) -> dict[str, Any] | None:
    """Passes the rows on to store.restore in chunks; returns the footer (None if missing).
    Rows of an older file get the columns added since, with their defaults."""
    decoders = {table: _decoder(table) for table in EXPORT_TABLES}
    known = set(_tables_of(version))
    added = _defaults_of(version)
    seq_at = {table: EXPORT_TABLES[table].index(column) for table, column in _SEQ_COLUMN.items()}
    footer: dict[str, Any] | None = None
    table: str | None = None
    pending: list[tuple[Any, ...]] = []
    for number, line in enumerate(lines, start=2):
        if footer is not None:
            raise TransferError(f"line {number}: data after the footer")
        record = _parse(line, number)
        if "t" not in record:
            if record.get("end") != FORMAT:
                raise TransferError(f"line {number}: neither a row nor the footer")
            footer = record
            continue
        name = record["t"]
        if name not in known:
            raise TransferError(f"line {number}: unknown table {name!r}")
        values = record.get("r")
        if name in added and isinstance(values, list):
            values = [*values, *added[name]]
        row = decoders[name](values, number)
        if name in seq_at and row[seq_at[name]] > seq:
            raise TransferError(
                f"line {number}: {name} row at sequence {row[seq_at[name]]}, "
                f"after the header's {seq}"
            )
        if name != table or len(pending) >= chunk:
            if pending:
                assert table is not None
                store.restore(table, pending)
            table, pending = name, []
        pending.append(row)
        counts[name] += 1
    if pending:
        assert table is not None
        store.restore(table, pending)
    return footer


def _check_footer(
    footer: dict[str, Any] | None, counts: dict[str, int], seq: int, version: int = VERSION
) -> None:
    if footer is None:
        raise TransferError(
            f"the file ends without its footer after {sum(counts.values())} rows: truncated"
        )
    if footer.get("seq") != seq:
        raise TransferError(f"footer: sequence {footer.get('seq')!r}, header {seq}")
    expected = footer.get("counts")
    if not isinstance(expected, dict) or set(expected) != set(_tables_of(version)):
        raise TransferError(f"footer: bad counts {expected!r}")
    expected = {**dict.fromkeys(EXPORT_TABLES, 0), **expected}
    wrong = [
        f"{t} {counts[t]} (footer {expected[t]!r})" for t in counts if counts[t] != expected[t]
    ]
    if wrong:
        raise TransferError("rows read differ from the footer's counts: " + ", ".join(wrong))
