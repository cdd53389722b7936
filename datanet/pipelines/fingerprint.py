"""Source fingerprints: a re-run of a committed input is recognised before any Beam work.

A committed manifest records the fingerprint of the sources its run read:
sha256 over the spec file's bytes and, for every matched input in sorted order, the path as
the pipeline names it, the file's size and the sha256 of its bytes.

Why a match may skip the pipeline (the no-op guarantee is kept): a batch id is
``keccak(datanet key ‖ sorted distinct record ids)`` (``run._BatchIdFn``); a record id is a
function of the spec (datanet id, schema, limits: which lines are records and which are
dead-lettered), of the record's bytes, and for a dead-letter row of the source path and line
(:meth:`datanet.pipelines.intake.RecordParser.dead_letter`). Neither the file's time nor
history nor the runner enters it. So the same spec bytes + the same paths + the same bytes
give the same records, hence the same batch id, and the slow path would find that batch id
committed and answer "nothing new: this input is batch N": the fast path returns that same
answer. Anything different (one changed byte, a new or removed file, an edited spec) gives
another fingerprint and falls through to the full run, which decides as before. Inputs that are
not local regular files (FIFOs, devices, directories, broken links, URIs of filesystems the
store does not reach) are never read here: no fingerprint, full run. Objects on an object store
(``s3://``, through :mod:`datanet.store.fs`) are read like files; their stamp is (size,
ETag, last-modified) instead of the local (device, inode, size, mtime, ctime).

A fingerprint is recorded only when the inputs did not change while the run read them (same
device, inode, size, mtime and ctime before hashing and after the pipeline), so a recorded
fingerprint always describes the bytes the batch was made of; likewise the spec bytes are used
only while the spec file is unchanged since the store loaded the spec the run uses
(``DatanetStore.spec_stamp``).

No Beam import here: ``datanet run`` tries this before importing the pipeline.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datanet.schemas.manifest import Manifest

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["RunResult", "source_fingerprint", "file_stamps", "literal_inputs",
           "committed_rerun", "rerun_result"]

#: Domain tag of the fingerprint (bump if its layout changes: old ones then never match).
_TAG = b"datanet-source-fingerprint/1\x00"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RunResult:
    """Outcome of one ``datanet run``."""

    batch_id: str | None
    committed: bool
    manifest: Manifest | None
    counts: dict[str, int]
    seconds: float
    message: str
    report: dict[str, Any] = field(default_factory=dict)


def _frame(data: bytes) -> bytes:
    """Length-prefixed bytes: no two different sequences of fields hash alike."""
    return len(data).to_bytes(8, "big") + data


def _regular(path: str) -> os.stat_result | None:
    """The stat of a local regular file (symlinks followed), else None (URI, FIFO, device,
    directory, missing or broken link: those are never opened here)."""
    if "://" in path:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _object(path: str) -> Any | None:
    """The :class:`~datanet.store.fs.ObjectPath` of a remote URI (None: local, or a scheme
    no installed fsspec driver reaches)."""
    from datanet.errors import StoreError
    from datanet.store.fs import ObjectPath, is_remote, url_to_fs

    if not is_remote(path):
        return None
    try:
        return ObjectPath(*url_to_fs(path))
    except StoreError:
        return None


def _stamp(path: str) -> tuple[int, ...] | None:
    """A local regular file's (device, inode, size, mtime, ctime), or an object's (size,
    ETag and last-modified folded to an int); None when it is neither."""
    obj = _object(path)
    if obj is None:
        st = _regular(path)
        return None if st is None else (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                         st.st_ctime_ns)
    try:
        info = obj.fs.info(obj.path)
    except (OSError, ValueError):
        return None
    if info.get("type") != "file":
        return None
    tag = f"{info.get('ETag')}|{info.get('LastModified') or info.get('mtime')}".encode()
    return (int(info.get("size") or 0),
            int.from_bytes(hashlib.sha256(tag).digest()[:8], "big"))


def _open(path: str) -> Any:
    obj = _object(path)
    return open(path, "rb") if obj is None else obj.open("rb")


def source_fingerprint(spec_bytes: bytes, files: Sequence[str]) -> str | None:
    """sha256 (hex) over the spec bytes and each file's path, size and sha256, in sorted path
    order; None when any file is not a local regular file or an object (no fast path then)."""
    h = hashlib.sha256(_TAG + _frame(spec_bytes))
    for path in sorted(set(files)):
        if _stamp(path) is None:
            return None
        digest = hashlib.sha256()
        size = 0
        try:
            with _open(path) as fh:
                while block := fh.read(_BLOCK):
                    digest.update(block)
                    size += len(block)
        except OSError:
            return None
        h.update(_frame(path.encode("utf-8", "surrogateescape")))
        h.update(size.to_bytes(8, "big") + digest.digest())
    return h.hexdigest()


def file_stamps(files: Sequence[str]) -> tuple[tuple[int, ...], ...] | None:
    """(device, inode, size, mtime, ctime) per file (size, ETag, last-modified per object), to
    tell that no input changed during a run; None when any is neither."""
    out = []
    for path in sorted(set(files)):
        stamp = _stamp(path)
        if stamp is None:
            return None
        out.append(stamp)
    return tuple(out)


def literal_inputs(inputs: Sequence[str]) -> list[str] | None:
    """The files ``match_inputs`` would return for ``inputs`` when each is a local path without
    glob characters naming a regular file (Beam matches such a path as itself); else None
    (the caller then matches with Beam).

    Not a second matcher: it answers only where the match is the path itself.
    """
    if not inputs:
        return None
    for path in inputs:
        if "://" in path or glob.has_magic(path) or _regular(path) is None:
            return None
    return sorted(set(inputs))


def rerun_result(manifest: Manifest, seconds: float) -> RunResult:
    """The answer of a run whose batch is already committed (the same on both paths)."""
    return RunResult(manifest.batch_id, False, manifest, dict(manifest.counts), seconds,
                     f"nothing new: this input is batch {manifest.seq} "
                     f"({manifest.batch_id[:12]}…), already committed")


def committed_rerun(store: DatanetStore, files: Sequence[str], *, start: float | None = None,
                    fingerprint: str | None = None) -> RunResult | None:
    """The "nothing new" result when a committed manifest carries the fingerprint of ``files``
    (matched inputs) with the store's spec; None otherwise (run the pipeline)."""
    start = time.monotonic() if start is None else start
    fp = fingerprint or spec_fingerprint(store, files)
    if fp is None:
        return None
    for manifest in store.manifests():
        if manifest.source_fingerprint == fp:
            return rerun_result(manifest, time.monotonic() - start)
    return None


def spec_fingerprint(store: DatanetStore, files: Sequence[str]) -> str | None:
    """:func:`source_fingerprint` of ``files`` with the bytes the store's spec was loaded from;
    None when the spec file changed since (or the store does not say: ``spec_stamp``)."""
    from datanet.store.layout import SPEC_FILE

    path = str(store.root / SPEC_FILE)
    loaded = getattr(store, "spec_stamp", None)
    if loaded is None or file_stamps([path]) != (loaded,):
        return None
    try:
        with _open(path) as fh:
            spec_bytes = fh.read()
    except OSError:
        return None
    if file_stamps([path]) != (loaded,):
        return None
    return source_fingerprint(spec_bytes, files)
