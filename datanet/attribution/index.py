"""Attribution index shards: one per committed batch, over its accepted records.

A shard is an Arrow IPC file ``attribution/batch=<id>/shard-<sha256[:32]>.arrow`` with two
columns sorted by hash: ``gram`` (uint64, the hash of an n-gram of normalised tokens, see
:mod:`.tokens`) and ``row`` (uint32, the record's position in the batch's accepted files, in
manifest order), one row per distinct (gram, record) pair: 12 bytes per n-gram. Schema
metadata records the tokenizer, ``ngram``, the record and token counts. Uncompressed, so a
reader memory-maps it and binary-searches it in place (no load time, pages shared between
processes).

A batch of up to :data:`IN_MEMORY_PAIRS` pairs is sorted in memory and written as one record
batch. A larger one is built in bounded memory: each part of its records (16,384 at a time)
has its pairs spilled to a file grouped into ``2**SPILL_BITS`` buckets by the top bits of the
gram (the hashes are uniform, so buckets are even); each bucket, its segment of every part in
part order, is sorted and de-duplicated alone, and the shard holds one record batch per bucket
in bucket order, which is global gram order. Same pairs either way, and the same bytes for the
same records, in one process or with forked workers (which write their parts' files
themselves: only bucket counts come back through their pipes).

The batch manifest names the shard under the kind ``attribution`` with its sha256; a batch
committed before attribution existed gets its shard from ``datanet index`` with a pointer
``attribution/<seq>-<batch_id>.json`` (the manifest is immutable), created if absent under
the commit lock. Shards are never rebuilt: each batch's is built once, from its own records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datanet import _ipc
from datanet._pool import ChunkPool, pool_size
from datanet.attribution.config import attribution_config
from datanet.attribution.tokens import (
    TOKENIZER,
    dedup_sorted_pairs,
    record_grams,
    sort_pairs,
)
from datanet.errors import StoreError
from datanet.schemas.manifest import FileEntry
from datanet.store.atomic import create_exclusive, move_into_place
from datanet.store.fs import StorePath
from datanet.validators._kernels import group_by_top_bits

if TYPE_CHECKING:
    from datanet.schemas.manifest import Manifest
    from datanet.store.layout import DatanetStore

__all__ = ["KIND", "Shard", "build_shard", "write_shard", "shard_entry", "index_missing",
           "load_shard", "accepted_records"]

#: Manifest kind naming a batch's shard.
KIND = "attribution"
_SCHEMA = pa.schema([("gram", pa.uint64()), ("row", pa.uint32())])

#: (gram, row) pairs sorted in memory at once: 4 Mi pairs, 48 MiB of arrays (about 20k
#: records of 1 KB). Above it the build spills to bucket files (module doc), so memory is
#: bounded by a bucket, not by the batch (issue 16: memory flat in N). At 200k records the
#: build peaked at +920 MB over its start with 16 Mi pairs and 65,536-text reads, +460 MB with
#: 4 Mi and 16,384 (and took 7.8 s, not 9.4 s: same shard bytes).
IN_MEMORY_PAIRS = 1 << 22
#: Spill buckets = 2**SPILL_BITS, keyed by the top bits of the gram: 256 buckets keep each one
#: under IN_MEMORY_PAIRS up to ~1 G pairs (~5M records of 1 KB) in a batch (a bucket is
#: 1/256 of the batch above that).
SPILL_BITS = 8


@dataclass(frozen=True)
class Shard:
    """A loaded shard: ``parts`` of sorted ``(grams, rows)`` arrays (memory-mapped), in gram
    order (one part, or one per spill bucket); ``records`` and ``tokens`` it indexes."""

    batch_id: str
    parts: tuple[tuple[np.ndarray, np.ndarray], ...]
    ngram: int
    records: int
    tokens: int

    @classmethod
    def of(cls, batch_id: str, grams: np.ndarray, rows: np.ndarray, ngram: int, records: int,
           tokens: int) -> Shard:
        """A one-part shard (benchmarks, tests)."""
        return cls(batch_id, ((grams, rows),), ngram, records, tokens)

    @classmethod
    def from_table(cls, batch_id: str, table: pa.Table) -> Shard:
        """A shard from its Arrow table (a memory-mapped IPC file: no copy)."""
        meta = json.loads(table.schema.metadata[b"datanet.attribution"])
        grams, rows = table.column("gram"), table.column("row")
        parts = tuple((g.to_numpy(), r.to_numpy())
                      for g, r in zip(grams.chunks, rows.chunks, strict=True) if len(g))
        return cls(batch_id, parts, int(meta["ngram"]), int(meta["records"]),
                   int(meta["tokens"]))


#: Rows of accepted text read (and given to a worker) at a time by :func:`write_shard`.
_SHARD_BATCH_ROWS = 16384


@dataclass
class _Part:
    """The (gram, row) pairs of one text array, grouped by spill bucket (the top
    :data:`SPILL_BITS` of the gram; arrival order kept within a bucket): in memory, or in the
    files ``path.g`` / ``path.r`` (written by a pool worker, or by :class:`_Spill`). Rows are
    numbered from 0 within the array; ``row_base`` is the array's first row in the batch."""

    counts: np.ndarray
    records: int
    tokens: int
    grams: np.ndarray | None = None
    rows: np.ndarray | None = None
    path: str | None = None
    row_base: int = 0

    @property
    def pairs(self) -> int:
        return int(self.counts.sum())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All pairs, rows numbered within the batch."""
        if self.grams is None or self.rows is None:
            assert self.path is not None
            grams, rows = (np.fromfile(f"{self.path}.g", np.uint64),
                           np.fromfile(f"{self.path}.r", np.uint32))
        else:
            grams, rows = self.grams, self.rows
        return grams, rows + np.uint32(self.row_base)

    def segment(self, bucket: int) -> tuple[str, int, int, int]:
        """``(path, first pair, pairs, row_base)`` of one bucket in the part's files."""
        assert self.path is not None
        start = int(self.counts[:bucket].sum())
        return self.path, start, int(self.counts[bucket]), self.row_base


