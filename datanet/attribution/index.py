"""Attribution index shards: one per committed batch, over its accepted records.

A shard is an Arrow IPC file ``attribution/batch=<id>/shard-<sha256[:32]>.arrow`` with two
columns sorted by hash: ``gram`` (uint64, the hash of an n-gram of normalised tokens, see
:mod:`.tokens`) and ``row`` (uint32, the record's position in the batch's accepted files, in
manifest order), one row per distinct (gram, record) pair: 12 bytes per n-gram. Schema
metadata records the tokenizer, ``ngram``, the record and token counts. Uncompressed, so a
reader memory-maps it and binary-searches it in place (no load time, pages shared between
processes).

The batch manifest names the shard under the kind ``attribution`` with its sha256; a batch
committed before attribution existed gets its shard from ``datanet index`` with a pointer
``attribution/<seq>-<batch_id>.json`` (the manifest is immutable), created if absent under
the commit lock. Shards are never rebuilt: each batch's is built once, from its own records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datanet.attribution.config import attribution_config
from datanet.attribution.tokens import TOKENIZER, dedup_sorted_pairs, record_grams, sort_pairs
from datanet.errors import StoreError
from datanet.schemas.manifest import FileEntry
from datanet.store.atomic import create_exclusive, write_atomic

__all__ = ["KIND", "Shard", "build_shard", "write_shard", "shard_entry", "index_missing",
           "load_shard", "accepted_records"]

#: Manifest kind naming a batch's shard.
KIND = "attribution"
_SCHEMA = pa.schema([("gram", pa.uint64()), ("row", pa.uint32())])


@dataclass(frozen=True)
class Shard:
    """A loaded shard: sorted ``grams`` with their record ``rows`` (memory-mapped)."""

    batch_id: str
    grams: np.ndarray
    rows: np.ndarray
    ngram: int
    records: int
    tokens: int


def build_shard(texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array], ngram: int
                ) -> tuple[memoryview, dict[str, Any]]:
    """Shard bytes (Arrow IPC) and metadata of the records ``texts`` (row = position); an
    iterable of text arrays (e.g. one per Parquet row group) is read one array at a time."""
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    n_records = n_tokens = 0
    parts = [texts] if isinstance(texts, (pa.Array, pa.ChunkedArray)) else texts
    for part in parts:
        grams, rows, toks = record_grams(part, ngram)
        chunks.append((grams, rows + np.uint32(n_records)))
        n_records += len(part)
        n_tokens += toks
    grams = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.uint64)
    rows = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, np.uint32)
    del chunks
    # rows come in ascending order and the radix sort is stable, so rows ascend within a
    # gram and a record repeating an n-gram leaves adjacent duplicates: keep one pair
    grams, rows = sort_pairs(grams, rows)
    n = dedup_sorted_pairs(grams, rows)
    grams, rows = grams[:n], rows[:n]
    meta = {"tokenizer": TOKENIZER, "ngram": ngram, "records": n_records,
            "tokens": int(n_tokens), "grams": int(n)}
    table = pa.table([pa.array(grams, pa.uint64()), pa.array(rows, pa.uint32())],
                     schema=_SCHEMA.with_metadata({"datanet.attribution": json.dumps(meta)}))
    del grams, rows
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(n, 1))
    return memoryview(sink.getvalue()), meta


def accepted_records(store: Any, entries: Sequence[FileEntry] | Sequence[str],
                     columns: Sequence[str] = ("text",)) -> pa.Table:
    """The batch's accepted records in shard row order (files in manifest order)."""
    paths = [e.path if isinstance(e, FileEntry) else e for e in entries]
    paths = sorted(paths)
    if not paths:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables([pq.read_table(store.abs(p), filesystem=store.arrow_fs,
                                          columns=list(columns)) for p in paths])


def write_shard(store: Any, batch_id: str, accepted: Sequence[FileEntry],
                ngram: int | None = None) -> FileEntry | None:
    """Build and write the shard of a batch's accepted files; the entry for its manifest
    (None when the files have no ``text`` column: nothing to index)."""
    ngram = ngram or attribution_config(store.spec).ngram
    files = [pq.ParquetFile(store.abs(p), filesystem=store.arrow_fs)
             for p in sorted(e.path for e in accepted)]
    if any("text" not in f.schema_arrow.names for f in files):
        return None
    texts = (b.column(0) for f in files for b in f.iter_batches(batch_size=65536,
                                                                columns=["text"]))
    data, meta = build_shard(texts, ngram)
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{KIND}/batch={batch_id}/shard-{digest[:32]}.arrow"
    path = store.path(rel)
    if not (path.exists() and path.stat().st_size == len(data)):
        write_atomic(path, data)
    return FileEntry(path=rel, sha256=digest, rows=meta["grams"], bytes=len(data))


def _pointer_path(store: Any, manifest: Any) -> Path:
    return store.path(f"{KIND}/{manifest.seq:08d}-{manifest.batch_id}.json")


def shard_entry(store: Any, manifest: Any) -> FileEntry | None:
    """The shard of a committed batch: named by its manifest, or by ``datanet index``'s
    pointer for batches committed before attribution existed; None if it has none."""
    named = manifest.files.get(KIND, ())
    if named:
        return named[0]
    pointer = _pointer_path(store, manifest)
    if pointer.exists():
        return FileEntry(**json.loads(pointer.read_text(encoding="utf-8")))
    return None


def index_missing(store: Any, *, as_of: int | None = None) -> list[tuple[int, FileEntry]]:
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


def load_shard(store: Any, manifest: Any, entry: FileEntry) -> Shard:
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
    grams = table.column("gram")
    rows = table.column("row")
    g = grams.chunk(0).to_numpy() if grams.num_chunks else np.zeros(0, np.uint64)
    r = rows.chunk(0).to_numpy() if rows.num_chunks else np.zeros(0, np.uint32)
    return Shard(manifest.batch_id, g, r, int(meta["ngram"]), int(meta["records"]),
                 int(meta["tokens"]))
