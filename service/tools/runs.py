"""What the benchmark runs share: which CPUs the server and the clients are pinned to,
fresh copies of a database for each run, and writing a results table with its data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


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


def write_tables(out: Path, name: str, lines: list[str], data: dict[str, Any]) -> None:
    """``out``/``name``.md of ``lines`` and ``name``.json of ``data``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out / (name + '.md')} and {out / (name + '.json')}")
