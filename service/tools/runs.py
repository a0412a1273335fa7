"""What the benchmark runs share: which CPUs the server and the clients are pinned to,
and fresh copies of a database for each run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _cpus() -> tuple[set[int] | None, tuple[int, ...] | None]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return {available[0]}, tuple(available[1:])


SERVER_CPUS, CLIENT_CPUS = _cpus()


def fresh_copy(source: Path, copy: Path) -> Path:
    """``copy`` made afresh from ``source``, with its catalogue snapshot if it has one,
    and on disk before it returns: written back later, the copies of a million products
    (140 MB) slowed the first scenarios by a third."""
    for stale in copy.parent.glob(copy.name + "*"):
        stale.unlink()
    pairs = [(source, copy)]
    snapshot = source.with_name(source.name + ".catalogue.npz")
    if snapshot.exists():
        pairs.append((snapshot, copy.with_name(copy.name + ".catalogue.npz")))
    for origin, target in pairs:
        shutil.copyfile(origin, target)
        with target.open("rb+") as written:
            os.fsync(written.fileno())
    return copy
