"""Handing memory freed by the start-up load back to the operating system.

Loading a large catalogue builds temporary Python objects (lists of ids and row
numbers, the rows read) by the million. Once they are freed the C allocator keeps
their pages for reuse, so the process stays that much larger than what it holds:
about 55 MB with 1,000,000 products. glibc's ``malloc_trim(0)`` returns them.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_free_memory() -> bool:
    """Returns freed heap pages to the OS; False when the C library cannot."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True
