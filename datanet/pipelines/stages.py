"""Contracts between the pipeline's stages (Beam-free types that cross stage boundaries).

Records travel as ``(chunk_key, pa.RecordBatch)``: a chunk is a slice of one input file of at
most ``pipeline.batch_rows`` rows, and its key is stable across runs (source file + chunk
index), so every stage can route results back to the chunk they belong to.

A *keyed stage* (exact / near duplicates, flood control) is a ``PTransform`` built as
``Stage(spec, history)`` and applied to the ``PCollection[(chunk_key, RecordBatch)]`` of
normalised records. It returns a ``PCollection[(chunk_key, StageOutput)]``: the votes for that
chunk's records (exactly one vote per record of the chunk for that validator), index rows the
datanet should remember if the records are accepted, and resubmitted copies to divert to
dead-letter. ``pipelines.run`` joins every stage's output with the chunk (CoGroupByKey),
decides, and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

__all__ = ["StageOutput", "merge_stage_outputs"]


@dataclass(frozen=True)
class StageOutput:
    """What a keyed stage returns for one chunk.

    ``index``: ``kind -> table`` of rows keyed by ``contribution_id`` (or the path of that table
    spilled with :func:`datanet.pipelines.io.spill_table`); the writer keeps only
    rows of records that end up accepted and writes them to ``index/<kind>/batch=<id>/``,
    listed in the batch manifest under ``index/<kind>`` (so history grows only on commit).
    ``drops``: ``(source_file, source_line, contribution_id, reason, message)`` rows of records
    that must leave the chunk for dead-letter (e.g. ``duplicate_submission``).
    """

    votes: pa.Table
    index: Mapping[str, pa.Table | str] = field(default_factory=dict)
    drops: pa.Table | None = None


def merge_stage_outputs(outputs: list[StageOutput]) -> StageOutput:
    """Concatenate several outputs for the same chunk (a stage may emit more than one)."""
    from datanet.schemas.contribution import VOTE_SCHEMA

    votes = pa.concat_tables([o.votes for o in outputs]) if outputs else VOTE_SCHEMA.empty_table()
    index: dict[str, list[pa.Table]] = {}
    for o in outputs:
        for kind, table in o.index.items():
            if isinstance(table, str):
                from datanet.pipelines.io import read_spilled

                table = read_spilled(table)
            index.setdefault(kind, []).append(table)
    drops = [o.drops for o in outputs if o.drops is not None and o.drops.num_rows]
    return StageOutput(
        votes=votes,
        index={k: pa.concat_tables(v) for k, v in index.items()},
        drops=pa.concat_tables(drops) if drops else None,
    )
