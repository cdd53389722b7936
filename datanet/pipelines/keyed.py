"""The one keyed stage: shard, group, resolve and route back the votes of any keyed validator.

For a :class:`~datanet.validators.keyed.KeyedValidator` ``v`` (see that module's contract):

1. **Key.** Per chunk, ``v.key(batch)``; its key rows are split by ``shard_key % shards`` and
   spilled to the run's scratch as one Arrow IPC file per chunk (one record batch per shard),
   its lookup and index tables likewise. Committed files of ``v.history_kind`` go through
   ``v.history_key`` the same way (their lookup is the committed file itself).
2. **Resolve.** ``GroupByKey`` on the shard number brings a shard's part references together
   (chunks x shards small tuples, never a record); the shard's key rows are read, tagged with
   ``_part`` / ``_history`` and handed to ``v.resolve`` with a row lookup over the parts.
3. **Route.** The non-accept votes and drops are split by chunk and spilled (one file per
   shard, one record batch per chunk); ``(chunk, StageOutput)`` references go to the writer,
   which fills in the accept votes (:func:`datanet.validators.keyed.dense_votes`).

What the runner holds and shuffles is bounded by chunks x shards, not by records. Without a
scratch directory (unit tests) the tables travel in memory instead. Only ParDo, GroupByKey,
Flatten and fileio: it runs alike on every runner (DaskRunner included, no multi-output ParDo,
see :func:`datanet.pipelines.io.select_tag`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from datanet._memory import release_memory
from datanet.pipelines.io import Spilled, load_spilled, select_tag, spill_batches, spill_table
from datanet.pipelines.pool import ForkedDoFn
from datanet.pipelines.stages import StageOutput
from datanet.store.history import History
from datanet.validators.keyed import KeyedValidator, KeyRows, Shard, with_part

__all__ = ["KeyedStage", "PartRef", "key_chunk", "split_by_shard"]


@dataclass(frozen=True)
class PartRef:
    """One chunk's (or committed file's) key rows of one shard, and where its lookup is.

    ``holder``: the chunk key, or the committed file's path for history; ``lookup``: the
    chunk's lookup table (spilled or in memory) or, for history, None (the file itself).
    """

    holder: str
    history: bool
    rows: Spilled
    lookup: Spilled | None


def _groups(values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(value, row indices)`` per distinct integer value, in value order (rows in order)."""
    order = np.argsort(values, kind="stable")
    bounds = np.flatnonzero(np.diff(values[order])) + 1
    return [(int(values[idx[0]]), idx) for idx in np.split(order, bounds) if idx.size]


def split_by_shard(rows: pa.Table, shards: int, *, compact: bool = True
                   ) -> list[tuple[int, pa.Table]]:
    """``(shard, rows)`` parts of key rows by ``shard_key % shards``, in shard order, rows in
    their order within a part. ``compact``: each part its own copy (a slice would pickle its
    parent's whole buffers); else slices of one copy sorted by shard (one ``take`` instead of
    one per shard: for a part written to an IPC file, which writes a slice's rows only)."""
    shard = (rows.column("shard_key").to_numpy() % np.uint64(shards)).astype(np.int64)
    if compact:
        return [(s, rows.take(pa.array(idx))) for s, idx in _groups(shard)]
    counts = np.bincount(shard, minlength=shards)
    ordered = rows.take(pa.array(np.argsort(shard, kind="stable")))
    starts = np.cumsum(counts) - counts
    return [(int(s), ordered.slice(int(starts[s]), int(counts[s])))
            for s in np.flatnonzero(counts)]


def _spill_parts(validator: KeyedValidator, holder: str, history: bool, keyed: KeyRows,
                 scratch: str | None, lookup: Spilled | None) -> Iterator[tuple[int, PartRef]]:
    parts = split_by_shard(keyed.rows, validator.shards, compact=not scratch)
    refs: Sequence[Spilled] = [t for _, t in parts]
    if scratch and parts:
        # uncompressed: key rows are mostly hashes, which LZ4 cannot shrink (-13 % bytes for
        # 3x the write time), and a shard then reads its batch as it is
        refs = spill_batches(scratch, holder, f"{validator.name}-rows", [t for _, t in parts],
                             compression=None)
    for (shard, _), ref in zip(parts, refs, strict=True):
        yield shard, PartRef(holder, history, ref, lookup)


