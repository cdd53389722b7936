"""Give the C heap's free pages back to the operating system between phases of a run.

glibc keeps memory freed by large numpy / Python allocations in its heap (its mmap threshold
rises after the first large free), so a process's RSS stays at the high-water mark of an
earlier phase: measured on a 1M-record run, the commit started ~120 MB above what was live.
``malloc_trim(0)`` returns those pages (a few ms); lowering the mmap threshold instead cost
+30 % CPU. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable, Iterator

__all__ = ["release_memory", "rare_full_collections"]

#: CPython's third GC threshold during a run (default 10): a full collection after this many
#: collections of the middle generation (and only when the objects that survived them grew
#: by a quarter). A full pass walks every tracked object; a run allocates many short-lived
#: containers (parsed records, Beam's bundles), which made ~10 full passes per 100k records
#: (0.9 of 24 CPU-s measured on the benchmark corpus); at 100, one. Cyclic garbage is still
#: collected, later.
FULL_COLLECTION_THRESHOLD = 100


@functools.lru_cache(maxsize=1)
def _trim() -> Callable[[int], int] | None:
    # glibc's soname first: find_library runs ``ldconfig -p`` in a subprocess, a fork of a
    # process that may hold gigabytes by the time memory is first released
    for name in (lambda: "libc.so.6", lambda: ctypes.util.find_library("c")):
        try:
            return ctypes.CDLL(name()).malloc_trim  # type: ignore[no-any-return]
        except (OSError, AttributeError, TypeError):
            continue
    return None


def release_memory() -> None:
    """Trim the C heap (glibc ``malloc_trim``); no garbage collection (a full collection
    walks every object of the validators' engines: ~0.1 s)."""
    trim = _trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def rare_full_collections() -> Iterator[None]:
    """Full garbage collections ten times rarer for the block (the threshold of the oldest
    generation raised to :data:`FULL_COLLECTION_THRESHOLD`), restored after."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], max(before[2], FULL_COLLECTION_THRESHOLD))
    try:
        yield
    finally:
        gc.set_threshold(*before)