def _grams_of(texts: pa.Array | pa.ChunkedArray, ngram: int, out: str | None = None) -> _Part:
    """The array's pairs grouped by spill bucket, where they are made (a pool worker): kept in
    memory, or with ``out`` written to ``out.g`` / ``out.r`` and only the bucket counts
    returned (a worker's pairs do not travel back through its pipe: ~40 MB per 16,384
    records made the forked build slower than one process)."""
    grams, rows, toks = record_grams(texts, ngram)
    grams, rows, counts = group_by_top_bits(grams, rows, SPILL_BITS)
    if out is None:
        return _Part(counts, len(texts), toks, grams, rows)
    grams.tofile(f"{out}.g")
    rows.tofile(f"{out}.r")
    return _Part(counts, len(texts), toks, path=out)


def _grams_of_file(path: str, span: _ipc.BatchSpan, ngram: int, out: str) -> _Part:
    """:func:`_grams_of` of the text array spilled to ``path`` (read, then the file removed):
    how a pool worker gets its texts without a pickle through its pipe."""
    try:
        return _grams_of(_ipc.read_local(path, span).column(0), ngram, out)
    finally:
        os.remove(path)  # the file is this call's alone


def _parts(texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array], ngram: int,
           folder: str, workers: int = 1) -> Iterator[_Part]:
    """A :class:`_Part` per text array, in order, ``row_base`` set; ``workers`` > 1: the
    arrays' n-grams are computed in that many forked processes, their pairs written to files
    in ``folder``."""
    arrays = [texts] if isinstance(texts, (pa.Array, pa.ChunkedArray)) else texts
    pool = None
    if workers > 1:
        _warm(ngram)
        pool = ChunkPool(_grams_of_file, workers)
    n_records = 0
    try:
        for done in _results(arrays, ngram, pool, folder):
            for part in done:
                part.row_base = n_records
                n_records += part.records
                yield part
    finally:
        if pool is not None:
            pool.close()


def _warm(ngram: int) -> None:
    """Load the compiled kernels in this process before it forks: a kernel a worker loads
    from numba's cache is loaded again by every worker of every pool (~0.1 s each)."""
    part = _grams_of(pa.array(["warm up the kernels " * ngram, "\u00e9"], pa.string()), ngram)
    assert part.grams is not None and part.rows is not None
    _sorted_unique(part.grams, part.rows)


def _results(arrays: Iterable[pa.Array | pa.ChunkedArray], ngram: int, pool: ChunkPool | None,
             folder: str) -> Iterator[Iterable[_Part]]:
    for i, part in enumerate(arrays):
        if pool is None:
            yield [_grams_of(part, ngram)]
        else:
            name = os.path.join(folder, f"part-{i:06d}")
            [span] = _ipc.write_local(f"{name}.arrow", [pa.table({"text": part})])
            yield pool.submit(f"{name}.arrow", span, ngram, name)
    if pool is not None:
        yield pool.drain()


