"""The one atomic-write helper for local files: readers never see a torn file.

Bytes go to a unique temporary name in the target's directory (two writers never share a temp
file), are fsynced, then renamed over the target (``replace``) or linked to it only if it does
not exist yet (``create``: create-if-absent, the commit primitive); the directory is fsynced so
the rename survives a crash.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["write_atomic", "create_exclusive", "move_into_place", "fsync_dir"]


def _write_temp(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (str as UTF-8) to ``path``, replacing any previous content atomically."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: str | Path, data: bytes | str) -> bool:
    """Create ``path`` with ``data`` only if it does not exist; False if it already did.

    ``os.link`` of a complete temp file: the name appears with its full content or not at all.
    """
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


def move_into_place(src: str | Path, path: str | Path) -> None:
    """Move a complete file ``src`` (written elsewhere on the same filesystem, e.g. a run's
    scratch, when it is too large to hold as bytes) to ``path`` atomically: fsync, replace,
    fsync the directory."""
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
