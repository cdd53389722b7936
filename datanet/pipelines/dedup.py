"""Exact-duplicate keyed stage: group records by content_hash across the input and history.

Vectorised shuffle: each chunk is split into ``shards`` Arrow tables by content-hash prefix
(``content_hash``, ``contribution_id``, ``submitted_at``, chunk, file, line: no text); history
(the datanet's committed accepted records, read in the pipeline) is split the same way;
``CoGroupByKey`` on the shard number brings every copy of a hash together, and
:func:`datanet.validators.exact_duplicate.resolve_table` resolves a whole shard with Arrow
sorts. Votes go back to their chunk (one table per chunk and shard). A shard is small
(``records / shards`` rows of ids), and a GroupByKey per record is avoided entirely.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.pipelines.io import ReadParquetColumns
from datanet.pipelines.stages import StageOutput
from datanet.privacy.evasion import dedup_keys
from datanet.privacy.normalise import normalise
from datanet.schemas.spec import DatanetSpec
from datanet.store.history import History
from datanet.validators import registry
from datanet.validators.exact_duplicate import DROP_SCHEMA, resolve_table

__all__ = ["ExactDuplicateStage", "hex64", "shard_of", "split_by_shard", "by_chunk"]


_HEX = np.full(256, 0, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def hex64(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """First 64 bits of ``0x``-prefixed hex strings (keccak ids) as uint64, on the buffers."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n]
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    nibbles = _HEX[data[offsets[:, None].astype(np.int64) + 2 + np.arange(16)]]
    return (nibbles << (np.uint64(4) * np.arange(15, -1, -1, dtype=np.uint64))).sum(
        axis=1, dtype=np.uint64)


def shard_of(hex_values: pa.Array | pa.ChunkedArray, shards: int) -> np.ndarray:
    """Shard number per row of ``0x`` hex values (hashes, addresses): first 64 bits mod shards."""
    return (hex64(hex_values) % np.uint64(shards)).astype(np.int64)


def split_by_shard(table: pa.Table, shard: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """``(shard, rows)`` parts of ``table`` by a shard number per row (compact copies)."""
    order = np.argsort(shard, kind="stable")
    bounds = np.flatnonzero(np.diff(shard[order])) + 1
    for idx in np.split(order, bounds):
        if idx.size:
            yield int(shard[idx[0]]), table.take(pa.array(idx))


class _ShardNew(beam.DoFn):
    def __init__(self, shards: int):
        self.shards = shards

    def process(self, item: tuple[str, pa.RecordBatch]) -> Iterator[tuple[int, pa.Table]]:
        key, batch = item
        n = batch.num_rows
        table = pa.table({
            "content_hash": batch.column("content_hash"),
            "dedup_key": dedup_keys(batch.column("text_norm"), batch.column("content_hash")),
            "contribution_id": batch.column("contribution_id"),
            "submitted_at": batch.column("submitted_at").cast(pa.int64()),
            "chunk": pa.array([key] * n, pa.string()),
            "source_file": batch.column("source_file"),
            "source_line": batch.column("source_line"),
        })
        yield from split_by_shard(table, shard_of(table.column("dedup_key"), self.shards))


class _ShardHistory(beam.DoFn):
    def __init__(self, shards: int):
        self.shards = shards

    def process(self, batch: pa.RecordBatch) -> Iterator[tuple[int, pa.Table]]:
        # accepted files keep the text as stored, not text_norm: normalise, fold, then drop it
        # so the shuffle carries keys only
        table = pa.Table.from_batches([batch])
        text = pc.fill_null(table.column("text").combine_chunks(), "")
        table = table.drop_columns(["text"]).append_column(
            "dedup_key", dedup_keys(normalise(text), table.column("content_hash")))
        yield from split_by_shard(table, shard_of(table.column("dedup_key"), self.shards))


def by_chunk(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Split rows by their ``chunk`` and drop that column.

    Each part is a compact copy (``take``), not a slice: pickling a slice serialises its
    parent's whole buffers, which made every chunk carry its shard's votes.
    """
    order = pc.sort_indices(table, [("chunk", "ascending")]).to_numpy()
    chunks = table.column("chunk").to_numpy(zero_copy_only=False)[order]
    starts = np.flatnonzero(np.r_[True, chunks[1:] != chunks[:-1]])
    table = table.drop_columns(["chunk"])
    for begin, end in zip(starts, np.r_[starts[1:], len(chunks)], strict=True):
        yield chunks[begin], table.take(pa.array(order[begin:end]))


def _resolve(item: tuple[int, dict[str, Iterable[pa.Table]]]
             ) -> Iterator[tuple[str, StageOutput]]:
    _, groups = item
    new = list(groups["new"])
    if not new:
        return
    history = list(groups["history"])
    votes, drops = resolve_table(
        pa.concat_tables(new),
        pa.concat_tables(history) if history else None,
    )
    votes_by_chunk = dict(by_chunk(votes))
    drops_by_chunk = dict(by_chunk(drops)) if drops is not None else {}
    empty = votes.schema.empty_table().drop_columns(["chunk"])
    for chunk in sorted(votes_by_chunk.keys() | drops_by_chunk.keys()):
        chunk_drops = drops_by_chunk.get(chunk)
        yield chunk, StageOutput(
            votes=votes_by_chunk.get(chunk, empty),
            drops=chunk_drops.select(DROP_SCHEMA.names) if chunk_drops is not None else None,
        )


class ExactDuplicateStage(beam.PTransform):
    """Keyed stage for ``exact_duplicate`` (see :mod:`datanet.pipelines.stages`)."""

    def __init__(self, spec: DatanetSpec, history: History):
        super().__init__()
        self.spec = spec
        self.history = history
        self.shards = registry.validator_config(spec, "exact_duplicate").shards

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        new = chunks | "ShardNew" >> beam.ParDo(_ShardNew(self.shards))
        hist = (
            chunks.pipeline
            | "ReadAccepted" >> ReadParquetColumns(
                self.history.of("accepted"),
                columns=["content_hash", "contribution_id", "batch", "text"])
            | "ShardHistory" >> beam.ParDo(_ShardHistory(self.shards))
        )
        return (
            {"new": new, "history": hist}
            | "ByShard" >> beam.CoGroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve)
        )

