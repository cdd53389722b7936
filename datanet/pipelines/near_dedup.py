"""Beam-native MinHash LSH near-duplicate stage: band keys -> GroupByKey, incremental.

Every record's signature (``datanet.validators.minhash``, vectorised per chunk) is cut into
LSH bands; each band becomes a key ``band number + band values`` and the records sharing a
key meet in one GroupByKey group, together with the committed records of the datanet read
from its ``index/minhash`` files (fileio inside the pipeline). Candidates in a group are
checked by estimated Jaccard; a record loses to the best-ranked verified match ranked before
it (history first, then earliest ``submitted_at``, then smallest contribution id). Nothing
is held in one process but one band bucket, so it scales past one machine and runs on every
runner (ParDo, GroupByKey, CoGroupByKey, CombinePerKey, Flatten, fileio only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from datanet.errors import ValidatorError
from datanet.pipelines.io import select_tag
from datanet.pipelines.stages import History, StageOutput
from datanet.validators.base import make_votes
from datanet.validators.minhash import (
    MINHASH_INDEX_SCHEMA,
    MinHashConfig,
    MinHasher,
    NearDuplicateValidator,
    rank_key,
    skip_exact_copies,
)

__all__ = ["NearDuplicateStage"]

_CHUNK = "chunk"
_BANDS = "bands"
_EMPTY = np.uint32(0xFFFFFFFF)
# A band member: (contribution_id, submitted_at µs, content_hash, signature bytes, chunk_key
# or None for a committed record).
Member = tuple[str, int, str, bytes, Any]


def _sig_matrix(blobs: list[bytes], num_perm: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), num_perm)


def _emit_bands(hasher: MinHasher, sig: np.ndarray, ids: list[str], ts: list[int],
                hashes: list[str], chunk: Any) -> Iterator[tuple[bytes, Member]]:
    keep = ~np.all(sig == _EMPTY, axis=1)
    if not keep.any():
        return
    rows = np.flatnonzero(keep)
    keys = hasher.band_keys(sig[rows])
    blob = sig.astype("<u4")
    for n, i in enumerate(rows):
        member = (ids[i], ts[i], hashes[i], blob[i].tobytes(), chunk)
        for key in keys[n]:
            yield key, member


class _SignChunk(beam.DoFn):
    """Signatures of one chunk: band members (main) and the chunk's ids + index rows."""

    def __init__(self, config: MinHashConfig, spec: Any):
        self.config = config
        self.spec = spec
        self.records = Metrics.counter("near_duplicate", "records")

    def setup(self) -> None:
        self.validator = NearDuplicateValidator(self.config, self.spec)
        self.validator.setup()

    def process(self, element: tuple[Any, pa.RecordBatch]) -> Iterator[Any]:
        chunk, batch = element
        hasher = self.validator.hasher
        sig = hasher.signatures(batch.column("text_norm"))
        ids = batch.column("contribution_id").to_pylist()
        ts = batch.column("submitted_at").cast(pa.int64()).to_pylist()
        hashes = batch.column("content_hash").to_pylist()
        self.records.inc(len(ids))
        index = self.validator.index_rows(batch, sig)
        yield _CHUNK, (chunk, (ids, index))
        for member in _emit_bands(hasher, sig, ids, ts, hashes, chunk):
            yield _BANDS, member


class _HistoryBands(beam.DoFn):
    """Band members of committed records from one ``index/minhash`` Parquet file."""

    def __init__(self, config: MinHashConfig):
        self.config = config

    def setup(self) -> None:
        self.hasher = MinHasher(self.config)

    def process(self, readable: fileio.ReadableFile) -> Iterator[tuple[bytes, Member]]:
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(readable.read()), schema=MINHASH_INDEX_SCHEMA)
        if table.num_rows == 0:
            return
        params = set(table.column("params").to_pylist())
        if params != {self.hasher.params}:
            raise ValidatorError(
                f"{readable.metadata.path}: index/minhash was built with {sorted(params)} but "
                f"validators.near_duplicate now gives {self.hasher.params!r}; restore the "
                "previous MinHash settings or rebuild the index from the accepted records")
        sig = _sig_matrix(table.column("signature").to_pylist(), self.config.num_perm)
        yield from _emit_bands(
            self.hasher, sig, table.column("contribution_id").to_pylist(),
            table.column("submitted_at").cast(pa.int64()).to_pylist(),
            table.column("content_hash").to_pylist(), None)