def key_chunk(validator: KeyedValidator, scratch: str | None, chunk: str,
              batch: pa.RecordBatch) -> list[tuple[str, Any]]:
    """Step 1 for one chunk: ``("out", (chunk, StageOutput))`` with its index tables (if any)
    and ``("parts", (shard, PartRef))`` per shard of its key rows, spilled to ``scratch``."""
    keyed = validator.key(batch)
    name = validator.name
    index: dict[str, Spilled] = {}
    lookup: Spilled | None = keyed.lookup
    for kind, table in keyed.index.items():
        index[kind] = spill_table(scratch, chunk, f"{name}-{kind}", table) if scratch else table
        if keyed.lookup is table:
            lookup = index[kind]
    if scratch and isinstance(lookup, pa.Table):
        lookup = spill_table(scratch, chunk, f"{name}-lookup", lookup)
    out: list[tuple[str, Any]] = [("out", (chunk, StageOutput(index=index)))] if index else []
    out += [("parts", item)
            for item in _spill_parts(validator, chunk, False, keyed, scratch, lookup)]
    return out


class _KeyChunk(beam.DoFn):
    """Per chunk: its sharded key rows (``parts``) and index tables (``out``)."""

    def __init__(self, validator: KeyedValidator, scratch: str | None):
        self.validator = validator
        self.scratch = scratch
        self.records = Metrics.counter(validator.name, "records")

    def setup(self) -> None:
        self.validator.setup()

    def process(self, element: tuple[str, pa.RecordBatch]) -> Iterator[Any]:
        chunk, batch = element
        items = key_chunk(self.validator, self.scratch, chunk, batch)
        self.records.inc(batch.num_rows)
        yield from items


class _KeyHistory(beam.DoFn):
    """Per committed file of the validator's history kind: its sharded key rows."""

    def __init__(self, validator: KeyedValidator, scratch: str | None):
        self.validator = validator
        self.scratch = scratch

    def setup(self) -> None:
        self.validator.setup()

    def process(self, readable: fileio.ReadableFile) -> Iterator[tuple[int, PartRef]]:
        path = readable.metadata.path
        columns = self.validator.history_columns
        table = pq.read_table(pa.BufferReader(readable.read()),
                              columns=list(columns) if columns else None)
        if table.num_rows == 0:
            return
        keyed = self.validator.history_key(table, path)
        yield from _spill_parts(self.validator, path, True, keyed, self.scratch, None)


def _read_committed(path: str, columns: Sequence[str]) -> pa.Table:
    with FileSystems.open(path) as fh:
        return pq.read_table(io.BytesIO(fh.read()), columns=list(columns))