def _sorted_unique(grams: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # rows ascend within a gram's pairs as they come (an array's pairs are grouped by bucket
    # with arrival order kept, and equal grams share a bucket) and the radix sort is stable,
    # so a record repeating an n-gram leaves adjacent duplicates: keep one pair
    grams, rows = sort_pairs(grams, rows)
    n = dedup_sorted_pairs(grams, rows)
    return grams[:n], rows[:n]


class _Spill:
    """The parts of a batch too large to sort in memory, each in its own pair of files
    grouped by bucket; a bucket is the concatenation of its segment of every part, in part
    order (so its stable sort equals the global one restricted to it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.parts: list[_Part] = []
        self.sizes = np.zeros(1 << SPILL_BITS, np.int64)

    def add(self, part: _Part) -> None:
        """Keep a part (written to files first if it is in memory)."""
        if part.path is None:
            path = str(self.folder / f"held-{len(self.parts):06d}")
            grams, rows = part.grams, part.rows
            assert grams is not None and rows is not None
            grams.tofile(f"{path}.g")
            rows.tofile(f"{path}.r")
            part = _Part(part.counts, part.records, part.tokens, path=path,
                         row_base=part.row_base)
        self.parts.append(part)
        self.sizes += part.counts

    def _bucket(self, bucket: int) -> str:
        return str(self.folder / f"bucket-{bucket:03d}")

    def sort_buckets(self, workers: int = 1) -> int:
        """Sort and de-duplicate every bucket into its own files (``workers`` > 1: buckets in
        that many forked processes), then drop the part files; the pairs kept."""
        todo = [([p.segment(int(b)) for p in self.parts if p.counts[b]],
                 self._bucket(int(b)), int(b)) for b in np.flatnonzero(self.sizes)]
        if workers > 1 and len(todo) > 1:
            pool = ChunkPool(_sort_bucket, workers)
            try:
                done = [r for item in todo for r in pool.submit(*item)]
                done += list(pool.drain())
            finally:
                pool.close()
        else:
            done = [_sort_bucket(*item) for item in todo]
        for part in self.parts:
            assert part.path is not None
            os.remove(f"{part.path}.g")
            os.remove(f"{part.path}.r")
        for b, size in done:
            self.sizes[b] = size
        return int(sum(size for _, size in done))

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Each sorted bucket as a record batch, in bucket order (its files removed once
        read)."""
        for b in np.flatnonzero(self.sizes):
            path = self._bucket(int(b))
            batch = pa.record_batch([np.fromfile(f"{path}.g", np.uint64),
                                     np.fromfile(f"{path}.r", np.uint32)], schema=_SCHEMA)
            os.remove(f"{path}.g")
            os.remove(f"{path}.r")
            yield batch


def _sort_bucket(segments: list[tuple[str, int, int, int]], out: str, bucket: int
                 ) -> tuple[int, int]:
    """One bucket, from its segment ``(path, first pair, pairs, row_base)`` of each part,
    sorted and de-duplicated into ``out.g`` / ``out.r``: ``(bucket, pairs kept)``."""
    grams = np.concatenate([np.fromfile(f"{path}.g", np.uint64, n, offset=8 * start)
                            for path, start, n, _ in segments])
    rows = np.concatenate([np.fromfile(f"{path}.r", np.uint32, n, offset=4 * start)
                           + np.uint32(base) for path, start, n, base in segments])
    grams, rows = _sorted_unique(grams, rows)
    grams.tofile(f"{out}.g")
    rows.tofile(f"{out}.r")
    return bucket, len(grams)


def _write_shard_to(sink: Any, texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array],
                    ngram: int, spill_dir: str | Path | None, workers: int = 1,
                    sorted_hook: Callable[[], object] | None = None) -> dict[str, Any]:
    """Write the shard of ``texts`` (row = position) as Arrow IPC to ``sink``; its metadata.
    Spill files (if the batch is large, or pairs made by pool workers) go to a temporary
    folder under ``spill_dir``. ``sorted_hook`` is called once the pairs are sorted, before
    they are written (every worker pool is closed by then)."""
    held: list[_Part] = []
    in_memory = n_records = n_tokens = 0
    spill: _Spill | None = None
    with tempfile.TemporaryDirectory(prefix="attribution-spill-", dir=spill_dir) as tmp:
        for part in _parts(texts, ngram, tmp, workers):
            n_records += part.records
            n_tokens += part.tokens
            if spill is None:
                held.append(part)
                in_memory += part.pairs
                if in_memory > IN_MEMORY_PAIRS:
                    spill = _Spill(Path(tmp))
                    for p in held:
                        spill.add(p)
                    held = []
            else:
                spill.add(part)
        meta = {"tokenizer": TOKENIZER, "ngram": ngram, "records": n_records,
                "tokens": int(n_tokens)}
        if spill is None:
            arrays = [p.arrays() for p in held]
            del held
            grams = (np.concatenate([g for g, _ in arrays]) if arrays
                     else np.zeros(0, np.uint64))
            rows = (np.concatenate([r for _, r in arrays]) if arrays
                    else np.zeros(0, np.uint32))
            del arrays
            grams, rows = _sorted_unique(grams, rows)
            if sorted_hook is not None:
                sorted_hook()
            meta["grams"] = len(grams)
            table = pa.table([pa.array(grams, pa.uint64()), pa.array(rows, pa.uint32())],
                             schema=_schema(meta))
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=max(len(grams), 1))
        else:
            meta["grams"] = spill.sort_buckets(workers)
            if sorted_hook is not None:
                sorted_hook()
            with pa.ipc.new_file(sink, _schema(meta)) as writer:
                for batch in spill.batches():
                    writer.write_batch(batch)
    return meta


