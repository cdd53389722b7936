"""Compiled loop of PII detection (numba): one pass over a batch's detection views.

It finds the phone-number candidate runs (the numpy version took a gather of byte classes
over the whole batch and several passes over temporaries) and, in the same pass, which
records may hold an anchor of the digit-driven anchor groups (:data:`FLAGS`), so that no
RE2 pass over the whole batch is needed to find them. Compiled on first use in a process and
cached on disk next to this file when it is writable.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["FLAGS", "scan_batch"]

#: Anchor groups the pass flags records for (columns of its ``flags``): a digit chain of at
#: least ``chain_min`` digits with gaps of at most 3 non-alphanumerics (exact); three
#: digit-dot-digit steps in one run of digits and punctuation, or two colons with at most 4
#: hex digits between them (ip); two capitals, an optional blank or hyphen and two digits
#: (iban); a digit inside a run of at least 26 ASCII letters and digits (crypto). All but
#: the first are necessary conditions of the groups' patterns, not the patterns themselves:
#: the groups' own RE2 passes decide on the flagged records.
FLAGS = ("digits", "ip", "iban", "crypto")


@numba.njit(cache=True, nogil=True, inline="always")
def _alpha(b: np.uint8) -> bool:
    return (65 <= b <= 90) or (97 <= b <= 122)


@numba.njit(cache=True, nogil=True, inline="always")
def _digit(b: np.uint8) -> bool:
    return np.uint8(b - 48) < 10  # one comparison: bytes below '0' wrap around


@numba.njit(cache=True, nogil=True, inline="always")
def _alnum(b: np.uint8) -> bool:
    return _digit(b) or _alpha(b)


@numba.njit(cache=True, nogil=True, inline="always")
def _hex(b: np.uint8) -> bool:
    return (48 <= b <= 57) or (65 <= b <= 70) or (97 <= b <= 102)


@numba.njit(cache=True, nogil=True)
def scan_batch(data: np.ndarray, offsets: np.ndarray, records: np.ndarray, cls: np.ndarray,
               ext_first: np.ndarray, ext_body: np.ndarray, chain_min: int,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over the ``records`` (indices into ``offsets``, ascending; ASCII texts):

    * candidate runs: maximal runs of digits and run punctuation (``cls`` 2 and 1 of a byte;
      0 ends a run) holding at least 4 digits, as ``(record, lo, hi)`` in ``data``
      coordinates, and per run whether the phone matcher's extension pattern may start at
      ``hi`` (an ``ext_first`` byte there, then only ``ext_body`` bytes up to a digit);
    * ``flags[record, k]`` for the anchor groups of :data:`FLAGS`.
    """
    cap = len(data) // 5 + 1
    rec_out = np.empty(cap, dtype=np.int64)
    lo_out = np.empty(cap, dtype=np.int64)
    hi_out = np.empty(cap, dtype=np.int64)
    ext_out = np.zeros(cap, dtype=np.bool_)
    flags = np.zeros((len(offsets) - 1, 4), dtype=np.bool_)
    k = 0
    for r in records:
        start = offsets[r]
        end = offsets[r + 1]
        chain = 0
        last = -10  # previous digit
        alnum_end = start  # alphanumeric runs are measured once, up to here
        i = start
        while i < end:
            b = data[i]
            if not _digit(b):  # most bytes
                if b == 58:  # ':' after another within 4 hex digits (ip)
                    j = i - 1
                    while j >= start and i - j <= 5 and _hex(data[j]):
                        j -= 1
                    if j >= start and i - j <= 5 and data[j] == 58:
                        flags[r, 1] = True
                i += 1
                continue
            lo = i  # a digit: its run reaches left over punctuation, right over both
            while lo > start and cls[data[lo - 1]] == 1:
                lo -= 1
            digits = 0
            dots = 0
            while i < end and cls[data[i]] != 0:
                c = data[i]
                if cls[c] == 2:
                    digits += 1
                    # digit chain: linked to the previous digit across <= 3 non-letters
                    linked = i - last <= 4
                    if linked:
                        for g in range(last + 1, i):
                            if _alpha(data[g]):
                                linked = False
                    chain = chain + 1 if linked else 1
                    last = i
                    if chain >= chain_min:
                        flags[r, 0] = True
                    # iban: two capitals, an optional blank or hyphen, two digits
                    if i + 1 < end and _digit(data[i + 1]):
                        p = i - 1
                        if p >= start and (data[p] == 32 or data[p] == 45):
                            p -= 1
                        if p - 1 >= start and 65 <= data[p] <= 90 and 65 <= data[p - 1] <= 90:
                            flags[r, 2] = True
                    # crypto: inside an alphanumeric run of >= 26 characters
                    if i >= alnum_end:
                        a = i
                        while a > start and _alnum(data[a - 1]):
                            a -= 1
                        z = i + 1
                        while z < end and _alnum(data[z]):
                            z += 1
                        if z - a >= 26:
                            flags[r, 3] = True
                        alnum_end = z
                elif c == 46 and i > start and i + 1 < end and cls[data[i - 1]] == 2 \
                        and cls[data[i + 1]] == 2:
                    dots += 1  # digit '.' digit (ip)
                i += 1
            if dots >= 3:
                flags[r, 1] = True
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
    return rec_out[:k], lo_out[:k], hi_out[:k], ext_out[:k], flags
