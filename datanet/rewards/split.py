"""The reward rule: data share, usage share, and an exact integer split of the pool.

* **data share**: an account's accepted normalised words in the epoch's batches over
  everyone's. A word is a ``\\w+`` match (Python ``re`` semantics, Unicode) in the normalised
  text. Dedup already gave duplicate credit to the earliest submission, so copies earn nothing.
* **usage share**: an account's summed attribution weights in the epoch's receipts over
  everyone's. JSON weights are floats; each is read as ``Fraction(str(w))`` (the shortest
  decimal that round-trips the float, e.g. 0.1 -> 1/10), so the sum is exact and the same on
  every machine.
* **mix**: ``share = (dw * data + uw * usage) / (dw + uw)`` with the ``[rewards]`` weights; a
  component whose total is 0 (no receipts, no words) drops out and the other gets its weight.
* **split**: ``quota = pool * share`` (exact rational); every account gets ``floor(quota)``;
  the ``pool - sum(floors)`` units left go one each to the largest remainders (Hamilton's
  largest-remainder method). Ties are broken by ``keccak256(datanetKey ‖ uint64 epoch ‖
  account)`` ascending: deterministic, not favouring low addresses, and reshuffled each epoch.

All arithmetic is on Python integers (one common denominator), never floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datanet.errors import RewardsError
from datanet.schemas.ids import keccak

__all__ = [
    "WORD_RE",
    "count_words",
    "data_words",
    "usage_weights",
    "exact_weight",
    "Allocation",
    "allocate",
    "tie_key",
]

#: A word, as counted for the data share.
WORD_RE = r"\w+"
_WORD = re.compile(WORD_RE)
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


def count_words(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``len(re.findall(r"\\w+", t))`` for each text, as int64.

    ASCII rows (almost all) are counted by RE2 with ``[A-Za-z0-9_]+`` (Python's ``\\w`` on
    ASCII); the others by Python ``re``, whose ``\\w`` is Unicode (RE2's is ASCII-only).
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    counts = pc.count_substring_regex(texts, r"[A-Za-z0-9_]+").to_numpy(zero_copy_only=False)
    counts = counts.astype(np.int64)
    non_ascii = np.nonzero(~pc.string_is_ascii(texts).to_numpy(zero_copy_only=False))[0]
    if non_ascii.size:
        rows = texts.take(pa.array(non_ascii)).to_pylist()
        counts[non_ascii] = [len(_WORD.findall(t)) for t in rows]
    return counts


def data_words(paths: Iterable[str]) -> dict[str, int]:
    """Accepted normalised words per contributor (lowercase address) over Parquet files of
    accepted records. The normalised text is not stored (only ``text``), so it is recomputed
    with :func:`datanet.privacy.normalise.normalise`, the pipeline's own normalisation."""
    from datanet.privacy.normalise import normalise

    totals: dict[str, int] = {}
    for path in paths:
        table = pq.read_table(path, columns=["contributor", "text"])
        if table.num_rows == 0:
            continue
        words = pa.array(count_words(normalise(table["text"])))
        grouped = (pa.table({"contributor": pc.utf8_lower(table["contributor"]),
                             "words": words})
                   .group_by("contributor").aggregate([("words", "sum")]))
        for who, n in zip(grouped["contributor"].to_pylist(),
                          grouped["words_sum"].to_pylist(), strict=True):
            totals[who] = totals.get(who, 0) + int(n)
    return totals


