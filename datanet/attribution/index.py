"""Attribution index shards: one per committed batch, over its accepted records.

A shard is an Arrow IPC file ``attribution/batch=<id>/shard-<sha256[:32]>.arrow`` with two
columns sorted by hash: ``gram`` (uint64, the hash of an n-gram of normalised tokens, see
:mod:`.tokens`) and ``row`` (uint32, the record's position in the batch's accepted files, in
manifest order), one row per distinct (gram, record) pair: 12 bytes per n-gram. Schema
metadata records the tokenizer, ``ngram``, the record and token counts. Uncompressed, so a
reader memory-maps it and binary-searches it in place (no load time, pages shared between
processes).

A batch of up to :data:`IN_MEMORY_PAIRS` pairs is sorted in memory and written as one record
batch. A larger one is built in bounded memory: its pairs are spilled to
``2**SPILL_BITS`` bucket files by the top bits of the gram (the hashes are uniform, so buckets
are even), each bucket is sorted and de-duplicated alone, and the shard holds one record batch
per bucket in bucket order, which is global gram order. Same pairs either way, and the same
bytes for the same records.

The batch manifest names the shard under the kind ``attribution`` with its sha256; a batch
committed before attribution existed gets its shard from ``datanet index`` with a pointer
``attribution/<seq>-<batch_id>.json`` (the manifest is immutable), created if absent under
the commit lock. Shards are never rebuilt: each batch's is built once, from its own records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datanet._pool import ChunkPool, pool_size
from datanet.attribution.config import attribution_config
from datanet.attribution.tokens import TOKENIZER, dedup_sorted_pairs, record_grams, sort_pairs
from datanet.errors import StoreError
from datanet.schemas.manifest import FileEntry
from datanet.store.atomic import create_exclusive, move_into_place
from datanet.store.fs import StorePath

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


def _grams_of(texts: pa.Array | pa.ChunkedArray, ngram: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """The array's ``(grams, rows)`` grouped by spill bucket (the top :data:`SPILL_BITS` of
    the gram; arrival order kept within a bucket), pairs per bucket, records and tokens.
    Grouped where the pairs are made (a pool worker), so the driver only appends slices."""
    grams, rows, toks = record_grams(texts, ngram)
    bucket = (grams >> np.uint64(64 - SPILL_BITS)).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")  # radix sort for uint8 keys
    counts = np.bincount(bucket, minlength=1 << SPILL_BITS)
    return grams[order], rows[order], counts, len(texts), toks


def _parts(texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array], ngram: int,
           workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]:
    """``(grams, rows, bucket counts, records, tokens)`` per text array (see :func:`_grams_of`),
    rows numbered across arrays; ``workers`` > 1: the arrays' n-grams computed in that many
    forked processes (in order)."""
    arrays = [texts] if isinstance(texts, (pa.Array, pa.ChunkedArray)) else texts
    # a result is ~40 MB of pairs per 16,384 records: keep one per worker in flight
    pool = ChunkPool(_grams_of, workers, ahead=workers) if workers > 1 else None
    n_records = 0
    try:
        for done in _results(arrays, ngram, pool):
            for grams, rows, counts, records, toks in done:
                yield grams, rows + np.uint32(n_records), counts, records, toks
                n_records += records
    finally:
        if pool is not None:
            pool.close()


def _results(arrays: Iterable[pa.Array | pa.ChunkedArray], ngram: int, pool: ChunkPool | None
             ) -> Iterator[Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]]:
    for part in arrays:
        yield [_grams_of(part, ngram)] if pool is None else pool.submit(part, ngram)
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
    """Pairs appended to bucket files by the top :data:`SPILL_BITS` of the gram, in arrival
    order (so a bucket's stable sort equals the global one restricted to it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sizes = np.zeros(1 << SPILL_BITS, np.int64)

    def _path(self, bucket: int, col: str) -> Path:
        return self.folder / f"{bucket:03d}.{col}"

    def add(self, grams: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> None:
        """Append pairs grouped by bucket (``counts`` per bucket, see :func:`_grams_of`)."""
        ends = np.cumsum(counts)
        for b in np.flatnonzero(counts):
            lo, hi = ends[b] - counts[b], ends[b]
            with open(self._path(b, "g"), "ab") as fh:
                fh.write(memoryview(grams[lo:hi]))
            with open(self._path(b, "r"), "ab") as fh:
                fh.write(memoryview(rows[lo:hi]))
        self.sizes += counts

    def sort_buckets(self, workers: int = 1) -> int:
        """Sort and de-duplicate every bucket file in place (``workers`` > 1: buckets in that
        many forked processes); the pairs kept."""
        todo = [(str(self._path(b, "g")), str(self._path(b, "r")), int(b))
                for b in np.flatnonzero(self.sizes)]
        if workers > 1 and len(todo) > 1:
            pool = ChunkPool(_sort_bucket, workers)
            try:
                done = [r for item in todo for r in pool.submit(*item)]
                done += list(pool.drain())
            finally:
                pool.close()
        else:
            done = [_sort_bucket(*item) for item in todo]
        for b, size in done:
            self.sizes[b] = size
        return int(sum(size for _, size in done))

    def batches(self) -> Iterator[pa.RecordBatch]:
        for b in np.flatnonzero(self.sizes):
            yield pa.record_batch([np.fromfile(self._path(b, "g"), np.uint64),
                                   np.fromfile(self._path(b, "r"), np.uint32)], schema=_SCHEMA)


def _sort_bucket(grams_path: str, rows_path: str, bucket: int) -> tuple[int, int]:
    """One spill bucket's files sorted and de-duplicated in place: ``(bucket, pairs kept)``."""
    grams, rows = _sorted_unique(np.fromfile(grams_path, np.uint64),
                                 np.fromfile(rows_path, np.uint32))
    grams.tofile(grams_path)
    rows.tofile(rows_path)
    return bucket, len(grams)


def _write_shard_to(sink: Any, texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array],
                    ngram: int, spill_dir: str | Path | None, workers: int = 1
                    ) -> dict[str, Any]:
    """Write the shard of ``texts`` (row = position) as Arrow IPC to ``sink``; its metadata.
    Spill files (if the batch is large) go to a temporary folder under ``spill_dir``."""
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    in_memory = n_records = n_tokens = 0
    spill: _Spill | None = None
    with tempfile.TemporaryDirectory(prefix="attribution-spill-", dir=spill_dir) as tmp:
        for grams, rows, counts, records, toks in _parts(texts, ngram, workers):
            n_records += records
            n_tokens += toks
            if spill is None:
                chunks.append((grams, rows, counts))
                in_memory += len(grams)
                if in_memory > IN_MEMORY_PAIRS:
                    spill = _Spill(Path(tmp))
                    for chunk in chunks:
                        spill.add(*chunk)
                    chunks = []
            else:
                spill.add(grams, rows, counts)
        meta = {"tokenizer": TOKENIZER, "ngram": ngram, "records": n_records,
                "tokens": int(n_tokens)}
        if spill is None:
            grams = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.uint64)
            rows = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, np.uint32)
            del chunks
            grams, rows = _sorted_unique(grams, rows)
            meta["grams"] = len(grams)
            table = pa.table([pa.array(grams, pa.uint64()), pa.array(rows, pa.uint32())],
                             schema=_schema(meta))
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=max(len(grams), 1))
        else:
            meta["grams"] = spill.sort_buckets(workers)
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
                ngram: int | None = None) -> FileEntry | None:
    """Build and write the shard of a batch's accepted files; the entry for its manifest
    (None when the files have no ``text`` column: nothing to index). Streamed: the shard is
    written to the run scratch while hashed, then moved into place; memory stays bounded.
    The n-grams of successive row batches are computed in forked processes, one per usable
    core (``pipeline.local_workers`` caps it; the commit runs on the driver, whatever the
    runner)."""
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
            meta = _write_shard_to(sink, texts, ngram, scratch, workers)
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