def _schema(meta: dict[str, Any]) -> pa.Schema:
    return _SCHEMA.with_metadata({"datanet.attribution": json.dumps(meta)})


def build_shard(texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array], ngram: int, *,
                spill_dir: str | Path | None = None, workers: int = 1
                ) -> tuple[memoryview, dict[str, Any]]:
    """Shard bytes (Arrow IPC) and metadata of the records ``texts`` (row = position); an
    iterable of text arrays (e.g. one per Parquet row group) is read one array at a time.
    In memory: the shard's bytes are returned (:func:`write_shard` streams them to a file).
    ``workers`` > 1: the arrays' n-grams are computed in that many forked processes."""
    sink = pa.BufferOutputStream()
    meta = _write_shard_to(sink, texts, ngram, spill_dir, workers)
    return memoryview(sink.getvalue()), meta


def accepted_records(store: DatanetStore, entries: Sequence[FileEntry] | Sequence[str],
                     columns: Sequence[str] = ("text",)) -> pa.Table:
    """The batch's accepted records in shard row order (files in manifest order)."""
    paths = [e.path if isinstance(e, FileEntry) else e for e in entries]
    paths = sorted(paths)
    if not paths:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables([pq.read_table(store.abs(p), filesystem=store.arrow_fs,
                                          columns=list(columns)) for p in paths])


def write_shard(store: DatanetStore, batch_id: str, accepted: Sequence[FileEntry],
                ngram: int | None = None, *, alongside: Callable[[], object] | None = None
                ) -> FileEntry | None:
    """Build and write the shard of a batch's accepted files; the entry for its manifest
    (None when the files have no ``text`` column: nothing to index). Streamed: the shard is
    written to the run scratch while hashed, then moved into place; memory stays bounded.
    The n-grams of successive row batches are computed in forked processes, one per usable
    core (``pipeline.local_workers`` caps it; the commit runs on the driver, whatever the
    runner).

    ``alongside`` (the commit's Merkle tree and its dump) runs on a helper thread from the
    moment the pairs are sorted, while this thread writes, hashes and fsyncs the shard: the
    two serial tails of a commit overlap instead of leaving a core idle (both are mostly
    NumPy, Arrow, hashlib and file I/O, which release the GIL). No process is forked after
    that point, so no worker can inherit a lock the thread holds. Its error is raised here;
    with no shard to build it runs on this thread.
    """
    started: list[Future[object]] = []

    def start() -> None:
        if alongside is not None and not started:
            started.append(helper.submit(alongside))

    # leaving the block waits for a started job, also when the shard's build failed
    with ThreadPoolExecutor(1, thread_name_prefix="datanet-commit") as helper:
        entry = _write_shard(store, batch_id, accepted, ngram, start)
        if started:
            started[0].result()
        elif alongside is not None:
            alongside()
    return entry


