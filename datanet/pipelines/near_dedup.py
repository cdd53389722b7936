"""Beam-native MinHash LSH near-duplicate stage: Arrow-sharded banding, exact verification.

1. **Bands.** Per chunk, one Arrow table of band rows (``band``: uint64 hash of band number +
   band values; ``submitted_at``; the first 64 bits of ``contribution_id`` and
   ``content_hash``; ``row`` in the chunk: no signature, no strings) split by ``band`` modulo
   ``shards``; the committed records' ``index/minhash`` files are split the same way.
2. **Candidates.** ``GroupByKey`` on the shard number; per shard, one numpy sort finds every
   new record's earlier-ranked bucket mates (one per distinct content, at most
   ``max_candidates`` per bucket), as ``(record, holder, row)`` pairs: the *holder* of a
   candidate is its chunk or index file. A ``GroupByKey`` on the asking chunk drops the
   pairs found in several bands.
3. **Verification** (NeMo Curator's false-positive check). Pairs are rare, so the list of
   wanted ``(holder, row, asking chunk)`` is a side input: each chunk (ParDo over the
   signing output) and each index file (read again only if it holds a wanted row) sends the
   signatures and shingle sets of its wanted rows to the asking chunk. There
   (``CoGroupByKey`` on the chunk key) the exact Jaccard of the shingle sets decides, and a
   record loses to the best-ranked verified match ranked before it (history first, then
   earliest ``submitted_at``, then smallest contribution id).

The stage emits two outputs per chunk: its index rows, straight from signing, and its votes.
Only one shard's band rows (36 bytes per record and band) and the wanted-rows list (one row
per candidate pair and side) are ever held in one place; no signature or text goes through
a shuffle. Only ParDo, side inputs, GroupByKey, CoGroupByKey, Flatten and fileio: it runs
alike on every runner (DaskRunner included: no multi-output ParDo, see
:func:`datanet.pipelines.io.select_tag`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from datanet.errors import ValidatorError
from datanet.pipelines.dedup import by_chunk, hex64, split_by_shard
from datanet.pipelines.io import read_spilled, select_tag, spill_table
from datanet.pipelines.stages import StageOutput
from datanet.privacy.evasion import dedup_keys, fold_unicode
from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.store.history import History
from datanet.validators.base import make_votes
from datanet.validators.minhash import (
    MinHashConfig,
    MinHasher,
    NearDuplicateValidator,
    exact_jaccard,
    skip_exact_copies,
)

__all__ = ["NearDuplicateStage", "band_rows", "candidate_pairs", "hex64"]

_EMPTY = np.uint32(0xFFFFFFFF)
_NEW, _HISTORY = "c:", "h:"  # holder key prefixes: a chunk key or an index file path
_CAND_COLUMNS = ["contribution_id", "submitted_at", "signature", "shingles"]

def band_rows(hasher: MinHasher, sig: np.ndarray, ids: pa.Array | pa.ChunkedArray,
              submitted_at: pa.Array | pa.ChunkedArray,
              hashes: pa.Array | pa.ChunkedArray) -> pa.Table:
    """One row per record with shingles and band: band hash, rank fields, 64-bit refs, row."""
    rows = np.flatnonzero(~np.all(sig == _EMPTY, axis=1))
    bands = hasher.bands
    ts = pc.cast(submitted_at, pa.int64()).to_numpy(zero_copy_only=False)
    return pa.table({
        "band": hasher.band_hashes(sig[rows]).ravel(),
        "submitted_at": np.repeat(ts[rows], bands),
        "id64": np.repeat(hex64(ids)[rows], bands),
        "ch64": np.repeat(hex64(hashes)[rows], bands),
        "row": np.repeat(rows.astype(np.int32), bands),
    })


def candidate_pairs(band: np.ndarray, new: np.ndarray, ts: np.ndarray, id64: np.ndarray,
                    ch64: np.ndarray, *, skip_exact: bool, max_candidates: int = 8
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(later, earlier, capped)``: every new row with each earlier-ranked bucket mate.

    Within a bucket (equal ``band``) rows are ranked history first, then ``ts``, then id;
    only the first row of each content hash is a candidate (its copies have the same
    shingles), and only the ``max_candidates`` best-ranked ones (``capped`` counts the
    others left out); a pair of one id, or of one content when ``skip_exact``, is no
    candidate. Distinct pairs, sorted.
    """
    n = len(band)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    order = np.lexsort((id64, ts, new, band))
    b = band[order]
    starts = np.r_[True, b[1:] != b[:-1]]
    group = np.cumsum(starts) - 1
    by_content = np.lexsort((np.arange(n), ch64[order], b))
    cb, cc = b[by_content], ch64[order][by_content]
    rep = np.zeros(n, dtype=bool)
    rep[by_content[np.r_[True, (cb[1:] != cb[:-1]) | (cc[1:] != cc[:-1])]]] = True
    reps_before = np.cumsum(rep) - rep  # reps at sorted positions < i
    first_rep = reps_before[np.flatnonzero(starts)][group]  # reps before the bucket
    every = np.where(new[order], reps_before - first_rep, 0)
    count = np.minimum(every, max_candidates)
    total = int(count.sum())
    later = np.repeat(np.arange(n), count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    earlier = np.flatnonzero(rep)[np.repeat(first_rep, count) + within]
    later, earlier = order[later], order[earlier]
    keep = id64[later] != id64[earlier]
    if skip_exact:
        keep &= ch64[later] != ch64[earlier]
    key = np.sort(later[keep].astype(np.int64) * n + earlier[keep])
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return key // n, key % n, int(every.sum()) - total


def _shard_bands(holder: str, table: pa.Table, shards: int) -> Iterator[tuple[int, Any]]:
    band = table.column("band").to_numpy()
    for shard, part in split_by_shard(table, (band % np.uint64(shards)).astype(np.int64)):
        yield shard, (holder, part)


class _SignChunk(beam.DoFn):
    """Per chunk: its index rows (signatures + shingle sets) and its sharded band rows."""

    def __init__(self, config: MinHashConfig, spec: Any, scratch: str | None):
        self.config = config
        self.spec = spec
        self.scratch = scratch
        self.records = Metrics.counter("near_duplicate", "records")

    def setup(self) -> None:
        self.validator = NearDuplicateValidator(self.config, self.spec)
        self.validator.setup()

    def process(self, element: tuple[str, pa.RecordBatch]) -> Iterator[Any]:
        chunk, batch = element
        hasher = self.validator.hasher
        # homoglyphs folded as for PII and exact dedup: a look-alike copy shingles the same
        folded = fold_unicode(batch.column("text_norm"))
        sig, sets = hasher.sketch(folded)
        self.records.inc(batch.num_rows)
        index = self.validator.index_rows(batch, sig, sets)
        # the index rows leave the stage here (the votes follow, see _ChunkVotes), spilled to
        # the run's scratch when there is one: ~1.2 KB per record the runner need not hold
        held: pa.Table | str = index.select(_CAND_COLUMNS)
        out: pa.Table | str = index
        if self.scratch:
            out = held = spill_table(self.scratch, chunk, "minhash-index", index)
        yield "out", (chunk, StageOutput(votes=VOTE_SCHEMA.empty_table(),
                                         index={"minhash": out}))
        yield "ids", (chunk, index.select(["contribution_id"]))
        yield "index", (chunk, held)
        keys = dedup_keys(batch.column("text_norm"), batch.column("content_hash"),
                          folded=folded)  # what skip_exact compares: exact copies by the fold
        table = band_rows(hasher, sig, batch.column("contribution_id"),
                          batch.column("submitted_at"), keys)
        for item in _shard_bands(_NEW + chunk, table, self.config.shards):
            yield "bands", item


def _read_index(data: bytes, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), columns=columns)


