"""Exact-duplicate keyed stage: group records by content_hash across the input and history.

Records are keyed by ``content_hash`` (small tuples, no text), co-grouped with the committed
accepted records of the datanet (read in the pipeline), resolved by
:func:`datanet.validators.exact_duplicate.resolve_group`, and the votes routed back to their
chunk. Second copies of the same contribution leave their chunk for dead-letter
(``duplicate_submission``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from datanet.pipelines.io import ReadParquetColumns
from datanet.pipelines.stages import History, StageOutput
from datanet.schemas.spec import DatanetSpec
from datanet.validators.base import make_votes
from datanet.validators.exact_duplicate import Candidate, resolve_group

__all__ = ["ExactDuplicateStage", "DROP_SCHEMA"]

NAME = "exact_duplicate"

DROP_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("source_line", pa.int64()),
    ("contribution_id", pa.string()), ("reason", pa.string()), ("message", pa.string()),
])


def _candidates(item: tuple[str, pa.RecordBatch]) -> Iterator[tuple[str, Candidate]]:
    key, batch = item
    cols = batch.select(["content_hash", "contribution_id", "submitted_at", "source_file",
                         "source_line"]).to_pydict()
    ts = batch.column("submitted_at").cast(pa.int64()).to_pylist()
    for h, cid, t, f, line in zip(cols["content_hash"], cols["contribution_id"], ts,
                                  cols["source_file"], cols["source_line"], strict=True):
        yield h, Candidate(cid, t, key, f, line)


def _history_pairs(batch: pa.RecordBatch) -> Iterator[tuple[str, tuple[str, str]]]:
    d = batch.to_pydict()
    for h, cid, b in zip(d["content_hash"], d["contribution_id"], d["batch"], strict=True):
        yield h, (cid, b)


def _resolve(item: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[tuple[str, tuple]]:
    _, groups = item
    new = list(groups["new"])
    if not new:
        return
    history = sorted(set(groups["history"]))
    resolved, resubmitted = resolve_group(new, history)
    for cand, verdict, details in resolved:
        yield cand.chunk, ("vote", cand.contribution_id, verdict, details)
    for cand in resubmitted:
        yield cand.chunk, ("drop", cand.source_file, cand.source_line, cand.contribution_id)


def _to_output(item: tuple[str, Iterable[tuple]]) -> tuple[str, StageOutput]:
    chunk, rows = item
    votes, drops = [], []
    for row in rows:
        (votes if row[0] == "vote" else drops).append(row)
    votes.sort(key=lambda r: r[1])
    table = make_votes(
        [r[1] for r in votes], NAME, [r[2] for r in votes],
        reasons=[None if r[2] == "accept" else "exact_duplicate" for r in votes],
        details=[r[3] for r in votes],
    )
    drop_table = None
    if drops:
        drops.sort(key=lambda r: (r[1], r[2]))
        drop_table = pa.table(
            {
                "source_file": [r[1] for r in drops],
                "source_line": [r[2] for r in drops],
                "contribution_id": [r[3] for r in drops],
                "reason": ["duplicate_submission"] * len(drops),
                "message": [f"{r[1]}:{r[2]}: the same contributor submitted the same text "
                            f"again (contribution {r[3]})" for r in drops],
            },
            schema=DROP_SCHEMA,
        )
    return chunk, StageOutput(votes=table, drops=drop_table)


class ExactDuplicateStage(beam.PTransform):
    """Keyed stage for ``exact_duplicate`` (see :mod:`datanet.pipelines.stages`)."""

    def __init__(self, spec: DatanetSpec, history: History):
        super().__init__()
        self.spec = spec
        self.history = history

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        new = chunks | "Candidates" >> beam.FlatMap(_candidates)
        hist = (
            chunks.pipeline
            | "ReadAccepted" >> ReadParquetColumns(
                self.history.of("accepted"), columns=["content_hash", "contribution_id", "batch"])
            | "HistoryPairs" >> beam.FlatMap(_history_pairs)
        )
        return (
            {"new": new, "history": hist}
            | "ByHash" >> beam.CoGroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve)
            | "ByChunk" >> beam.GroupByKey()
            | "ToOutput" >> beam.Map(_to_output)
        )
