"""Exact duplicates: the same normalised text within the input or in history.

"The same" is decided on the dedup key (:func:`datanet.privacy.evasion.dedup_keys`): the
normalised text with homoglyphs folded the way PII detection folds them, so a copy with
Cyrillic look-alikes and zero-width spaces is a duplicate of its original.

Beam-free, vectorised resolution (:func:`resolve_table`); ``pipelines.dedup`` shards records by
content hash across the whole input, joins the datanet's committed accepted records and calls
it per shard. Resolution: history wins, then the earliest ``submitted_at``, then the smallest
contribution id. Losers get reason ``exact_duplicate`` with the matched contribution id (and
batch, for history) in the vote's details. A second copy of the very same contribution (same
contributor and text → same contribution id) is not a new record: it leaves for dead-letter as
``duplicate_submission``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.privacy.evasion import dedup_keys
from datanet.schemas.config import check_range
from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.validators.base import ValidationResult, Validator

__all__ = ["ExactDuplicateConfig", "ExactDuplicateValidator", "resolve_table", "DROP_SCHEMA"]

NAME = "exact_duplicate"

#: Rows that must leave their chunk for dead-letter.
DROP_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("source_line", pa.int64()),
    ("contribution_id", pa.string()), ("reason", pa.string()), ("message", pa.string()),
])


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


def resolve_table(
    new: pa.Table, history: pa.Table | None
) -> tuple[pa.Table, pa.Table | None]:
    """Resolve exact duplicates among ``new`` rows and against ``history``.

    ``new``: content_hash, contribution_id, submitted_at (int64 µs), chunk, source_file,
    source_line. ``history``: content_hash, contribution_id, batch of committed accepted
    records. Both may carry ``dedup_key`` (:func:`datanet.privacy.evasion.dedup_keys`), which
    then decides what is a duplicate in place of ``content_hash``. Returns (votes in
    VOTE_SCHEMA + ``chunk``, one per distinct contribution; drops in DROP_SCHEMA + ``chunk``
    for resubmitted copies, or None).
    """
    # 1. resubmissions: the same contribution id twice → keep the first by file, line
    order = pc.sort_indices(new, [("contribution_id", "ascending"),
                                  ("source_file", "ascending"), ("source_line", "ascending")])
    new = new.take(order)
    cid = _np(new.column("contribution_id"))
    first = np.ones(len(cid), dtype=bool)
    first[1:] = cid[1:] != cid[:-1]
    drops = None
    if not first.all():
        d = new.filter(pa.array(~first))
        files, lines, ids = (d.column(c).to_pylist()
                             for c in ("source_file", "source_line", "contribution_id"))
        drops = pa.table({
            "source_file": d.column("source_file"),
            "source_line": d.column("source_line"),
            "contribution_id": d.column("contribution_id"),
            "reason": pa.array(["duplicate_submission"] * d.num_rows, pa.string()),
            "message": pa.array([f"{f}:{ln}: the same contributor submitted the same text "
                                 f"again (contribution {c})"
                                 for f, ln, c in zip(files, lines, ids, strict=True)]),
            "chunk": d.column("chunk"),
        })
        new = new.filter(pa.array(first))

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
    accept = start & ~in_history
    details: list[str | None] = [None] * n
    for i in np.flatnonzero(~accept):
        if in_history[i]:
            j = hist_pos[i]
            details[i] = json.dumps({"batch": hist_batches[j], "matched": hist_ids[j]},
                                    sort_keys=True)
        else:
            details[i] = json.dumps({"matched": cid[winner[i]]}, sort_keys=True)
    votes = pa.table({
        "contribution_id": new.column("contribution_id"),
        "validator": pa.array([NAME] * n, pa.string()),
        "verdict": pa.array(np.where(accept, "accept", "reject"), pa.string()),
        "score": pa.nulls(n, pa.float64()),
        "reason": pa.array(np.where(accept, None, "exact_duplicate"), pa.string()),
        "details": pa.array(details, pa.string()),
        "chunk": new.column("chunk"),
    })
    return votes.cast(VOTE_SCHEMA.append(pa.field("chunk", pa.string()))), drops


class ExactDuplicateValidator(Validator):
    """Keyed validator; its Beam stage lives in ``pipelines.dedup``.

    ``validate`` on a single batch (no history) is the in-memory reference used by tests
    and small tools.
    """

    name = NAME
    config_cls = ExactDuplicateConfig
    kind = "keyed"
    summary = "Exact duplicates by content hash across the input and the datanet's history."
    reason_codes = ("exact_duplicate",)
    stage = "datanet.pipelines.dedup:ExactDuplicateStage"

    def __init__(self, config: ExactDuplicateConfig, spec: Any):
        self.config = config

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        n = batch.num_rows
        table = pa.table({
            "content_hash": batch.column("content_hash"),
            "dedup_key": dedup_keys(batch.column("text_norm"), batch.column("content_hash")),
            "contribution_id": batch.column("contribution_id"),
            "submitted_at": batch.column("submitted_at").cast(pa.int64()),
            "chunk": pa.array([""] * n, pa.string()),
            "source_file": batch.column("source_file"),
            "source_line": batch.column("source_line"),
        })
        votes, _ = resolve_table(table, None)
        pos = pc.index_in(batch.column("contribution_id"), value_set=votes.column(
            "contribution_id"))
        return ValidationResult(votes.drop_columns(["chunk"]).take(pos))
