"""Content-addressed Parquet files written through Beam FileSystems.

A table is serialised in memory, hashed, and written to ``<kind>/batch=<id>/part-<sha>.parquet``
via a temporary name and a rename, so a retried bundle rewrites the same file, a killed
writer never leaves a torn file under a final name, and identical content is written once.
Local paths and Beam's other filesystems go through Beam FileSystems; a URI of a remote
filesystem the store knows (``s3://`` …) goes through the store's fsspec seam
(:mod:`datanet.store.fs`), whose single put is already atomic — so workers that share nothing
but the object store write with credentials from their own environment.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.schemas.manifest import FileEntry
from datanet.store.fs import ObjectPath, is_remote, url_to_fs

__all__ = ["write_table", "join_path", "table_to_parquet_bytes", "write_bytes_atomic"]


def _filesystems() -> Any:
    """Beam's ``FileSystems``, imported on first use: readers of this module that only
    serialise (``table_to_parquet_bytes``: attribution receipts, hence ``connect()``) must not
    pay ~1 s for importing Beam."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join_path(root: str, *parts: str) -> str:
    """Join a root path / URI with relative parts."""
    return _filesystems().join(root, *parts)


def table_to_parquet_bytes(table: pa.Table, compression: str = "zstd") -> bytes:
    """Deterministic Parquet bytes (no pandas metadata)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(None), sink, compression=compression,
                   use_dictionary=True, write_statistics=True)
    return sink.getvalue().to_pybytes()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name and a rename (any Beam filesystem):
    readers never see a torn file, and a retried writer just rewrites it."""
    if is_remote(path):
        ObjectPath(*url_to_fs(path)).write_bytes(data)
        return
    dirname = path.rsplit("/", 1)[0]
    if not _filesystems().exists(dirname):
        try:
            _filesystems().mkdirs(dirname)
        except OSError:
            pass
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with _filesystems().create(tmp) as fh:
        fh.write(data)
    _filesystems().rename([tmp], [path])


def write_table(root: str, kind: str, batch_id: str, table: pa.Table) -> FileEntry:
    """Write ``table`` plus a ``batch`` column under ``root/<kind>/batch=<id>/``; describe it."""
    if "batch" in table.column_names:
        table = table.drop_columns(["batch"])
    table = table.append_column("batch", pa.array([batch_id] * table.num_rows, pa.string()))
    data = table_to_parquet_bytes(table)
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{kind}/batch={batch_id}/part-{digest[:32]}.parquet"
    final = join_path(root, rel)
    if not _exists_with_size(final, len(data)):
        write_bytes_atomic(final, data)
    return FileEntry(path=rel, sha256=digest, rows=table.num_rows, bytes=len(data))


def _exists_with_size(path: str, size: int) -> bool:
    if is_remote(path):
        obj = ObjectPath(*url_to_fs(path))
        try:
            return int(obj.fs.size(obj.path)) == size
        except FileNotFoundError:
            return False
    try:
        match = _filesystems().match([path])[0].metadata_list
    except Exception:
        return False
    return bool(match) and match[0].size_in_bytes == size
