"""Run one keyed validator through the real Beam stage and read its per-chunk outcome."""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline

from datanet.pipelines.keyed import KeyedStage
from datanet.pipelines.stages import merge_stage_outputs
from datanet.store.history import History
from datanet.validators.keyed import KeyedValidator, dense_votes

_SINK: dict[str, list] = {}


def _sink(element, token):
    """Module-level (pickled by reference) so DirectRunner writes into this process's dict."""
    _SINK.setdefault(token, []).append(element)


@dataclass
class ChunkOutcome:
    """One chunk's dense votes (row order), drops and index tables."""

    votes: pa.Table
    drops: list[pa.Table]
    index: dict[str, pa.Table]


def stage_outcome(validator: KeyedValidator, chunks: list[tuple[str, pa.RecordBatch]],
                  history: History | None = None) -> dict[str, ChunkOutcome]:
    """``chunk -> ChunkOutcome`` of ``validator`` over ``chunks`` (DirectRunner)."""
    token = str(len(_SINK)) + validator.name
    _SINK[token] = []
    with TestPipeline(runner="DirectRunner") as p:
        res = p | beam.Create(chunks) | KeyedStage(validator, history or History())
        _ = res | beam.Map(_sink, token)
    outputs: dict[str, list] = {k: [] for k, _ in chunks}
    for key, out in _SINK.pop(token):
        outputs[key].append(out)
    batches = dict(chunks)
    got = {}
    for key, outs in sorted(outputs.items()):
        loaded = merge_stage_outputs(outs)
        votes = dense_votes(validator.name, batches[key].column("contribution_id"),
                            loaded.votes, validator.vote_rank)
        got[key] = ChunkOutcome(votes, loaded.drops, loaded.index)
    return got
