"""Flood-control keyed stage: GroupByKey by contributor across the whole input.

Per chunk, every record's contributor, rank and MinHash signature is keyed by contributor;
each contributor's group is decided by :func:`datanet.validators.spam.flood_reject` (record
cap, near-duplicate cluster), and the decisions are routed back to their chunks
(CoGroupByKey) as one ``flood`` vote per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from datanet.pipelines.io import select_tag
from datanet.pipelines.stages import History, StageOutput
from datanet.validators.base import make_votes
from datanet.validators.minhash import MinHasher, rank_key
from datanet.validators.spam import FloodConfig, FloodValidator, flood_reject, minhash_config

__all__ = ["FloodStage"]

_CHUNK = "chunk"
_MEMBERS = "members"


class _KeyByContributor(beam.DoFn):
    def __init__(self, config: FloodConfig, minhash: Any):
        self.config = config
        self.minhash = minhash

    def setup(self) -> None:
        self.hasher = MinHasher(self.minhash) if self.config.max_near_duplicates else None

    def process(self, element: tuple[Any, pa.RecordBatch]) -> Iterator[Any]:
        chunk, batch = element
        ids = batch.column("contribution_id").to_pylist()
        who = batch.column("contributor").to_pylist()
        ts = batch.column("submitted_at").cast(pa.int64()).to_pylist()
        yield _CHUNK, (chunk, ids)
        if self.hasher is not None:
            sig = self.hasher.signatures(batch.column("text_norm")).astype("<u4")
            blobs = [row.tobytes() for row in sig]
        else:
            blobs = [b""] * len(ids)
        for i, cid in enumerate(ids):
            yield _MEMBERS, (who[i], (cid, ts[i], blobs[i], chunk))


class _Decide(beam.DoFn):
    def __init__(self, config: FloodConfig, minhash: Any):
        self.config = config
        self.minhash = minhash
        self.flooders = Metrics.counter("flood", "contributors_flagged")

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[Any]:
        _, members = element
        # tuples may arrive as lists on some runners (Dask): normalise before de-duplicating
        ranked = sorted({tuple(m) for m in members}, key=lambda m: rank_key(False, m[1], m[0]))
        ids = [m[0] for m in ranked]
        if self.config.max_near_duplicates and len(ranked) > self.config.max_near_duplicates:
            sig = np.frombuffer(b"".join(m[2] for m in ranked), dtype="<u4").reshape(
                len(ranked), self.minhash.num_perm)
        else:
            sig = np.zeros((len(ranked), 0), dtype=np.uint32)
        rejected = flood_reject(ids, sig, self.config, self.minhash, [m[1] for m in ranked])
        if rejected:
            self.flooders.inc()
        for m in ranked:
            if m[0] in rejected:
                yield m[3], (m[0], rejected[m[0]])


class _ChunkVotes(beam.DoFn):
    def process(self, element: tuple[Any, dict[str, list[Any]]]) -> Iterator[Any]:
        chunk, grouped = element
        rejected = dict(grouped["reject"])
        for ids in grouped[_CHUNK]:
            votes = make_votes(
                ids, FloodValidator.name,
                ["reject" if c in rejected else "accept" for c in ids],
                reasons=["contributor_flood" if c in rejected else None for c in ids],
                details=[rejected.get(c) for c in ids],
            )
            yield chunk, StageOutput(votes=votes)


class FloodStage(beam.PTransform):
    """``PCollection[(chunk_key, RecordBatch)]`` -> ``PCollection[(chunk_key, StageOutput)]``
    with one ``flood`` vote per record (reason ``contributor_flood``)."""

    def __init__(self, spec: Any, history: History | None = None, *,
                 config: FloodConfig | None = None):
        super().__init__()
        if config is None:
            from datanet.validators.registry import validator_config

            config = validator_config(spec, FloodValidator.name)
        self.config = config
        self.minhash = minhash_config(spec)

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        keyed = chunks | "ByContributor" >> beam.ParDo(
            _KeyByContributor(self.config, self.minhash))
        rejects = (
            keyed
            | "Members" >> beam.FlatMap(select_tag, _MEMBERS)
            | "GroupContributor" >> beam.GroupByKey()
            | "Decide" >> beam.ParDo(_Decide(self.config, self.minhash))
        )
        return (
            {_CHUNK: keyed | "ChunkIds" >> beam.FlatMap(select_tag, _CHUNK), "reject": rejects}
            | "JoinChunks" >> beam.CoGroupByKey()
            | "Votes" >> beam.ParDo(_ChunkVotes())
        )
