"""An example third-party *keyed* validator: one opening sentence, one record.

Template spam often varies the body and keeps the opening ("As an expert chef, I can tell
you that ..."). A record whose first sentence (normalised, lowercased, at least ``min_chars``
long) is the first sentence of an earlier record of the input, or of an accepted record of the
datanet, is rejected ``repeated_opening``; the earliest one (history first, then
``submitted_at``, then contribution id) stays. Configured like a built-in:

    [validators.repeated_opening]
    min_chars = 40

A keyed validator is one class with two methods over Arrow: ``key`` (which records must meet:
here, those with the same opening, by a 64-bit hash of it) and ``resolve`` (one shard of them,
with the history's rows). datanet shards, groups, resolves and routes the votes on any runner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.privacy.normalise import normalise
from datanet.schemas.config import check_range
from datanet.validators.keyed import (
    KeyedValidator,
    KeyRows,
    Resolved,
    Shard,
    sparse_votes,
    string_keys,
)

__all__ = ["RepeatedOpeningConfig", "RepeatedOpeningValidator"]


@dataclass(frozen=True)
class RepeatedOpeningConfig:
    """``[validators.repeated_opening]``."""

    #: Openings shorter than this (in characters) are not compared ("Hi." is no template).
    min_chars: int = 40
    #: Shards of the keyed shuffle (its parallelism; any value gives the same votes).
    shards: int = 16

    def __post_init__(self) -> None:
        check_range("validators.repeated_opening.min_chars", self.min_chars, 1, 10_000)
        check_range("validators.repeated_opening.shards", self.shards, 1, 65536)


def _openings(text: pa.Array | pa.ChunkedArray, min_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows with an opening of at least ``min_chars``, 64-bit key of each of those openings)."""
    first = pc.struct_field(pc.extract_regex(text, r"^(?P<s>[^.!?]{0,300})"), "s")
    first = pc.utf8_lower(pc.utf8_trim_whitespace(first))
    rows = np.flatnonzero(pc.fill_null(pc.greater_equal(pc.utf8_length(first), min_chars),
                                       False).to_numpy(zero_copy_only=False))
    return rows.astype(np.int32), string_keys(first.take(pa.array(rows)))


class RepeatedOpeningValidator(KeyedValidator):
    """Reject all but the earliest record of each opening sentence."""

    name: ClassVar[str] = "repeated_opening"
    config_cls = RepeatedOpeningConfig
    summary = "Example plugin: records that repeat an earlier record's opening sentence."
    reason_codes = ("repeated_opening",)
    history_kind = "accepted"
    history_columns = ("contribution_id", "text")

    def key(self, batch: pa.RecordBatch) -> KeyRows:
        rows, keys = _openings(batch.column("text_norm"), self.config.min_chars)
        take = pa.array(rows)
        return KeyRows(pa.table({
            "shard_key": keys, "_row": rows,
            "submitted_at": pc.cast(batch.column("submitted_at"), pa.int64()).take(take),
            "contribution_id": batch.column("contribution_id").take(take),
        }))

    def history_key(self, table: pa.Table, path: str) -> KeyRows:
        rows, keys = _openings(normalise(table.column("text").combine_chunks()),
                               self.config.min_chars)
        return KeyRows(pa.table({
            "shard_key": keys, "_row": rows,
            "contribution_id": table.column("contribution_id").take(pa.array(rows)),
        }))

    def resolve(self, shard: Shard) -> Resolved:
        rows = shard.rows.sort_by([("shard_key", "ascending"), ("_history", "descending"),
                                   ("submitted_at", "ascending"),
                                   ("contribution_id", "ascending")])
        key = rows.column("shard_key").to_numpy()
        first = np.r_[True, key[1:] != key[:-1]]
        winner = np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))
        lose = np.flatnonzero(~first & ~rows.column("_history").to_numpy(zero_copy_only=False))
        ids = rows.column("contribution_id").to_numpy(zero_copy_only=False)
        return Resolved(votes=sparse_votes(
            rows.column("_part").to_numpy()[lose], rows.column("_row").to_numpy()[lose],
            reason="repeated_opening",
            details=[json.dumps({"matched": ids[w]}) for w in winner[lose]]))
