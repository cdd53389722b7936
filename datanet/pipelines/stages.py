"""Contracts between the pipeline's stages (Beam-free types that cross stage boundaries).

Records travel as ``(chunk_key, pa.RecordBatch)``: a chunk is a slice of one input file of at
most ``pipeline.batch_rows`` rows, and its key is stable across runs (source file + chunk
index), so every stage can route results back to the chunk they belong to.

The keyed stage (:class:`datanet.pipelines.keyed.KeyedStage`, one per enabled keyed validator)
is applied to the ``PCollection[(chunk_key, RecordBatch)]`` of normalised records and returns a
``PCollection[(chunk_key, StageOutput)]``: the chunk's non-accept votes of that validator,
index rows the datanet should remember if the records are accepted, and resubmitted copies to
divert to dead-letter. ``pipelines.run`` joins every stage's output with the chunk
(CoGroupByKey), fills in the accept votes, decides, and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from datanet.pipelines.io import Spilled

__all__ = ["LoadedOutput", "StageOutput", "merge_stage_outputs"]


@dataclass(frozen=True)
class StageOutput:
    """What a keyed stage returns for one chunk (tables in memory or spilled, see
    :data:`datanet.pipelines.io.Spilled`).

    ``votes``: sparse votes (``_row``, verdict, score, reason, details and the validator's
    ``vote_rank`` columns: every record without one is accepted); ``drops``: ``_row``,
    ``reason``, ``message`` of records that must leave the chunk for dead-letter (e.g.
    ``duplicate_submission``); ``index``: ``kind -> table`` of rows keyed by
    ``contribution_id``: the writer keeps only rows of records that end up accepted and writes
    them to ``index/<kind>/batch=<id>/``, listed in the batch manifest (so history grows only
    on commit).
    """

    votes: tuple[Spilled, ...] = ()
    drops: tuple[Spilled, ...] = ()
    index: Mapping[str, Spilled] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedOutput:
    """Every :class:`StageOutput` of one validator for one chunk, read back."""

    votes: list[pa.Table]
    drops: list[pa.Table]
    index: dict[str, pa.Table]


def merge_stage_outputs(outputs: Iterable[StageOutput]) -> LoadedOutput:
    """Read and gather several outputs of one stage for the same chunk."""
    from datanet.pipelines.io import load_spilled

    votes: list[pa.Table] = []
    drops: list[pa.Table] = []
    index: dict[str, list[pa.Table]] = {}
    for o in outputs:
        votes += [load_spilled(v) for v in o.votes]
        drops += [load_spilled(d) for d in o.drops]
        for kind, table in o.index.items():
            index.setdefault(kind, []).append(load_spilled(table))
    return LoadedOutput(votes, drops, {k: pa.concat_tables(v) for k, v in index.items()})
