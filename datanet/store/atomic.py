"""The one atomic-write helper: readers never see a torn file.

Bytes go to a unique temporary name in the target's directory (two writers never share a temp
file), are fsynced, then renamed over the target (``replace``) or linked to it only if it does
not exist yet (``create``: create-if-absent, the commit primitive); the directory is fsynced so
the rename survives a crash. A path on an object store (:class:`~datanet.store.fs.ObjectPath`
or a remote URI) is one whole-object put, create-if-absent being S3's ``If-None-Match: *``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from datanet.store.fs import ObjectPath, is_remote, url_to_fs

__all__ = ["write_atomic", "create_exclusive", "move_into_place", "fsync_dir", "StagedWrite"]


def _remote(path: str | Path | ObjectPath) -> ObjectPath | None:
    if isinstance(path, ObjectPath):
        return path
    if is_remote(path):
        return ObjectPath(*url_to_fs(str(path)))
    return None


#: What the writers accept: bytes, text (written as UTF-8), or an iterable of pieces of
#: either (written one at a time, so a large file is never one string in memory).
Data = bytes | str | Iterable[bytes | str]


def _raw(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    return b"".join(_raw(piece) for piece in data)


def _pieces(data: Data) -> Iterator[bytes]:
    if isinstance(data, (str, bytes, bytearray, memoryview)):
        yield _raw(data)
        return
    for piece in data:
        yield _raw(piece)


def _write_temp(path: Path, data: Data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as fh:
        for piece in _pieces(data):
            fh.write(piece)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_atomic(path: str | Path | ObjectPath, data: Data) -> None:
    """Write ``data`` to ``path``, replacing any previous content atomically (an object store's
    put is atomic and whole: pieces are joined first there)."""
    StagedWrite(path, data).place()


class StagedWrite:
    """:func:`write_atomic` in two steps: the bytes are written and fsynced under a temporary
    name beside ``path`` now, outside any lock, and renamed onto ``path`` by :meth:`place`
    (or removed by :meth:`discard`). On an object store nothing is written before
    :meth:`place` (one whole-object put then: a put cannot be staged and renamed)."""

    def __init__(self, path: str | Path | ObjectPath, data: Data):
        self.path = path
        self._remote = _remote(path)
        self._data: Data | None = None
        self._tmp: Path | None = None
        if self._remote is not None:
            self._data = data
        else:
            self._tmp = _write_temp(Path(path), data)

    def place(self) -> None:
        """Put the bytes at ``path`` (replacing any previous file)."""
        if self._remote is not None and self._data is not None:
            data, self._data = self._data, None
            self._remote.write_bytes(_raw(data))
            return
        if self._tmp is None:
            raise RuntimeError(f"{self.path}: already placed or discarded")
        tmp, self._tmp = self._tmp, None
        try:
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(Path(self.path).parent)

    def discard(self) -> None:
        """Drop what was staged (a no-op once placed)."""
        self._data = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def create_exclusive(path: str | Path | ObjectPath, data: Data) -> bool:
    """Create ``path`` with ``data`` only if it does not exist; False if it already did.

    ``os.link`` of a complete temp file: the name appears with its full content or not at all.
    """
    if (remote := _remote(path)) is not None:
        return remote.create_exclusive(_raw(data))
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def move_into_place(src: str | Path, path: str | Path | ObjectPath) -> None:
    """Move a complete file ``src`` (written elsewhere on the same filesystem, e.g. a run's
    scratch, when it is too large to hold as bytes) to ``path`` atomically: fsync, replace,
    fsync the directory. To an object store: one upload (the object appears when complete),
    then ``src`` is removed."""
    if (remote := _remote(path)) is not None:
        remote.fs.put_file(str(src), remote.path)
        Path(src).unlink(missing_ok=True)
        return
    src, path = Path(src), Path(path)
    with open(src, "rb") as fh:
        os.fsync(fh.fileno())
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, path)
    fsync_dir(path.parent)


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so renames / links in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