class _HistoryBands(beam.DoFn):
    """Sharded band rows of the committed records of one ``index/minhash`` file."""

    def __init__(self, config: MinHashConfig):
        self.config = config

    def setup(self) -> None:
        self.hasher = MinHasher(self.config)

    def process(self, readable: fileio.ReadableFile) -> Iterator[tuple[int, Any]]:
        path = readable.metadata.path
        table = _read_index(readable.read())
        if table.num_rows == 0:
            return
        if "shingles" not in table.column_names:
            raise ValidatorError(
                f"{path}: index/minhash has no 'shingles' column (written before candidates "
                "were verified by exact Jaccard); rebuild the index from the accepted records")
        params = set(table.column("params").to_pylist())
        if params != {self.hasher.params}:
            raise ValidatorError(
                f"{path}: index/minhash was built with {sorted(params)} but "
                f"validators.near_duplicate now gives {self.hasher.params!r}; restore the "
                "previous MinHash settings or rebuild the index from the accepted records")
        sig = _sig_matrix(table.column("signature"), self.config.num_perm)
        bands = band_rows(self.hasher, sig, table.column("contribution_id"),
                          table.column("submitted_at"), table.column("content_hash"))
        yield from _shard_bands(_HISTORY + path, bands, self.config.shards)


def _sig_matrix(col: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    """``(n, num_perm)`` uint32 from a binary column of little-endian signatures."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
    raw = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return raw.view("<u4").reshape(n, num_perm)


class _FindCandidates(beam.DoFn):
    """One shard: its candidate pairs ``(row, holder, cand_row)``, keyed by asking chunk."""

    def __init__(self, skip_exact: bool, max_candidates: int):
        self.skip_exact = skip_exact
        self.max_candidates = max_candidates
        self.pairs = Metrics.counter("near_duplicate", "candidate_pairs")
        self.capped = Metrics.counter("near_duplicate", "candidates_capped")

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterator[Any]:
        _, parts = element
        holders: list[str] = []
        tables: list[pa.Table] = []
        for holder, table in parts:  # (holder, table) may arrive as a list (Dask)
            holders.append(holder)
            tables.append(table)
        is_new = np.array([h.startswith(_NEW) for h in holders])
        if not is_new.any():
            return
        src = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
        rows = pa.concat_tables(tables)
        later, earlier, capped = candidate_pairs(
            rows.column("band").to_numpy(), is_new[src],
            rows.column("submitted_at").to_numpy(), rows.column("id64").to_numpy(),
            rows.column("ch64").to_numpy(), skip_exact=self.skip_exact,
            max_candidates=self.max_candidates)
        self.capped.inc(capped)
        if not len(later):
            return
        self.pairs.inc(len(later))
        row = rows.column("row").to_numpy()
        names = np.array(holders, dtype=object)
        pairs = pa.table({
            "chunk": names[src[later]], "row": row[later],
            "holder": names[src[earlier]], "cand_row": row[earlier],
        })
        for asker, part in by_chunk(pairs):
            yield asker[len(_NEW):], part


def _distinct_pairs(item: tuple[str, Iterable[pa.Table]]) -> Iterator[Any]:
    """A chunk's pairs from every shard, once each (a pair is found in up to ``bands``
    shards): ``pairs`` for its votes and ``wants`` per holder (its own rows included)."""
    chunk, tables = item
    pairs = (pa.concat_tables(list(tables)).group_by(["row", "holder", "cand_row"])
             .aggregate([]).sort_by([("row", "ascending"), ("holder", "ascending"),
                                     ("cand_row", "ascending")]))
    yield "pairs", (chunk, pairs)
    own = _NEW + chunk
    wants = pa.table({
        "holder": pa.concat_arrays([pairs.column("holder").combine_chunks(),
                                    pa.array([own] * pairs.num_rows, pa.string())]),
        "cand_row": pa.concat_arrays([pairs.column("cand_row").combine_chunks(),
                                      pairs.column("row").combine_chunks()]),
    })
    for holder, part in _group_by(wants, "holder"):
        rows = np.unique(part.column("cand_row").to_numpy())
        yield "wants", (holder, pa.table({"cand_row": rows,
                                          "dest": pa.array([chunk] * len(rows), pa.string())}))


def _group_by(table: pa.Table, column: str) -> Iterator[tuple[str, pa.Table]]:
    """Rows per distinct value of a string column (sort once, slice), in value order.

    Slices share their parent's buffers: only for reading, never to be emitted (pickling a
    slice serialises the whole parent).
    """
    table = table.sort_by(column)
    values = table.column(column).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(values)], strict=True):
        yield values[begin], table.slice(begin, end - begin)


def _wanted(holder: str, wants: Iterable[Any]) -> pa.Table | None:
    """Distinct ``(dest, cand_row)`` a holder must show (from the side input), or None."""
    parts = [table for key, table in wants if key == holder]
    return pa.concat_tables(parts).group_by(["dest", "cand_row"]).aggregate([]) if parts else None


def _serve(holder: str, index: pa.Table, wanted: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Signatures and shingle sets of the wanted rows, to each asking chunk."""
    for dest, part in _group_by(wanted, "dest"):
        rows = np.unique(part.column("cand_row").to_numpy())
        out = index.take(pa.array(rows))
        n = len(rows)
        yield dest, pa.table({
            "holder": pa.array([holder] * n, pa.string()),
            "cand_row": pa.array(rows, pa.int32()),
            "cand_id": out.column("contribution_id"),
            "cand_at": pc.cast(out.column("submitted_at"), pa.int64()),
            "cand_history": pa.array([holder.startswith(_HISTORY)] * n, pa.bool_()),
            "cand_signature": out.column("signature"),
            "cand_shingles": out.column("shingles"),
        })


