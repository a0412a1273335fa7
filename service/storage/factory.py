"""Opening a store: the database a URL names, checked before it is served."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from reviewrank.service.app.settings import Settings
from reviewrank.service.app.store import SQLITE, DatabaseURL, Store
from reviewrank.service.domain.errors import StorageProbeFailed, StorageUnavailable, StoreError
from reviewrank.service.storage.sqlite import integrity
from reviewrank.service.storage.sqlite.store import SQLiteStore


def open_store(
    database: DatabaseURL,
    *,
    synchronous: str = "FULL",
    busy_timeout_ms: int = 5000,
    migrate: bool = True,
) -> Store:
    """Opens (and, with ``migrate``, creates or upgrades) the database the URL names."""
    if database.kind == SQLITE:
        from reviewrank.service.storage.sqlite.store import SQLiteStore

        assert database.path is not None
        return SQLiteStore(
            database.path,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            migrate=migrate,
        )
    from reviewrank.service.storage.postgres.store import PostgresStore

    return PostgresStore(database.url, busy_timeout_ms=busy_timeout_ms, migrate=migrate)


def open_checked_store(
    settings: Settings, meanwhile: Callable[[Store], None] | None = None
) -> tuple[Store, str]:
    """Opens (creating or upgrading its schema) the database and proves that it can
    commit a write: a server that cannot store feedback refuses to start, naming the
    database and the cause. An embedded database is checked too (storage/sqlite/integrity.py):
    one found damaged is served read-only, and the second value says why ("" if sound).
    ``meanwhile(store)`` runs (reads only) while the check does."""
    where = settings.storage
    damage = ""
    if where.path is not None:
        damage = integrity.check_wal(where.path)
    try:
        store = open_store(
            where, synchronous=settings.synchronous, busy_timeout_ms=settings.busy_timeout_ms
        )
    except StoreError as exc:
        raise StorageUnavailable(f"cannot open the database {where.display}: {exc}") from exc
    checking = None
    if where.path is not None and settings.integrity_check and not damage:
        checking = integrity.QuickCheck(where.path)
    try:
        if meanwhile is not None:
            meanwhile(store)
    except BaseException as exc:
        if checking is not None:
            checking.result()  # logged; the thread ends before the store closes
        with contextlib.suppress(StoreError):
            store.close()
        if isinstance(exc, StoreError):  # e.g. the products table's own pages are damaged
            raise StorageUnavailable(
                f"cannot read the database {where.display}: {exc}; {integrity.ADVICE}"
            ) from exc
        raise
    damage = damage or (checking.result() if checking is not None else "")
    if damage:
        assert isinstance(store, SQLiteStore)
        store.writes_refused = damage
        integrity.refuse_writes_log(store.location, damage)
        return store, damage
    try:
        store.probe()
    except StorageProbeFailed as exc:
        with contextlib.suppress(StoreError):
            store.close()
        raise StorageUnavailable(f"the database {where.display} cannot be written: {exc}") from exc
    return store, damage
