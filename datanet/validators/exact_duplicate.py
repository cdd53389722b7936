"""Exact duplicates: the same normalised text within the input or in history.

"The same" is decided on the dedup key (:func:`datanet.privacy.evasion.dedup_keys`): the
normalised text with homoglyphs folded the way PII detection folds them, so a copy with
Cyrillic look-alikes and zero-width spaces is a duplicate of its original.

A keyed validator (:mod:`datanet.validators.keyed`): key rows carry the dedup key and ids (no
text), sharded by the key's first 64 bits across the input and the committed accepted records;
:func:`resolve_table` resolves a whole shard with Arrow sorts. Resolution: history wins, then
the earliest ``submitted_at``, then the smallest contribution id. Losers get reason
``exact_duplicate`` with the matched contribution id (and batch, for history) in the vote's
details. A second copy of the very same contribution (same contributor and text → same
contribution id) is not a new record: it leaves for dead-letter as ``duplicate_submission``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.privacy.evasion import dedup_keys
from datanet.privacy.normalise import normalise
from datanet.schemas.config import check_range
from datanet.validators.keyed import KeyedValidator, KeyRows, Resolved, Shard, hex64, sparse_votes

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = ["ExactDuplicateConfig", "ExactDuplicateValidator", "SubmissionValidator",
           "resolve_table"]

NAME = "exact_duplicate"


@dataclass(frozen=True)
class ExactDuplicateConfig:
    """``shards``: hash-prefix shards of the keyed stage (parallelism of the shuffle)."""

    shards: int = 32

    def __post_init__(self) -> None:
        check_range("validators.exact_duplicate.shards", self.shards, 1, 65536)


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False)


def _key_column(table: pa.Table) -> str:
    """``dedup_key`` (the homoglyph-folded key) when the caller computed it, else
    ``content_hash`` (the two are equal for every record the fold leaves unchanged)."""
    return "dedup_key" if "dedup_key" in table.column_names else "content_hash"


def _submission_drops(d: pa.Table, why: Sequence[str]) -> pa.Table:
    """Drops (``_part``, ``_row``, reason, message) of repeated contributions ``d``."""
    files, lines = d.column("source_file").to_pylist(), d.column("source_line").to_pylist()
    return pa.table({
        "_part": d.column("_part"),
        "_row": d.column("_row"),
        "reason": pa.array(["duplicate_submission"] * d.num_rows, pa.string()),
        "message": pa.array([f"{f}:{ln}: {w}"
                             for f, ln, w in zip(files, lines, why, strict=True)], pa.string()),
    })


def _resubmissions(new: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """``new`` without the later copies of one contribution id (the first by file, line
    stays), and the drops of those copies (None when there are none)."""
    order = pc.sort_indices(new, [("contribution_id", "ascending"),
                                  ("source_file", "ascending"), ("source_line", "ascending")])
    new = new.take(order)
    cid = _np(new.column("contribution_id"))
    first = np.ones(len(cid), dtype=bool)
    first[1:] = cid[1:] != cid[:-1]
    if first.all():
        return new, None
    d = new.filter(pa.array(~first))
    why = [f"the same contributor submitted the same text again (contribution {c})"
           for c in d.column("contribution_id").to_pylist()]
    return new.filter(pa.array(first)), _submission_drops(d, why)


def resolve_table(
    new: pa.Table, history: pa.Table | None
) -> tuple[pa.Table, pa.Table | None]:
    """Resolve exact duplicates among ``new`` rows and against ``history``.

    ``new``: content_hash, contribution_id, submitted_at (int64 µs), source_file, source_line,
    ``_part`` and ``_row`` (where the record is). ``history``: content_hash, contribution_id,
    batch of committed accepted records. Both may carry ``dedup_key``
    (:func:`datanet.privacy.evasion.dedup_keys`), which then decides what is a duplicate in
    place of ``content_hash``. Returns the sparse votes (:func:`~datanet.validators.keyed.
    sparse_votes`: the rejected records) and the drops (``_part``, ``_row``, reason, message)
    of resubmitted copies, or None.
    """
    # 1. resubmissions: the same contribution id twice → keep the first by file, line
    new, drops = _resubmissions(new)

    # 2. groups of equal keys, earliest submitted_at then smallest id first
    key = _key_column(new)
    order = pc.sort_indices(new, [(key, "ascending"), ("submitted_at", "ascending"),
                                  ("contribution_id", "ascending")])
    new = new.take(order)
    n = new.num_rows
    h = _np(new.column(key))
    cid = _np(new.column("contribution_id"))
    start = np.ones(n, dtype=bool)
    start[1:] = h[1:] != h[:-1]
    winner = np.maximum.accumulate(np.where(start, np.arange(n), 0))

    # 3. history: smallest committed id per hash wins over everything new
    hist_pos = np.full(n, -1)
    hist_ids = hist_batches = np.array([], dtype=object)
    if history is not None and history.num_rows:
        hkey = _key_column(history)
        history = history.take(pc.sort_indices(history, [(hkey, "ascending"),
                                                         ("contribution_id", "ascending")]))
        hh = _np(history.column(hkey))
        keep = np.ones(len(hh), dtype=bool)
        keep[1:] = hh[1:] != hh[:-1]
        history = history.filter(pa.array(keep))
        hist_ids = _np(history.column("contribution_id"))
        hist_batches = _np(history.column("batch"))
        hist_pos = np.nan_to_num(
            pc.index_in(new.column(key), value_set=history.column(hkey))
            .to_numpy(zero_copy_only=False).astype(float), nan=-1).astype(np.int64)

    in_history = hist_pos >= 0
    lose = np.flatnonzero(~(start & ~in_history))
    details = [json.dumps({"batch": hist_batches[hist_pos[i]], "matched": hist_ids[hist_pos[i]]},
                          sort_keys=True) if in_history[i]
               else json.dumps({"matched": cid[winner[i]]}, sort_keys=True) for i in lose]
    losers = new.take(pa.array(lose, pa.int64()))
    votes = sparse_votes(_np(losers.column("_part")), _np(losers.column("_row")),
                         reason=NAME, details=details)
    return votes, drops


class ExactDuplicateValidator(KeyedValidator):
    """Exact duplicates, sharded by the first 64 bits of the dedup key."""

    name = NAME
    config_cls = ExactDuplicateConfig
    summary = "Exact duplicates by content hash across the input and the datanet's history."
    reason_codes = ("exact_duplicate",)
    history_kind = "accepted"
    history_columns = ("content_hash", "contribution_id", "batch", "text")

    def __init__(self, config: ExactDuplicateConfig, spec: DatanetSpec | None = None):
        self.config = config
        self.spec = spec

    def key(self, batch: pa.RecordBatch) -> KeyRows:
        keys = dedup_keys(batch.column("text_norm"), batch.column("content_hash"))
        return KeyRows(pa.table({
            "shard_key": hex64(keys),
            "_row": pa.array(np.arange(batch.num_rows, dtype=np.int32)),
            "content_hash": batch.column("content_hash"),
            "dedup_key": keys,
            "contribution_id": batch.column("contribution_id"),
            "submitted_at": batch.column("submitted_at").cast(pa.int64()),
            "source_file": batch.column("source_file"),
            "source_line": batch.column("source_line"),
        }))

    def history_key(self, table: pa.Table, path: str) -> KeyRows:
        # accepted files keep the text as stored, not text_norm: normalise, fold, then drop
        # it so the key rows carry keys only
        text = pc.fill_null(table.column("text").combine_chunks(), "")
        keys = dedup_keys(normalise(text), table.column("content_hash"))
        return KeyRows(pa.table({
            "shard_key": hex64(keys),
            "_row": pa.array(np.arange(table.num_rows, dtype=np.int32)),
            "content_hash": table.column("content_hash"),
            "dedup_key": keys,
            "contribution_id": table.column("contribution_id"),
            "batch": table.column("batch"),
        }))

    def resolve(self, shard: Shard) -> Resolved:
        new = shard.is_new
        rows = shard.rows
        history = rows.filter(pa.array(~new)) if not new.all() else None
        votes, drops = resolve_table(rows.filter(pa.array(new)), history)
        return Resolved(votes=votes, drops=drops)


class SubmissionValidator(ExactDuplicateValidator):
    """One contribution id, committed once: what the pipeline runs when ``exact_duplicate``
    is off, as a contribution id (contributor + text) is the datanet's key (leaves, rewards).

    Keyed by the id itself: a later copy within the input, or a record whose id is already
    accepted, leaves for dead-letter as ``duplicate_submission`` (as with ``exact_duplicate``
    on, bar that a committed id there is rejected as a duplicate). It casts no votes; copies
    of a text by other contributors are not its business. History: the accepted ids only.
    """

    name = "duplicate_submission"
    summary = "Repeated contribution ids (always on while exact_duplicate is off)."
    reason_codes = ("duplicate_submission",)
    history_columns = ("contribution_id", "batch")
    casts_votes: ClassVar[bool] = False

    def __init__(self, spec: DatanetSpec | None = None):
        super().__init__(ExactDuplicateConfig(), spec)

    def key(self, batch: pa.RecordBatch) -> KeyRows:
        return KeyRows(pa.table({
            "shard_key": hex64(batch.column("contribution_id")),
            "_row": pa.array(np.arange(batch.num_rows, dtype=np.int32)),
            "contribution_id": batch.column("contribution_id"),
            "source_file": batch.column("source_file"),
            "source_line": batch.column("source_line"),
        }))

    def history_key(self, table: pa.Table, path: str) -> KeyRows:
        return KeyRows(pa.table({
            "shard_key": hex64(table.column("contribution_id")),
            "_row": pa.array(np.arange(table.num_rows, dtype=np.int32)),
            "contribution_id": table.column("contribution_id"),
            "batch": table.column("batch"),
        }))

    def resolve(self, shard: Shard) -> Resolved:
        new = shard.is_new
        rows = shard.rows
        fresh, drops = _resubmissions(rows.filter(pa.array(new)))
        parts = [drops] if drops is not None else []
        if not new.all():
            history = rows.filter(pa.array(~new))
            at = pc.index_in(fresh.column("contribution_id"),
                             value_set=history.column("contribution_id"))
            seen = pc.is_valid(at)
            if pc.any(seen).as_py():
                again = fresh.filter(seen)
                batches = history.column("batch").take(at.filter(seen)).to_pylist()
                parts.append(_submission_drops(again, [
                    f"contribution {c} is already accepted (batch {b})"
                    for c, b in zip(again.column("contribution_id").to_pylist(), batches,
                                    strict=True)]))
        return Resolved(drops=pa.concat_tables(parts) if parts else None)
