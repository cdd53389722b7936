"""release_memory hands freed C-heap pages back to the OS (glibc ``malloc_trim``)."""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

from datanet._memory import FULL_COLLECTION_THRESHOLD, _trim, rare_full_collections, release_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux") or _trim() is None,
                    reason="glibc malloc_trim only")
def test_release_memory_returns_freed_heap_pages() -> None:
    # 2,000 blocks of 100 KB (under glibc's 128 KB mmap threshold: they come from the heap),
    # touched, then freed under a live block above them, so free() cannot shrink the heap
    blocks = [np.ones(100_000, dtype=np.uint8) for _ in range(2_000)]
    pin = np.ones(100_000, dtype=np.uint8)
    before = _rss_mb()
    del blocks
    held = _rss_mb()
    release_memory()
    after = _rss_mb()
    assert held > before - 50  # the freed pages were still counted
    assert after < held - 150  # ~190 MB went back
    assert pin.sum() == 100_000


def test_full_collections_are_rarer_inside_a_run_and_the_thresholds_come_back():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with rare_full_collections():
            assert gc.get_threshold() == (700, 10, FULL_COLLECTION_THRESHOLD)
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(KeyError), rare_full_collections():
            raise KeyError("x")
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(700, 10, 500)  # never lowered
        with rare_full_collections():
            assert gc.get_threshold() == (700, 10, 500)
    finally:
        gc.set_threshold(*before)
