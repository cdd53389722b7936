"""ArrayMemo: a hit only for the very same array data and key, in the same thread."""

from __future__ import annotations

import threading

import pyarrow as pa

from datanet._memo import ArrayMemo


def test_hit_only_for_the_same_buffers_slice_and_key() -> None:
    memo: ArrayMemo[int] = ArrayMemo()
    calls: list[int] = []

    def compute(arr: pa.Array) -> int:
        calls.append(len(arr))
        return sum(len(s) for s in arr.to_pylist())

    a = pa.array(["ab", "cde", "f"])
    assert memo.get(a, "k", compute) == 6
    assert memo.get(a, "k", compute) == 6  # same object
    assert memo.get(pa.chunked_array([a]).chunk(0), "k", compute) == 6  # same buffers
    assert len(calls) == 1
    assert memo.get(pa.array(["ab", "cde", "f"]), "k", compute) == 6  # equal, other buffers
    assert memo.get(a.slice(1), "k", compute) == 4  # same buffers, another slice
    assert memo.get(a.slice(1), "other", compute) == 4  # another key
    assert calls == [3, 3, 2, 2]
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(memo.get(a.slice(1), "other", compute)))
    t.start()
    t.join()
    assert seen == [4] and calls == [3, 3, 2, 2, 2]  # each thread keeps its own
