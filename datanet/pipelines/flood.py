"""Flood-control keyed stage: an Arrow shuffle by contributor across the whole input.

Per chunk, each record's contributor, id, submitted_at and (when the near-duplicate check is
on) MinHash signature form one Arrow table (:func:`datanet.validators.spam.flood_members`),
split into ``shards`` tables by contributor; ``GroupByKey`` on the shard number brings every
record of a contributor together, :func:`datanet.validators.spam.flood_votes` decides a whole
shard, and the votes go back to their chunks. No per-record element crosses the shuffle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from datanet.pipelines.dedup import by_chunk, shard_of, split_by_shard
from datanet.pipelines.stages import StageOutput
from datanet.store.history import History
from datanet.validators.spam import (
    FloodConfig,
    FloodValidator,
    flood_members,
    flood_votes,
    minhash_config,
)

__all__ = ["FloodStage"]


class _ShardMembers(beam.DoFn):
    def __init__(self, config: FloodConfig, minhash: Any, shards: int):
        self.config = config
        self.minhash = minhash
        self.shards = shards

    def process(self, element: tuple[str, pa.RecordBatch]) -> Iterator[tuple[int, pa.Table]]:
        chunk, batch = element
        members = flood_members(batch, self.config, self.minhash)
        members = members.append_column("chunk", pa.array([chunk] * batch.num_rows, pa.string()))
        yield from split_by_shard(members, shard_of(members.column("contributor"), self.shards))


class _DecideShard(beam.DoFn):
    def __init__(self, config: FloodConfig, minhash: Any):
        self.config = config
        self.minhash = minhash
        self.flooders = Metrics.counter("flood", "contributors_flagged")

    def process(self, element: tuple[int, Iterable[pa.Table]]
                ) -> Iterator[tuple[str, StageOutput]]:
        _, tables = element
        members = pa.concat_tables(list(tables))
        votes = flood_votes(members.drop_columns(["chunk"]), self.config, self.minhash)
        flagged = members.column("contributor").filter(pc.equal(votes.column("verdict"), "reject"))
        self.flooders.inc(pc.count_distinct(flagged).as_py())
        votes = votes.append_column("chunk", members.column("chunk"))
        for chunk, part in by_chunk(votes):
            yield chunk, StageOutput(votes=part)


class FloodStage(beam.PTransform):
    """``PCollection[(chunk_key, RecordBatch)]`` -> ``PCollection[(chunk_key, StageOutput)]``
    with one ``flood`` vote per record (reason ``contributor_flood``)."""

    #: Contributor shards of the shuffle (its parallelism); any value gives the same votes.
    shards = 32

    def __init__(self, spec: Any, history: History | None = None, *,
                 config: FloodConfig | None = None):
        super().__init__()
        if config is None:
            from datanet.validators.registry import validator_config

            config = validator_config(spec, FloodValidator.name)
        self.config = config
        self.minhash = minhash_config(spec)

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return (
            chunks
            | "ShardByContributor" >> beam.ParDo(
                _ShardMembers(self.config, self.minhash, self.shards))
            | "GroupShard" >> beam.GroupByKey()
            | "Decide" >> beam.ParDo(_DecideShard(self.config, self.minhash))
        )
