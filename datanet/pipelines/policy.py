"""The vote policy as a Beam composite: votes keyed by contribution id → decisions.

For votes that arrive apart from their records (external vote files at scale, votes from
several stages). Vote tables are split into shards by contribution id (vectorised on the last
byte of the id), grouped so every vote of one record meets in one shard, and decided with
:func:`datanet.validators.policy.decide` over the whole shard. ``pipelines.run`` decides per
chunk instead, because a chunk already holds every vote of its records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.validators.policy import PolicyConfig, decide

__all__ = ["DecideVotes", "shard_of"]

_HEX_BYTES = pa.array([f"{i:02x}" for i in range(256)], pa.string())


def shard_of(ids: pa.Array | pa.ChunkedArray, shards: int) -> np.ndarray:
    """Shard per id from its last byte (ids are keccak hex: uniform); 0 for non-hex ids."""
    last = pc.utf8_slice_codeunits(pc.utf8_lower(ids), -2)
    byte = pc.fill_null(pc.index_in(last, value_set=_HEX_BYTES), 0)
    return byte.to_numpy(zero_copy_only=False).astype(np.int64) % shards


class _ShardVotes(beam.DoFn):
    def __init__(self, shards: int):
        self.shards = shards

    def process(self, votes: pa.Table) -> Iterator[tuple[int, pa.Table]]:
        if votes.num_rows == 0:
            return
        shard = shard_of(votes.column("contribution_id"), self.shards)
        for s in np.unique(shard):
            yield int(s), votes.filter(pa.array(shard == s))


class _DecideShard(beam.DoFn):
    def __init__(self, config: PolicyConfig):
        self.config = config

    def process(self, item: tuple[int, Iterable[pa.Table]]) -> Iterator[pa.Table]:
        _, tables = item
        votes = pa.concat_tables(list(tables))
        ids = pc.unique(votes.column("contribution_id").combine_chunks())
        yield decide(pc.array_take(ids, pc.sort_indices(ids)), votes, self.config)


class DecideVotes(beam.PTransform):
    """``PCollection[pa.Table]`` of VOTE_SCHEMA votes → ``PCollection[pa.Table]`` of decisions.

    One decision row per contribution id that has at least one vote; the same id's votes may
    arrive in different input tables.
    """

    def __init__(self, config: PolicyConfig, *, shards: int = 64):
        super().__init__()
        self.config = config
        self.shards = shards

    def expand(self, votes: beam.PCollection) -> beam.PCollection:
        return (
            votes
            | "ShardByContribution" >> beam.ParDo(_ShardVotes(self.shards))
            | "GroupShard" >> beam.GroupByKey()
            | "Decide" >> beam.ParDo(_DecideShard(self.config))
        )