def exact_weight(value: Any, where: str) -> Fraction:
    """A JSON attribution weight as an exact non-negative rational (``Fraction(str(w))``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RewardsError(f"{where}: weight {value!r} must be a number")
    try:
        w = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise RewardsError(f"{where}: weight {value!r} is not a finite number") from None
    if w < 0:
        raise RewardsError(f"{where}: weight {value!r} must be >= 0")
    return w


def usage_weights(receipts: Iterable[Mapping[str, Any]]) -> dict[str, Fraction]:
    """Summed attribution weights per contributor (lowercase address) over receipts shaped
    like ``datanet attribute --format json`` lines."""
    totals: dict[str, Fraction] = {}
    for n, receipt in enumerate(receipts, 1):
        rid = receipt.get("id", f"#{n}") if isinstance(receipt, Mapping) else f"#{n}"
        atts = receipt.get("attributions") if isinstance(receipt, Mapping) else None
        if not isinstance(atts, list):
            raise RewardsError(f"attribution {rid}: 'attributions' must be a list")
        for a in atts:
            who = str(a.get("contributor", "")).lower() if isinstance(a, Mapping) else ""
            if not _ADDRESS.match(who):
                raise RewardsError(f"attribution {rid}: contributor {who!r} is not an address")
            w = exact_weight(a.get("weight"), f"attribution {rid} contributor {who}")
            if w:
                totals[who] = totals.get(who, Fraction(0)) + w
    return totals


def tie_key(datanet_key: bytes, epoch: int, account: str) -> bytes:
    """Tie-break key of an account in an epoch: ``keccak256(datanetKey ‖ uint64 epoch ‖
    account)`` (32 + 8 + 20 bytes)."""
    return keccak(datanet_key + epoch.to_bytes(8, "big") + bytes.fromhex(account[2:]))


@dataclass(frozen=True)
class Allocation:
    """One account's part of an epoch: its inputs and its integer amount."""

    account: str
    words: int
    usage: Fraction
    amount: int


def allocate(pool: int, words: Mapping[str, int], usage: Mapping[str, Fraction],
             weights: tuple[Fraction, Fraction], *, datanet_key: bytes, epoch: int,
             ) -> list[Allocation]:
    """Split ``pool`` smallest units over the accounts of ``words`` and ``usage``; amounts
    sum exactly to ``pool``. Sorted by account; accounts with no share are left out."""
    if not isinstance(pool, int) or pool < 0:
        raise RewardsError(f"pool {pool!r} must be a non-negative integer (smallest units)")
    for who in (*words, *usage):
        if not _ADDRESS.match(who):
            raise RewardsError(f"account {who!r} must be a lowercase 0x address")
    dw, uw = weights
    total_words = sum(words.values())
    total_usage = sum(usage.values(), Fraction(0))
    if total_words == 0:
        dw = Fraction(0)
    if total_usage == 0:
        uw = Fraction(0)
    if dw + uw == 0:
        if pool == 0:
            return []
        raise RewardsError(
            "nothing to pay for: no accepted words and no attribution weight in this epoch "
            "(or their weights in [rewards] are 0)")
    # Common denominator of the usage weights, then every quota is pool * num_i / den.
    q = math.lcm(*(w.denominator for w in usage.values())) if usage else 1
    usage_int = {a: w.numerator * (q // w.denominator) for a, w in usage.items()}
    usage_total = sum(usage_int.values())
    cd = math.lcm(dw.denominator, uw.denominator)
    a_w, b_w = int(dw * cd), int(uw * cd)  # integer weights with the same ratio
    wt = total_words or 1
    ut = usage_total or 1
    den = (a_w + b_w) * wt * ut
    ca, cb = a_w * ut * pool, b_w * wt * pool
    accounts = sorted(set(words) | set(usage))
    floors: list[int] = []
    rems: list[int] = []
    for acc in accounts:
        f, r = divmod(ca * words.get(acc, 0) + cb * usage_int.get(acc, 0), den)
        floors.append(f)
        rems.append(r)
    left = pool - sum(floors)
    if left:
        order = sorted(range(len(accounts)), key=rems.__getitem__, reverse=True)
        cutoff = rems[order[left - 1]]
        above = [i for i in order[:left] if rems[i] > cutoff]
        tied = [i for i, r in enumerate(rems) if r == cutoff]
        need = left - len(above)
        tied.sort(key=lambda i: tie_key(datanet_key, epoch, accounts[i]))
        for i in above + tied[:need]:
            floors[i] += 1
    if sum(floors) != pool:  # pragma: no cover - arithmetic invariant
        raise RewardsError(f"split sums to {sum(floors)}, not the pool {pool}")
    return [Allocation(acc, words.get(acc, 0), usage.get(acc, Fraction(0)), amt)
            for acc, amt, r in zip(accounts, floors, rems, strict=True)
            if amt or words.get(acc, 0) or usage.get(acc)]