class _ResolveShard(ForkedDoFn):
    """One shard: resolve it, and send each chunk its votes and drops."""

    grouped = True

    def __init__(self, validator: KeyedValidator, scratch: str | None, workers: int = 1,
                 sources: dict[str, tuple[str, ...]] | None = None):
        self.validator = validator
        self.scratch = scratch
        self.workers = workers
        self.sources = sources or {}  # history path -> its batch's history_source files

    def setup(self) -> None:
        self.validator.setup()

    def _source(self, path: str) -> pa.Table:
        """The files of the validator's ``history_source`` committed with ``path``."""
        columns = self.validator.history_source_columns
        files = self.sources.get(path, ())
        if not files:
            raise ValueError(f"{self.validator.name}: no {self.validator.history_source} "
                             f"files are committed in the batch of {path}")
        return pa.concat_tables([_read_committed(f, columns) for f in files])

    def received(self, note: dict[str, int]) -> None:
        self.count(self.validator.name, note)

    def work(self, element: tuple[int, Iterable[PartRef]]
             ) -> tuple[list[tuple[str, StageOutput]], dict[str, int]]:
        shard, refs = element
        # a stable order: the outcome must not depend on the order parts arrive in
        parts = sorted(refs, key=lambda r: (not r.history, r.holder, str(r.rows)))
        if all(p.history for p in parts):
            return [], {}
        rows = pa.concat_tables(
            [with_part(load_spilled(p.rows), i, p.history) for i, p in enumerate(parts)],
            promote_options="default")

        def fetch(part: int, want: np.ndarray, columns: Sequence[str]) -> pa.Table:
            # read, take and let go: a shard's lookups touch many chunks, and caching their
            # tables would hold them all (Shard.lookup asks for each part once per call)
            ref = parts[part]
            if ref.history:
                got = _read_committed(ref.holder, columns).take(pa.array(want))
                return self.validator.complete_history(got, lambda: self._source(ref.holder))
            if ref.lookup is None:
                raise ValueError(f"{self.validator.name}: {ref.holder} has no lookup table")
            return load_spilled(ref.lookup).select(list(columns)).take(pa.array(want))

        out = self.validator.resolve(Shard(rows, fetch))
        counts = {key: int(value) for key, value in out.counters.items()}
        by_chunk: dict[str, dict[str, pa.Table]] = {}
        for what, table in (("votes", out.votes), ("drops", out.drops)):
            if table is None or not table.num_rows:
                continue
            for part, idx in _groups(table.column("_part").to_numpy()):
                holder = parts[part].holder
                by_chunk.setdefault(holder, {})[what] = table.take(pa.array(idx))
        chunks = sorted(by_chunk)
        refs_of: dict[str, dict[str, Spilled]] = {c: {} for c in chunks}
        for what in ("votes", "drops"):
            have = [c for c in chunks if what in by_chunk[c]]
            tables = [by_chunk[c][what] for c in have]
            spilled: Sequence[Spilled] = tables
            if self.scratch and tables:
                spilled = spill_batches(self.scratch, f"{self.validator.name}\x00{shard}",
                                        f"keyed-{what}", tables)
            for c, ref in zip(have, spilled, strict=True):
                refs_of[c][what] = ref
        del rows, out, by_chunk
        release_memory()  # one shard's tables at a time, not the high-water mark of all
        return [(c, StageOutput(votes=(refs_of[c]["votes"],) if "votes" in refs_of[c] else (),
                                drops=(refs_of[c]["drops"],) if "drops" in refs_of[c] else ()))
                for c in chunks], counts


class KeyedStage(beam.PTransform):
    """``PCollection[(chunk_key, RecordBatch)]`` -> ``PCollection[(chunk_key, StageOutput)]``
    for one keyed validator: its sparse votes, drops and index tables per chunk.

    ``prekeyed``: the input is already step 1's output (the :func:`key_chunk` items of every
    chunk), computed where the chunk is (the batch validation worker), so a chunk is not
    shipped or keyed once more per keyed validator.
    """

    def __init__(self, validator: KeyedValidator, history: History | None = None,
                 workers: int = 1, *, prekeyed: bool = False):
        super().__init__()
        history = history or History()
        self.validator = validator
        self.workers = workers
        self.prekeyed = prekeyed
        self.scratch = history.scratch
        kind = validator.history_kind
        self.history_files = history.of(kind) if kind else ()
        source = validator.history_source
        self.sources = ({p: history.beside(p, source) for p in self.history_files}
                        if source else {})

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        keyed = (chunks if self.prekeyed
                 else chunks | "Key" >> beam.ParDo(_KeyChunk(self.validator, self.scratch)))
        parts = keyed | "Parts" >> beam.FlatMap(select_tag, "parts")
        if self.history_files:
            history = (
                chunks.pipeline
                | "HistoryFiles" >> beam.Create(list(self.history_files), reshuffle=False)
                | "MatchHistory" >> fileio.MatchAll()
                | "OpenHistory" >> fileio.ReadMatches()
                | "KeyHistory" >> beam.ParDo(_KeyHistory(self.validator, self.scratch))
            )
            parts = (parts, history) | "AllParts" >> beam.Flatten()
        votes = (
            parts
            | "ByShard" >> beam.GroupByKey()
            | "Resolve" >> beam.ParDo(_ResolveShard(self.validator, self.scratch,
                                                    self.workers, self.sources))
        )
        out = keyed | "Index" >> beam.FlatMap(select_tag, "out")
        return (votes, out) | "Outputs" >> beam.Flatten()
