"""The last value computed from one Arrow array, kept per thread.

Several validators derive the same thing from the same batch one after the other (the
homoglyph fold of the normalised text, its MinHash): the first computes it, the next ones
find it here. The key is the array's type, slice and buffer addresses plus the caller's key;
the memo holds the array itself, so its buffers stay alive and no other array can take
their addresses while the entry exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import pyarrow as pa

__all__ = ["ArrayMemo"]

T = TypeVar("T")


class ArrayMemo(Generic[T]):
    """``get(array, key, compute)``: ``compute(array)``, or the last result for the same
    array (same buffers, offset and length) and ``key`` in this thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, array: pa.Array | pa.ChunkedArray, key: Hashable,
            compute: Callable[[pa.Array], T]) -> T:
        arr = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        ident = (key, arr.type, arr.offset, len(arr),
                 *(None if b is None else b.address for b in arr.buffers()))
        last = getattr(self._local, "last", None)
        if last is not None and last[0] == ident:
            return last[2]
        out = compute(arr)
        self._local.last = (ident, arr, out)
        return out
