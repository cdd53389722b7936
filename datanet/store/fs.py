"""The store's one filesystem seam: a datanet root on local disk or on any fsspec filesystem.

A local root stays a :class:`pathlib.Path` (behaviour and bytes unchanged). Any other root
(``s3://bucket/prefix``, ``gs://…``, ``memory://…``) becomes an :class:`ObjectPath`: the few
``pathlib`` operations the store's callers use, answered by one fsspec filesystem object.
fsspec (s3fs for ``s3://``) rather than ``pyarrow.fs`` because DuckDB registers fsspec
filesystems directly (no httpfs download), pyarrow reads through it (``FSSpecHandler``),
and s3fs exposes S3's conditional put (``If-None-Match: *``) as ``mode="create"``.

Credentials and endpoints come from each filesystem's usual environment (for S3: botocore's
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, profiles …); they are
never part of a path and never printed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat as stat_mode
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from datanet.errors import StoreError

__all__ = ["file_stamps", "remote_object", "regular_file", "stamp", "ObjectPath", "StorePath",
           "open_root", "is_remote", "normalise_uri",
           "arrow_filesystem", "url_to_fs", "reaching", "fsspec_reaches"]

#: ``pathlib.Path("s3://b/p")`` prints ``s3:/b/p``: a scheme of two or more letters followed
#: by a single slash is read as the URI it was (one-letter schemes are Windows drives).
_COLLAPSED = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/(?!/)")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
#: fsspec protocols of object stores (no directories, one atomic put per object).
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "az", "abfss", "oss", "r2"}


def normalise_uri(path: str | Path) -> str:
    """``path`` as a string, with a URI that went through ``pathlib.Path`` restored."""
    text = str(path)
    return _COLLAPSED.sub(r"\1://", text, count=1)


def os_path(path: str) -> bool:
    """Whether ``path`` is handed to the OS as it is: no URI scheme at all (unlike
    :func:`is_remote`, a ``file://`` URI is not one: the OS would not open it)."""
    return "://" not in path


def is_remote(path: str | Path) -> bool:
    """True for a URI of a filesystem other than the local one (``file://`` is local)."""
    m = _SCHEME.match(normalise_uri(path))
    return bool(m) and m.group(1).lower() not in ("file", "local")


#: Schemes Beam reads natively, configured by its own pipeline options: inputs there stay
#: with Beam's filesystems, as before (``s3://`` is not among them: Beam's S3 filesystem has
#: no options outside a pipeline, "Must provide one of client or options").
_BEAM_NATIVE = {"gs", "hdfs", "azfs"}


def fsspec_reaches(path: str | Path) -> bool:
    """True for an input URI listed and read through this seam: a remote scheme whose fsspec
    driver is installed (``s3://`` with s3fs …) and that Beam does not read natively."""
    m = _SCHEME.match(normalise_uri(path))
    if not m or not is_remote(path) or m.group(1).lower() in _BEAM_NATIVE:
        return False
    return _driver_available(m.group(1).lower())


@functools.cache
def _driver_available(scheme: str) -> bool:
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except (ValueError, ImportError):
        return False
    return True


def url_to_fs(uri: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` of a remote URI; listings are never cached (a
    committer must see a manifest another process wrote a moment ago). An unknown scheme or
    a missing driver is a one-line :class:`StoreError`."""
    import fsspec

    uri = normalise_uri(uri)
    try:
        try:
            return fsspec.core.url_to_fs(uri, use_listings_cache=False)
        except TypeError:
            return fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError) as exc:
        scheme = uri.split("://", 1)[0]
        raise StoreError(f"{uri}: the {scheme}:// filesystem is not available ({exc}); "
                         "use a local path, s3://, or install the fsspec driver of "
                         f"{scheme}://") from None


class ObjectPath:
    """A path on an fsspec filesystem with the ``pathlib`` subset the store uses.

    ``str()`` is the full URI (what Beam, pyarrow and messages see). Writes are whole-object
    puts (atomic on object stores: an object appears complete or not at all).
    """

    __slots__ = ("fs", "path")

    def __init__(self, fs: Any, path: str):
        self.fs = fs
        self.path = fs._strip_protocol(path).rstrip("/")

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, other: str | Path) -> ObjectPath:
        return ObjectPath(self.fs, f"{self.path}/{str(other).strip('/')}")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.fs, self.path.rsplit("/", 1)[0])

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def resolve(self) -> ObjectPath:
        return self

    # -- reading -------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def read_bytes(self) -> bytes:
        try:
            return self.fs.cat_file(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self}: no such object") from None

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def stat(self) -> SimpleNamespace:
        info = self.fs.info(self.path)
        mtime = info.get("LastModified") or info.get("mtime") or info.get("created")
        if isinstance(mtime, datetime):
            mtime = mtime.replace(tzinfo=mtime.tzinfo or UTC).timestamp()
        return SimpleNamespace(st_size=int(info.get("size") or 0),
                               st_mtime=float(mtime or 0.0))

    def iterdir(self) -> Iterator[ObjectPath]:
        try:
            names = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return iter(())
        return iter(sorted(ObjectPath(self.fs, n) for n in names
                           if self.fs._strip_protocol(n).rstrip("/") != self.path))

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        return iter(sorted(ObjectPath(self.fs, p)
                           for p in self.fs.glob(f"{self.path}/{pattern}")))

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        return self.fs.open(self.path, mode, **kwargs)

    def __lt__(self, other: ObjectPath) -> bool:
        return str(self) < str(other)

    # -- writing -------------------------------------------------------------------------
    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Directories are implicit on object stores (nothing to do: s3fs's ``makedirs``
        would create a missing bucket); other filesystems get one."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (
            self.fs.protocol,)
        if not set(protocols) & _OBJECT_STORES:
            self.fs.makedirs(self.path, exist_ok=True)

    def write_bytes(self, data: bytes | bytearray | memoryview | Any) -> None:
        """One whole-object put; any buffer (memoryview, ``pa.Buffer``) is copied to bytes
        first (botocore accepts only bytes-like bodies it knows)."""
        self.fs.pipe_file(self.path, data if isinstance(data, (bytes, bytearray))
                          else bytes(data))

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def create_exclusive(self, data: bytes) -> bool:
        """Create the object only if absent (S3 ``If-None-Match: *``); False if it existed.

        The server decides, so of two concurrent creators exactly one gets True.
        """
        data = bytes(data) if isinstance(data, memoryview) else data
        try:
            try:
                self.fs.pipe_file(self.path, data, mode="create")
            except TypeError:  # a driver without conditional pipe: exclusive open
                with self.fs.open(self.path, "xb") as fh:
                    fh.write(data)
        except FileExistsError:
            return False
        return True

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmtree(self) -> None:
        """Remove everything under this prefix (missing is fine)."""
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass


#: A path under a datanet root: local, or on an fsspec filesystem.
StorePath = Path | ObjectPath


def open_root(path: str | Path) -> StorePath:
    """The root of a datanet: an absolute local ``Path`` or an :class:`ObjectPath`."""
    text = normalise_uri(path)
    if not is_remote(text):
        if text.startswith("file://"):
            text = text[len("file://"):]
        return Path(text).resolve()
    fs, inner = url_to_fs(text)
    if not inner.strip("/"):
        raise StoreError(f"{text}: give a bucket (and prefix) for the datanet")
    return ObjectPath(fs, inner)


_CLIENT_ERROR_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs",
                         "google", "azure")


@contextlib.contextmanager
def reaching(root: StorePath) -> Iterator[None]:
    """Turn a remote filesystem's connection / credential / permission error into one-line
    :class:`StoreError` naming the root (the client's message names endpoints and buckets,
    never secrets). Local roots: errors pass through unchanged."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        module = type(exc).__module__.split(".", 1)[0]
        if not isinstance(root, ObjectPath) or not (
                isinstance(exc, OSError) or module in _CLIENT_ERROR_MODULES):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise StoreError(f"{root}: the object store cannot be used ({type(exc).__name__}: "
                         f"{first}); check the endpoint, bucket and credentials in the "
                         "environment") from None


def arrow_filesystem(path: StorePath | str) -> Any:
    """The pyarrow filesystem reading ``path`` through the same fsspec object (None: local,
    pyarrow's own)."""
    if isinstance(path, ObjectPath):
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return PyFileSystem(FSSpecHandler(path.fs))
    return None


# --- file identity stamps (did an input change during a run?) ---------------------------


def regular_file(path: str) -> os.stat_result | None:
    """The stat of a local regular file (symlinks followed), else None (URI, FIFO, device,
    directory, missing or broken link: those are never opened here)."""
    if not os_path(path):
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat_mode.S_ISREG(st.st_mode) else None


def remote_object(path: str) -> ObjectPath | None:
    """The :class:`~datanet.store.fs.ObjectPath` of a remote URI (None: local, or a scheme
    no installed fsspec driver reaches)."""
    if not is_remote(path):
        return None
    try:
        return ObjectPath(*url_to_fs(path))
    except StoreError:
        return None


def stamp(path: str) -> tuple[int, ...] | None:
    """A local regular file's (device, inode, size, mtime, ctime), or an object's (size,
    ETag and last-modified folded to an int); None when it is neither."""
    obj = remote_object(path)
    if obj is None:
        st = regular_file(path)
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


def file_stamps(files: Sequence[str]) -> tuple[tuple[int, ...], ...] | None:
    """(device, inode, size, mtime, ctime) per file (size, ETag, last-modified per object), to
    tell that no input changed during a run; None when any is neither."""
    out = []
    for path in sorted(set(files)):
        got = stamp(path)
        if got is None:
            return None
        out.append(got)
    return tuple(out)