def _write_shard(store: DatanetStore, batch_id: str, accepted: Sequence[FileEntry],
                 ngram: int | None, sorted_hook: Callable[[], object]) -> FileEntry | None:
    ngram = ngram or attribution_config(store.spec).ngram
    # forked workers only when there is more than one array of rows to share out
    workers = (pool_size(store.spec.pipeline.local_workers)
               if sum(e.rows for e in accepted) > _SHARD_BATCH_ROWS else 1)
    files = [pq.ParquetFile(store.abs(p), filesystem=store.arrow_fs)
             for p in sorted(e.path for e in accepted)]
    if any("text" not in f.schema_arrow.names for f in files):
        return None
    texts = (b.column(0) for f in files for b in f.iter_batches(batch_size=_SHARD_BATCH_ROWS,
                                                                columns=["text"]))
    with _local_scratch(store) as scratch:
        tmp = Path(scratch) / "shard.arrow"
        with pa.OSFile(str(tmp), "wb") as sink:
            meta = _write_shard_to(sink, texts, ngram, scratch, workers, sorted_hook)
        digest = hashlib.sha256()
        with open(tmp, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        size = tmp.stat().st_size
        rel = f"{KIND}/batch={batch_id}/shard-{sha[:32]}.arrow"
        path = store.path(rel)
        if not (path.exists() and path.stat().st_size == size):
            move_into_place(tmp, path)
    return FileEntry(path=rel, sha256=sha, rows=meta["grams"], bytes=size)


def _pointer_path(store: DatanetStore, manifest: Manifest) -> StorePath:
    return store.path(f"{KIND}/{manifest.seq:08d}-{manifest.batch_id}.json")


@contextlib.contextmanager
def _local_scratch(store: DatanetStore) -> Iterator[str]:
    """Local space for the shard and its spill files: the run scratch of a local datanet, a
    temporary directory for one on an object store (then uploaded by ``move_into_place``)."""
    if isinstance(store.root, Path):
        with store.run_scratch() as (_, scratch):
            yield scratch
        return
    with tempfile.TemporaryDirectory(prefix="datanet-shard-") as tmp:
        yield tmp


def shard_entry(store: DatanetStore, manifest: Manifest) -> FileEntry | None:
    """The shard of a committed batch: named by its manifest, or by ``datanet index``'s
    pointer for batches committed before attribution existed; None if it has none."""
    named = manifest.files.get(KIND, ())
    if named:
        return named[0]
    pointer = _pointer_path(store, manifest)
    if pointer.exists():
        return FileEntry(**json.loads(pointer.read_text(encoding="utf-8")))
    return None


def index_missing(store: DatanetStore, *, as_of: int | None = None) -> list[tuple[int, FileEntry]]:
    """Build the shards of committed batches that have accepted records and no shard
    (datanets that predate attribution); returns ``(seq, entry)`` of each one built."""
    built: list[tuple[int, FileEntry]] = []
    for m in store.manifests(as_of=as_of):
        if not m.files.get("accepted") or shard_entry(store, m) is not None:
            continue
        entry = write_shard(store, m.batch_id, m.files["accepted"])
        if entry is None:
            continue
        with store.lock():
            created = create_exclusive(_pointer_path(store, m),
                                       json.dumps(asdict(entry), sort_keys=True))
        if created:
            built.append((m.seq, entry))
    return built


def load_shard(store: DatanetStore, manifest: Manifest, entry: FileEntry) -> Shard:
    """Memory-map a shard; checks its size and scheme (the sha256 is checked by
    ``verify-history``, not on every load)."""
    path = store.path(entry.path)
    if not path.exists() or path.stat().st_size != entry.bytes:
        raise StoreError(f"batch {manifest.seq}: attribution shard {entry.path} is missing or "
                         "has the wrong size; run `datanet verify-history`")
    source = (pa.memory_map(str(path), "r") if isinstance(path, Path)
              else pa.BufferReader(path.read_bytes()))  # an object store: one GET
    reader = pa.ipc.open_file(source)
    table = reader.read_all()
    meta = json.loads(table.schema.metadata[b"datanet.attribution"])
    if meta.get("tokenizer") != TOKENIZER:
        raise StoreError(f"batch {manifest.seq}: shard {entry.path} uses tokenizer "
                         f"{meta.get('tokenizer')!r}, this version reads {TOKENIZER!r}")
    return Shard.from_table(manifest.batch_id, table)
