"""The catalogue at start-up and at shutdown: loaded from the snapshot of the last clean
shutdown when the database agrees with it (else from the products table), and saved
as a snapshot, its digest recorded in the database (service/app/snapshot.py: the file)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import structlog

from reviewrank.service.app import snapshot
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.store import SnapshotRecords, Store
from reviewrank.service.domain.errors import StoreError

log = structlog.get_logger("reviewrank.app")


def load_catalogue(catalogue: Catalogue, store: Store, database: Path, snapshots: bool) -> None:
    """From the snapshot of the last clean shutdown plus the rows changed since, if it
    agrees with the database; else from the products table (in one bulk read).
    ``snapshots``: whether snapshots are in use (SQLite only)."""
    if not snapshots:
        catalogue.load(store.load_products())
        return
    path = snapshot.path_for(database)
    columns = None
    try:
        problem = _record_problem(store, path)
        if not problem:
            columns = snapshot.load(path)
            problem = store.snapshot_problem(columns.seq, columns.idx, columns.product_ids)
    except FileNotFoundError:
        problem = ""
    except (OSError, ValueError, StoreError) as exc:
        problem = str(exc)
    if columns is None or problem:
        if problem:
            log.warning(
                "catalogue snapshot not used: reading every product from the database",
                path=str(path),
                problem=problem,
            )
        catalogue.load(store.load_products())
        return
    catalogue.load_columns(columns)
    catalogue.apply_feed(store.load_products(after_seq=columns.seq), None)
    log.info("catalogue loaded from snapshot", path=str(path), snapshot_seq=columns.seq)


def _record_problem(store: Store, path: Path) -> str:
    """Why the snapshot file is not the one this database recorded writing ("" if it
    is): an edited file with valid arrays would otherwise be served as it is."""
    records = cast(SnapshotRecords, store)  # snapshots are for SQLite
    if not path.exists():
        raise FileNotFoundError(path)
    recorded = records.recorded_snapshot()
    if recorded is None:
        return "the database holds no record of a snapshot"
    if recorded[1] != snapshot.digest(path):
        return "its digest differs from the one recorded when it was written"
    return ""


def save_snapshot(catalogue: Catalogue, store: Store, database: Path) -> None:
    """Writes the catalogue snapshot (at a clean shutdown, when no write is pending)
    and records its digest in the database."""
    records = cast(SnapshotRecords, store)
    path = snapshot.path_for(database)
    columns = catalogue.columns()
    try:
        records.record_snapshot(columns.seq, snapshot.save(columns, path))
    except (OSError, StoreError) as exc:
        log.warning("could not write the catalogue snapshot", path=str(path), error=str(exc))
