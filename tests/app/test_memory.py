"""Memory freed by the start-up load goes back to the operating system."""

from __future__ import annotations

import platform

import pytest

from reviewrank.service.app.memory import release_free_memory


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_pages_are_returned_to_the_os() -> None:
    release_free_memory()
    before = _rss_kb()
    # 40 MB of objects too big for Python's own allocator, then all but every 100th
    # freed: the C allocator keeps the pages between those still in use.
    garbage = [bytes([i % 256]) * 2000 for i in range(20_000)]
    kept = garbage[::100]
    del garbage
    held = _rss_kb()

    assert release_free_memory()

    assert _rss_kb() < held - 20_000  # at least half of the 40 MB returned
    assert before < held
    assert kept
