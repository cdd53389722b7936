"""Compiled loop of PII detection (numba): phone-number candidate runs in a batch buffer.

The numpy version took a gather of byte classes over the whole batch and several passes over
temporaries (digit positions, segmented reductions, widening loops); one compiled pass over
the bytes finds the same runs. Compiled on first use in a process and cached on disk next to
this file when it is writable.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["phone_runs"]


@numba.njit(cache=True, nogil=True)
def phone_runs(data: np.ndarray, offsets: np.ndarray, records: np.ndarray, cls: np.ndarray,
               ext_first: np.ndarray, ext_body: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate runs of the ``records`` (indices into ``offsets``, ascending): maximal runs
    of digits and run punctuation (``cls`` 2 and 1 of a byte; 0 ends a run) holding at least
    4 digits, as ``(record, lo, hi)`` in ``data`` coordinates; and per run whether the
    phone matcher's extension pattern may start at ``hi``: an ``ext_first`` byte there,
    then only ``ext_body`` bytes up to a digit of the same record."""
    cap = len(data) // 5 + 1
    rec_out = np.empty(cap, dtype=np.int64)
    lo_out = np.empty(cap, dtype=np.int64)
    hi_out = np.empty(cap, dtype=np.int64)
    ext_out = np.zeros(cap, dtype=np.bool_)
    k = 0
    for r in records:
        start = offsets[r]
        end = offsets[r + 1]
        i = start
        while i < end:
            if np.uint8(data[i] - 48) >= 10:  # most bytes: not a digit, no table lookup
                i += 1
                continue
            lo = i  # a digit: its run reaches left over punctuation, right over both
            while lo > start and cls[data[lo - 1]] == 1:
                lo -= 1
            digits = 0
            while i < end and cls[data[i]] != 0:
                if cls[data[i]] == 2:
                    digits += 1
                i += 1
            if digits < 4:
                continue
            rec_out[k] = r
            lo_out[k] = lo
            hi_out[k] = i
            if i < end and ext_first[data[i]]:
                j = i
                while j < end and cls[data[j]] != 2 and ext_body[data[j]]:
                    j += 1
                ext_out[k] = j < end and cls[data[j]] == 2
            k += 1
    return rec_out[:k], lo_out[:k], hi_out[:k], ext_out[:k]