class _VerifyBand(beam.DoFn):
    """In one band bucket, match every new record to the best earlier verified candidate."""

    def __init__(self, threshold: float, num_perm: int, skip_exact: bool):
        self.threshold = threshold
        self.num_perm = num_perm
        self.skip_exact = skip_exact
        self.pairs = Metrics.counter("near_duplicate", "candidate_checks")

    def process(self, element: tuple[bytes, Iterable[Member]]) -> Iterator[Any]:
        _, members_it = element
        # tuples may arrive as lists on some runners (Dask): normalise before de-duplicating
        members = sorted({tuple(m) for m in members_it},
                         key=lambda m: rank_key(m[4] is None, m[1], m[0]))
        if len(members) < 2 or all(m[4] is None for m in members):
            return
        sig = _sig_matrix([m[3] for m in members], self.num_perm)
        reps: list[int] = []  # earliest member of each distinct content hash, in rank order
        seen: dict[str, int] = {}
        for i, m in enumerate(members):
            if m[4] is not None and reps:
                cands = [r for r in reps if not (
                    members[r][0] == m[0] or (self.skip_exact and members[r][2] == m[2]))]
                if cands:
                    self.pairs.inc(len(cands))
                    jac = np.count_nonzero(sig[cands] == sig[i], axis=1) / self.num_perm
                    hit = np.flatnonzero(jac >= self.threshold)
                    if len(hit):
                        w = members[cands[hit[0]]]
                        yield ((m[4], m[0]),
                               (rank_key(w[4] is None, w[1], w[0]), float(jac[hit[0]])))
            if m[2] not in seen:
                seen[m[2]] = i
                reps.append(i)


def _to_chunk(kv: tuple[tuple[Any, str], tuple[tuple[int, int, str], float]]) -> Any:
    (chunk, cid), (winner, jac) = kv
    return chunk, (cid, winner[2], jac, winner[0] == 0)


class _ChunkVotes(beam.DoFn):
    """One ``near_duplicate`` vote per record of a chunk, plus its index rows."""

    def __init__(self) -> None:
        self.rejected = Metrics.counter("near_duplicate", "rejected")

    def process(self, element: tuple[Any, dict[str, list[Any]]]) -> Iterator[Any]:
        chunk, grouped = element
        for ids, index in grouped[_CHUNK]:
            matches = {m[0]: m for m in grouped["match"]}
            found = [matches.get(cid) for cid in ids]
            self.rejected.inc(sum(m is not None for m in found))
            votes = make_votes(
                ids, NearDuplicateValidator.name,
                ["reject" if m else "accept" for m in found],
                scores=[round(m[2], 6) if m else None for m in found],
                reasons=["near_duplicate" if m else None for m in found],
                details=[{"matched": m[1], "jaccard": round(m[2], 4), "history": m[3]}
                         if m else None for m in found],
            )
            yield chunk, StageOutput(votes=votes, index={"minhash": index})


class NearDuplicateStage(beam.PTransform):
    """``PCollection[(chunk_key, RecordBatch)]`` -> ``PCollection[(chunk_key, StageOutput)]``.

    ``history.of("index/minhash")`` lists the committed band-index files the new records are
    checked against; the output's ``index["minhash"]`` holds every record's index row (the
    writer keeps the accepted ones).
    """

    def __init__(self, spec: Any, history: History | None = None, *,
                 config: MinHashConfig | None = None):
        super().__init__()
        if config is None:
            from datanet.validators.registry import validator_config

            config = validator_config(spec, NearDuplicateValidator.name)
        self.spec = spec
        self.config = config
        self.history_files = (history or History()).of("index/minhash")
        self.skip_exact = skip_exact_copies(spec)

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        signed = chunks | "Sign" >> beam.ParDo(_SignChunk(self.config, self.spec))
        members = signed | "Bands" >> beam.FlatMap(select_tag, _BANDS)
        if self.history_files:
            history = (
                chunks.pipeline
                | "HistoryFiles" >> beam.Create(list(self.history_files))
                | "MatchHistory" >> fileio.MatchAll()
                | "OpenHistory" >> fileio.ReadMatches()
                | "HistoryBands" >> beam.ParDo(_HistoryBands(self.config))
            )
            members = (members, history) | "AllMembers" >> beam.Flatten()
        matches = (
            members
            | "ByBand" >> beam.GroupByKey()
            | "Verify" >> beam.ParDo(_VerifyBand(self.config.threshold, self.config.num_perm,
                                                 self.skip_exact))
            | "BestMatch" >> beam.CombinePerKey(min)
            | "ToChunk" >> beam.Map(_to_chunk)
        )
        return (
            {_CHUNK: signed | "ChunkIds" >> beam.FlatMap(select_tag, _CHUNK), "match": matches}
            | "JoinChunks" >> beam.CoGroupByKey()
            | "Votes" >> beam.ParDo(_ChunkVotes())
        )
