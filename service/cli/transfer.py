"""``reviewrank migrate``, ``reviewrank export`` and ``reviewrank import --from-export``:
the schema, and moving a whole database between SQLite and PostgreSQL (service/storage/transfer.py).

    reviewrank migrate [--database PATH | --database-url URL]
    reviewrank export  [--database PATH | --database-url URL] --output FILE
    reviewrank import  --from-export FILE [--database PATH | --database-url URL]

FILE is JSON Lines, gzip-compressed when it ends in ``.gz``; ``-`` is stdout or stdin.
A database URL is only ever shown without its password.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reviewrank.service.app.store import SQLITE, DatabaseURL, Store
from reviewrank.service.cli.common import settings_from
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.transfer import (
    TransferError,
    TransferResult,
    export_to,
    import_from,
    is_empty,
)


def database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", type=Path, help="SQLite file (default data/reviewrank.db)")
    parser.add_argument(
        "--database-url",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME (chosen over --database)",
    )


def _open(where: DatabaseURL, args: argparse.Namespace, *, migrate: bool = True) -> Store:
    settings = settings_from(args)
    try:
        return open_store(
            where,
            synchronous=settings.synchronous,
            busy_timeout_ms=settings.busy_timeout_ms,
            migrate=migrate,
        )
    except StoreError as exc:
        raise TransferError(f"cannot open the database {where.display}: {exc}") from exc


def _counts(result: TransferResult) -> str:
    width = max(len(table) for table in result.counts)
    return "\n".join(f"  {table:<{width}}  {n:>12,}" for table, n in result.counts.items())


def cmd_migrate(args: argparse.Namespace) -> int:
    where = settings_from(args).storage
    try:
        store = _open(where, args, migrate=False)
        try:
            applied = store.migrate()
            current = store.applied_migrations()
        finally:
            store.close()
    except (TransferError, StoreError) as exc:
        print(f"reviewrank: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"{where.display}: applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        print(f"{where.display}: nothing to apply")
    print(f"schema up to date: {', '.join(current)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    where = settings_from(args).storage
    try:
        if where.kind == SQLITE and where.path is not None and not where.path.exists():
            raise TransferError(f"no database at {where.display}")
        store = _open(where, args)
        try:
            result = export_to(store, args.output)
        finally:
            store.close()
    except (TransferError, StoreError) as exc:
        print(f"reviewrank: export failed: {exc}", file=sys.stderr)
        return 1
    target = "stdout" if str(args.output) == "-" else str(args.output)
    print(
        f"exported {where.display} at sequence {result.seq:,} to {target}: "
        f"{result.rows:,} rows in {result.seconds:.2f} s\n{_counts(result)}",
        file=sys.stderr,
    )
    return 0


def cmd_import_export(args: argparse.Namespace) -> int:
    """``reviewrank import --from-export FILE``: an export file into an empty database."""
    if getattr(args, "server", None):
        print("reviewrank: --from-export imports into a database, not --server", file=sys.stderr)
        return 2
    where = settings_from(args).storage
    source = args.from_export
    try:
        store = _open(where, args)
        try:
            if getattr(args, "if_empty", False) and not is_empty(store):
                print(f"{where.display} is not empty: not importing")
                return 0
            result = import_from(store, source)
        finally:
            store.close()
    except (TransferError, StoreError) as exc:
        print(f"reviewrank: import failed, {where.display} unchanged: {exc}", file=sys.stderr)
        return 1
    name = "stdin" if str(source) == "-" else str(source)
    print(
        f"imported {name} into {where.display} at sequence {result.seq:,}: "
        f"{result.rows:,} rows in {result.seconds:.2f} s\n{_counts(result)}"
    )
    return 0


def register(commands: Any) -> None:
    """Adds ``migrate`` and ``export`` (``import --from-export`` is an option of import)."""
    migrate = commands.add_parser(
        "migrate", help="create or upgrade the database schema (SQLite or PostgreSQL)"
    )
    database_options(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    export = commands.add_parser(
        "export", help="write the whole database to a file (import it with import --from-export)"
    )
    database_options(export)
    export.add_argument(
        "--output",
        "-o",
        required=True,
        help="file to write: JSON Lines, gzip-compressed if it ends in .gz; - for stdout",
    )
    export.set_defaults(handler=cmd_export)