def _serve_chunk(item: tuple[str, pa.Table | str], wants: Iterable[Any]
                 ) -> Iterator[tuple[str, pa.Table]]:
    holder = _NEW + item[0]
    wanted = _wanted(holder, wants)
    if wanted is not None:
        rows = item[1]
        if isinstance(rows, str):
            rows = read_spilled(rows).select(_CAND_COLUMNS)
        yield from _serve(holder, rows, wanted)


def _serve_history(readable: fileio.ReadableFile, wants: Iterable[Any]
                   ) -> Iterator[tuple[str, pa.Table]]:
    holder = _HISTORY + readable.metadata.path
    wanted = _wanted(holder, wants)
    if wanted is not None:
        yield from _serve(holder, _read_index(readable.read(), _CAND_COLUMNS), wanted)


class _ChunkVotes(beam.DoFn):
    """One ``near_duplicate`` vote per record of a chunk (exact Jaccard), plus its index."""

    def __init__(self, threshold: float, num_perm: int):
        self.threshold = threshold
        self.num_perm = num_perm
        self.rejected = Metrics.counter("near_duplicate", "rejected")
        self.unverified = Metrics.counter("near_duplicate", "candidates_below_threshold")

    def process(self, element: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        chunk, grouped = element
        for ids_table in grouped["ids"]:
            found = self._matches(_NEW + chunk, list(grouped["pairs"]), list(grouped["cands"]))
            ids = ids_table.column("contribution_id").to_pylist()
            hits = [found.get(i) for i in range(len(ids))]
            self.rejected.inc(len(found))
            votes = make_votes(
                ids, NearDuplicateValidator.name,
                ["reject" if m else "accept" for m in hits],
                scores=[m[0] if m else None for m in hits],
                reasons=["near_duplicate" if m else None for m in hits],
                details=[m[1] if m else None for m in hits],
            )
            yield chunk, StageOutput(votes=votes)

    def _matches(self, own: str, pairs: list[pa.Table], cands: list[pa.Table]
                 ) -> dict[int, tuple[float, dict[str, Any]]]:
        """Row -> (score, details) of its best-ranked verified match (others are absent)."""
        if not pairs or not cands:
            return {}
        cand = pa.concat_tables(cands)
        slots = cand.select(["holder", "cand_row"]).append_column(
            "slot", pa.array(np.arange(cand.num_rows, dtype=np.int64)))
        pair = pa.concat_tables(pairs)
        # Acero joins no list columns: join slots, then take the rows' columns
        pair = pair.join(slots, keys=["holder", "cand_row"], join_type="inner")
        pair = pair.append_column("own", pa.array([own] * pair.num_rows, pa.string())).join(
            slots.rename_columns(["own", "row", "own_slot"]), keys=["own", "row"],
            join_type="inner").sort_by([("row", "ascending"), ("slot", "ascending")])
        new = cand.take(pair.column("own_slot"))
        got = cand.take(pair.column("slot"))
        new_sig = _sig_matrix(new.column("cand_signature"), self.num_perm)
        cand_sig = _sig_matrix(got.column("cand_signature"), self.num_perm)
        estimated = np.count_nonzero(new_sig == cand_sig, axis=1) / self.num_perm
        exact = exact_jaccard(new.column("cand_shingles"), got.column("cand_shingles"))
        same = pc.equal(new.column("cand_id"), got.column("cand_id"))
        ok = (exact >= self.threshold) & ~same.to_numpy(zero_copy_only=False)
        self.unverified.inc(int((~ok).sum()))
        if not ok.any():
            return {}
        keep = pa.array(ok)
        best = pa.table({
            "row": pair.column("row").filter(keep),
            "rank": pc.invert(got.column("cand_history")).filter(keep),
            "cand_at": got.column("cand_at").filter(keep),
            "cand_id": got.column("cand_id").filter(keep),
            "jaccard": pa.array(exact[ok]),
            "estimated": pa.array(estimated[ok]),
            "history": got.column("cand_history").filter(keep),
        }).sort_by([("row", "ascending"), ("rank", "ascending"), ("cand_at", "ascending"),
                    ("cand_id", "ascending")]).to_pylist()
        out: dict[int, tuple[float, dict[str, Any]]] = {}
        for m in best:
            out.setdefault(m["row"], (round(m["jaccard"], 6), {
                "matched": m["cand_id"], "jaccard": round(m["jaccard"], 4),
                "estimated_jaccard": round(m["estimated"], 4), "history": m["history"]}))
        return out


class NearDuplicateStage(beam.PTransform):
    """``PCollection[(chunk_key, RecordBatch)]`` -> ``PCollection[(chunk_key, StageOutput)]``.

    ``history.of("index/minhash")`` lists the committed index files the new records are
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
        self.scratch = (history or History()).scratch
        self.skip_exact = skip_exact_copies(spec)

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        signed = chunks | "Sign" >> beam.ParDo(_SignChunk(self.config, self.spec, self.scratch))
        bands = signed | "Bands" >> beam.FlatMap(select_tag, "bands")
        if self.history_files:
            files = (
                chunks.pipeline
                | "HistoryFiles" >> beam.Create(list(self.history_files), reshuffle=False)
                | "MatchHistory" >> fileio.MatchAll()
                | "OpenHistory" >> fileio.ReadMatches()
            )
            history = files | "HistoryBands" >> beam.ParDo(_HistoryBands(self.config))
            bands = (bands, history) | "AllBands" >> beam.Flatten()
        found = (
            bands
            | "ByShard" >> beam.GroupByKey()
            | "Candidates" >> beam.ParDo(_FindCandidates(self.skip_exact,
                                                             self.config.max_candidates))
            | "ByAsker" >> beam.GroupByKey()
            | "DistinctPairs" >> beam.FlatMap(_distinct_pairs)
        )
        wants = beam.pvalue.AsList(found | "Wants" >> beam.FlatMap(select_tag, "wants"))
        cands = (signed | "Index" >> beam.FlatMap(select_tag, "index")
                 | "ServeChunks" >> beam.FlatMap(_serve_chunk, wants))
        if self.history_files:
            served = files | "ServeHistory" >> beam.FlatMap(_serve_history, wants)
            cands = (cands, served) | "AllCands" >> beam.Flatten()
        votes = (
            {"ids": signed | "Ids" >> beam.FlatMap(select_tag, "ids"),
             "pairs": found | "Pairs" >> beam.FlatMap(select_tag, "pairs"),
             "cands": cands}
            | "JoinChunks" >> beam.CoGroupByKey()
            | "Votes" >> beam.ParDo(_ChunkVotes(self.config.threshold, self.config.num_perm))
        )
        out = signed | "Out" >> beam.FlatMap(select_tag, "out")
        return (votes, out) | "Outputs" >> beam.Flatten()
