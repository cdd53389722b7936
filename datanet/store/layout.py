"""The datanet store: one directory per datanet, batches committed by manifest.

Layout (DESIGN.md): ``datanet.toml``, ``<kind>/batch=<id>/part-*.parquet``,
``batches/<seq>-<id>.json`` (the commit point), ``anchors/``, ``trees/``, ``index/``.
A batch is visible only once its manifest exists. Committing is create-if-absent
(``os.link`` of a fully written temp file) under an exclusive lock, so two concurrent runs can
never both take a sequence number, a torn manifest is never exposed, and the same batch is
never committed twice.

The root may also be a URI of any fsspec filesystem (``s3://bucket/prefix``): every path
then is an :class:`~datanet.store.fs.ObjectPath` on one filesystem object. There is no flock
on an object store: the commit point is a create-if-absent put (S3 ``If-None-Match: *``) of
``batches/_seq/<seq>.json`` (the manifest itself), so of two committers of one sequence number
the server lets exactly one win; the manifest is then copied to its usual name, and a reader
rolls a claim forward if the committer died between the two puts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datanet._memory import release_memory
from datanet.errors import CommitConflict, StoreError
from datanet.schemas.manifest import FileEntry, Manifest
from datanet.schemas.spec import DatanetSpec, load_spec
from datanet.store.atomic import StagedWrite, create_exclusive, write_atomic
from datanet.store.fs import (
    ObjectPath,
    StorePath,
    arrow_filesystem,
    file_stamps,
    normalise_uri,
    open_root,
    reaching,
)
from datanet.store.history import History
from datanet.store.tables import publish_tables

__all__ = ["DatanetStore", "init_datanet", "SPEC_FILE"]

log = logging.getLogger(__name__)
SPEC_FILE = "datanet.toml"
_DIRS = ("batches", "anchors", "trees", "index", "_runs")
#: On an object store: the sequence claims (each one a complete manifest), the commit point.
CLAIMS = "batches/_seq"
#: Age after which a scratch directory without a run lock (left by a version of datanet
#: before run locks) is treated as dead: longer than any run of this project's scale.
LEGACY_SCRATCH_GRACE_S = 6 * 3600.0


def init_datanet(path: str | Path, spec_text: str, *, source: str | None = None
                 ) -> DatanetStore:
    """Create a datanet directory with its spec; refuses to overwrite an existing one.

    ``source`` names the spec in error messages (default: the new ``datanet.toml``).
    """
    root = open_root(path)
    with reaching(root):
        if isinstance(root, ObjectPath):
            _check_bucket(root)
        return _init_at(root, spec_text, source)


def _init_at(root: StorePath, spec_text: str, source: str | None) -> DatanetStore:
    if (root / SPEC_FILE).exists():
        raise StoreError(f"{root}: a datanet already exists here ({SPEC_FILE} present); "
                         "choose another path or delete it first")
    from datanet.schemas.spec import load_toml, parse_spec

    source = source or str(root / SPEC_FILE)
    parse_spec(load_toml(spec_text, source), source=source)
    if isinstance(root, ObjectPath):  # no directories on an object store
        if not create_exclusive(root / SPEC_FILE, spec_text):
            raise StoreError(f"{root}: a datanet was created here meanwhile ({SPEC_FILE} "
                             "present); choose another path or delete it first")
        return DatanetStore(root)
    root.mkdir(parents=True, exist_ok=True)
    for d in _DIRS:
        (root / d).mkdir(exist_ok=True)
    (root / SPEC_FILE).write_text(spec_text, encoding="utf-8")
    return DatanetStore(root)


def _check_bucket(root: ObjectPath) -> None:
    """Refuse a root whose bucket is missing or unreadable (never create one by accident)."""
    bucket = root.path.split("/", 1)[0]
    if not root.fs.exists(bucket):
        raise StoreError(f"{root}: bucket {bucket!r} does not exist or is not accessible "
                         "with the credentials in the environment; create it first")


def _spec_stamp(path: StorePath) -> tuple[int, ...] | None:
    if isinstance(path, ObjectPath):
        stamps = file_stamps([str(path)])  # (size, ETag + last-modified)
        return stamps[0] if stamps else None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class DatanetStore:
    """A datanet directory on local disk (shared with workers in a cluster) or under a prefix
    of an object store (``s3://bucket/prefix``)."""

    def __init__(self, path: str | Path):
        self.root: StorePath = open_root(path)
        #: pyarrow filesystem of remote roots (None: local), for ``pq.read_table(…, filesystem=…)``
        self.arrow_fs = arrow_filesystem(self.root)
        with reaching(self.root):
            self._open(path)

    def _open(self, path: str | Path) -> None:
        spec_path = self.root / SPEC_FILE
        if not spec_path.exists():
            raise StoreError(f"{self.root}: not a datanet ({SPEC_FILE} missing); "
                             f"create one with `datanet init {normalise_uri(path)}`")
        before = _spec_stamp(spec_path)
        self.spec: DatanetSpec = load_spec(spec_path)
        #: the spec file's (device, inode, size, mtime, ctime) when ``spec`` was read from it
        #: (None if it changed meanwhile): a source fingerprint is taken only of these bytes
        self.spec_stamp: tuple[int, ...] | None = (
            before if before is not None and _spec_stamp(spec_path) == before else None)
        self.problems: list[str] = []
        self._remote_manifests: dict[str, str] = {}

    # -- reading -----------------------------------------------------------------------------
    def abs(self, rel: str) -> str:
        """Absolute path of a path relative to the datanet root."""
        return str(self.root / rel)

    def path(self, rel: str) -> StorePath:
        """A path relative to the root as a ``Path`` (local) or an ``ObjectPath`` (remote)."""
        return self.root / rel

    def manifests(self, *, as_of: int | None = None) -> list[Manifest]:
        """Committed manifests in sequence order (optionally up to ``as_of``).

        A manifest that cannot be parsed is skipped and reported in ``problems``; so is one
        whose sequence breaks the chain, and everything after it.
        """
        self.problems = []
        out: list[Manifest] = []
        bdir = self.root / "batches"
        if not bdir.exists():
            return out
        for p in self._manifest_files(bdir):
            try:
                m = Manifest.from_json(self._manifest_text(p))
            except (ValueError, KeyError, TypeError) as exc:
                self.problems.append(f"{p.name}: unreadable manifest ({exc}); ignored")
                continue
            if p.name != _manifest_name(m.seq, m.batch_id):
                self.problems.append(f"{p.name}: name does not match its content; ignored")
                continue
            expected = (out[-1].seq + 1) if out else 1
            if m.seq != expected or (out and m.prev_batch != out[-1].batch_id):
                self.problems.append(
                    f"{p.name}: breaks the batch chain (expected seq {expected}); "
                    "it and later manifests are ignored")
                break
            out.append(m)
        if as_of is not None:
            out = [m for m in out if m.seq <= as_of]
        return out

    def _manifest_text(self, p: StorePath) -> str:
        """A manifest's text. On an object store each is fetched once per store object: a
        committed manifest is never rewritten (create-if-absent), so only the listing needs
        to be fresh."""
        if not isinstance(p, ObjectPath):
            return p.read_text(encoding="utf-8")
        text = self._remote_manifests.get(p.name)
        if text is None:
            text = self._remote_manifests[p.name] = p.read_text(encoding="utf-8")
        return text

    def _manifest_files(self, bdir: StorePath) -> list[StorePath]:
        """Manifest files in name order; on an object store, a sequence claim whose manifest
        copy is missing (its committer died between the two puts) is rolled forward."""
        found = sorted(bdir.glob("*.json"))
        if not isinstance(self.root, ObjectPath):
            return found
        named = {p.name[:8] for p in found}
        for claim in sorted((self.root / CLAIMS).glob("*.json")):
            if claim.stem in named:
                continue
            text = claim.read_text(encoding="utf-8")
            try:
                m = Manifest.from_json(text)
            except (ValueError, KeyError, TypeError):
                continue  # reported when the chain reaches its sequence number
            copy = bdir / _manifest_name(m.seq, m.batch_id)
            self._remote_manifests[copy.name] = text  # readable even if the copy fails
            try:
                write_atomic(copy, text)
                log.info("rolled forward committed batch %d from its claim", m.seq)
            except OSError as exc:  # e.g. read-only credentials: the claim still counts
                log.info("batch %d is committed by its claim; its manifest copy could not "
                         "be written (%s)", m.seq, type(exc).__name__)
            found.append(copy)
        return sorted(found)

    def manifest_for(self, batch_id: str) -> Manifest | None:
        """The committed manifest of ``batch_id``, if any."""
        return next((m for m in self.manifests() if m.batch_id == batch_id), None)

    def last_manifest(self) -> Manifest | None:
        """The latest committed manifest."""
        ms = self.manifests()
        return ms[-1] if ms else None

    def files(self, kind: str, *, as_of: int | None = None) -> list[str]:
        """Absolute paths of committed files of one kind."""
        return [self.abs(p) for m in self.manifests(as_of=as_of) for p in m.paths(kind)]

    def history(self, manifests: list[Manifest] | None = None) -> History:
        """Committed files by kind, for the pipeline's keyed stages (of ``manifests`` if given,
        so the caller's history and its sequence number come from one read)."""
        files: dict[str, list[str]] = {}
        batch_of: dict[str, str] = {}
        for m in self.manifests() if manifests is None else manifests:
            for kind, entries in m.files.items():
                paths = [self.abs(e.path) for e in entries]
                files.setdefault(kind, []).extend(paths)
                batch_of.update(dict.fromkeys(paths, m.batch_id))
        return History({k: tuple(v) for k, v in files.items()}, batch_of=batch_of)

    def check_snapshot(self, manifests: list[Manifest]) -> None:
        """Refuse a snapshot whose committed files are missing or not the size their manifest
        records (a cheap stat per file, or one listing of the root on an object store;
        ``datanet verify-history`` re-hashes the content)."""
        listed = self._listed_sizes() if manifests and isinstance(self.root, ObjectPath) else None
        for m in manifests:
            for kind, entries in m.files.items():
                for f in entries:
                    size = self._size(f.path) if listed is None else listed.get(f.path)
                    if size != f.bytes:
                        found = "is missing" if size is None else f"has {size} bytes"
                        raise StoreError(
                            f"batch {m.seq} ({m.batch_id}): {kind} file {f.path} {found}, its "
                            f"manifest says {f.bytes} bytes; the committed data was changed "
                            "or lost, so this snapshot is refused (run `datanet "
                            "verify-history` to see what differs)")

    def _listed_sizes(self) -> dict[str, int]:
        """``{path relative to the root: size}`` of every object under a remote root (a
        paginated LIST instead of one HEAD per committed file)."""
        root = self.root
        assert isinstance(root, ObjectPath)
        prefix = root.path + "/"
        return {name[len(prefix):]: int(info.get("size") or 0)
                for name, info in root.fs.find(root.path, detail=True).items()
                if name.startswith(prefix)}

    def _size(self, rel: str) -> int | None:
        """Size of a file under the root, None when it is missing (one call on object stores)."""
        p = self.root / rel
        if isinstance(p, ObjectPath):
            try:
                return int(p.fs.size(p.path))
            except FileNotFoundError:
                return None
        return p.stat().st_size if p.is_file() else None

    # -- committing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive commit lock (flock on ``.commit.lock``); on an object store a lease
        object (see :func:`_object_lock`)."""
        if isinstance(self.root, ObjectPath):
            with _object_lock(self.root / ".commit.lock"):
                yield
            return
        fd = os.open(self.root / ".commit.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def verify_files(self, entries: Mapping[str, list[FileEntry]]) -> None:
        """Check every file exists with its recorded size (sha256 computed by the writer)."""
        for kind, files in entries.items():
            for f in files:
                if self._size(f.path) != f.bytes:
                    raise StoreError(f"{kind} file {f.path} is missing or has the wrong size; "
                                     "the run did not finish writing; re-run it")

    def commit(
        self,
        *,
        batch_id: str,
        files: Mapping[str, list[FileEntry]],
        counts: Mapping[str, int],
        history_seq: int,
        sources: list[str],
        report: Mapping[str, Any],
        tree: Any | None,
        source_fingerprint: str | None = None,
    ) -> Manifest | None:
        """Commit a batch; returns None when ``batch_id`` is already committed (no-op).

        ``tree`` is the batch's Merkle tree, or a function building it. Up to
        :data:`COMMIT_OVERLAP_LEAVES` accepted records it is built once the attribution
        shard's n-grams are sorted, on a helper thread while the shard is written; above, after
        the shard (so the two never hold memory at the same time). Its dump is written to a
        temporary file then; the lock only renames it into place.

        Raises :class:`CommitConflict` when another batch was committed after this run read
        the datanet's history (its dedup would be stale): re-run to include it.
        """
        self.verify_files(files)
        summary: tuple[str, int] | None = None  # the tree's root and leaf count
        dump: StagedWrite | None = None

        def tree_and_dump() -> None:
            nonlocal tree, summary, dump
            if callable(tree):
                release_memory()  # the shard build's freed heap, before the tree's arrays
                tree = tree()
            if tree is not None:
                summary = tree.root, len(tree)
                dump = StagedWrite(self.root / "trees" / f"{batch_id}.json", tree.dump_chunks())
                tree = None  # the manifest holds its root: let it go before the Delta sync

        try:
            overlap = sum(e.rows for e in files.get("accepted", ())) <= COMMIT_OVERLAP_LEAVES
            files = _with_attribution_shard(self, batch_id, files,
                                            alongside=tree_and_dump if overlap else None)
            if not overlap:
                tree_and_dump()
            return self._commit_locked(batch_id, files, counts, history_seq, sources, report,
                                       summary, source_fingerprint, dump)
        finally:
            if dump is not None:
                dump.discard()  # a no-op once placed

    def _commit_locked(self, batch_id: str, files: Mapping[str, list[FileEntry]],
                       counts: Mapping[str, int], history_seq: int, sources: list[str],
                       report: Mapping[str, Any], tree: tuple[str, int] | None,
                       source_fingerprint: str | None, dump: StagedWrite | None
                       ) -> Manifest | None:
        # on an object store the sequence claim alone decides (no lease to wait out)
        with (contextlib.nullcontext() if isinstance(self.root, ObjectPath) else self.lock()):
            existing = self.manifests()
            if any(m.batch_id == batch_id for m in existing):
                return None
            last = existing[-1] if existing else None
            if (last.seq if last else 0) != history_seq:
                raise CommitConflict(
                    f"batch {last.seq if last else 0} was committed while this run was in "
                    f"progress (it read history up to batch {history_seq}); nothing was "
                    "committed: re-run the same input")
            prev_root = next((m.merkle_root for m in reversed(existing) if m.merkle_root),
                             None)
            seq = (last.seq if last else 0) + 1
            manifest = Manifest(
                seq=seq,
                batch_id=batch_id,
                datanet=self.spec.id,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                files={k: tuple(sorted(v, key=lambda f: f.path)) for k, v in files.items()},
                counts=dict(counts),
                merkle_root=tree[0] if tree is not None else None,
                leaf_count=tree[1] if tree is not None else 0,
                prev_root=prev_root,
                prev_batch=last.batch_id if last else None,
                history_seq=history_seq,
                sources=tuple(sources),
                report=dict(report),
                source_fingerprint=source_fingerprint,
            )
            if dump is not None:
                dump.place()
                release_memory()
            final = self.root / "batches" / _manifest_name(seq, batch_id)
            claim = (self.root / CLAIMS / f"{seq:08d}.json"
                     if isinstance(self.root, ObjectPath) else final)
            if not create_exclusive(claim, manifest.to_json()):
                raise CommitConflict(f"{claim.name} already exists; another run committed "
                                     "this sequence number")
            if claim != final:
                write_atomic(final, manifest.to_json())
            publish_tables(self, [*existing, manifest])
            return manifest

    def clean_run(self, run_id: str) -> None:
        """Remove a run's scratch directory."""
        scratch = self.root / "_runs" / run_id
        if isinstance(scratch, ObjectPath):
            scratch.rmtree()
            return
        shutil.rmtree(scratch, ignore_errors=True)

    @contextlib.contextmanager
    def run_scratch(self) -> Iterator[tuple[str, str]]:
        """``(run_id, scratch dir)`` of a new run, held alive by an flock on
        ``_runs/<run_id>.lock`` and removed on exit; stale scratch of dead runs goes first.

        The lock file is locked under a temporary name and then renamed, so it never exists
        unlocked, and it exists before the directory, so a sweeper never mistakes a starting
        run for a dead one; the kernel drops the lock when the process dies (even ``kill -9``).
        """
        self.sweep_runs()
        runs = self.root / "_runs"
        if isinstance(runs, ObjectPath):
            with self._object_run_scratch(runs) as run:
                yield run
            return
        runs.mkdir(exist_ok=True)
        run_id = uuid.uuid4().hex
        tmp = runs / f".{run_id}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.rename(tmp, runs / f"{run_id}.lock")
            (runs / run_id).mkdir()
            try:
                yield run_id, str(runs / run_id)
            finally:
                self.clean_run(run_id)
                (runs / f"{run_id}.lock").unlink(missing_ok=True)
        finally:
            os.close(fd)

    def sweep_runs(self, *, unlocked_grace_s: float = LEGACY_SCRATCH_GRACE_S) -> list[str]:
        """Remove the scratch of runs that are no longer alive; returns the removed run ids.

        A run is dead when nobody holds its ``<run_id>.lock`` (its process exited or was
        killed). A directory without a lock file (written before run locks existed) is removed
        once it is ``unlocked_grace_s`` old.
        """
        runs = self.root / "_runs"
        if isinstance(runs, ObjectPath):
            return self._sweep_object_runs(runs, unlocked_grace_s)
        if not runs.is_dir():
            return []
        removed = []
        for entry in sorted(runs.iterdir()):
            if entry.suffix in (".lock", ".tmp") or not entry.is_dir():
                if entry.suffix == ".tmp" or (entry.suffix == ".lock"
                                              and not (runs / entry.stem).exists()):
                    self._drop_lock_if_dead(entry)
                continue
            lock = runs / f"{entry.name}.lock"
            if not lock.exists():
                if time.time() - entry.stat().st_mtime >= unlocked_grace_s:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
                continue
            if self._drop_lock_if_dead(lock, scratch=entry):
                removed.append(entry.name)
        if removed:
            log.info("removed scratch of %d dead runs: %s", len(removed), ", ".join(removed))
        return removed

    @contextlib.contextmanager
    def _object_run_scratch(self, runs: ObjectPath) -> Iterator[tuple[str, str]]:
        """Scratch of a run on an object store: ``_runs/<run_id>/`` next to a
        ``<run_id>.lock`` object (no process lock exists there: a dead run's scratch is swept
        by age, :data:`OBJECT_SCRATCH_GRACE_S`)."""
        run_id = uuid.uuid4().hex
        lock = runs / f"{run_id}.lock"
        write_atomic(lock, f"{os.getpid()}\n")
        try:
            yield run_id, str(runs / run_id)
        finally:
            self.clean_run(run_id)
            lock.unlink(missing_ok=True)

    def _sweep_object_runs(self, runs: ObjectPath, grace_s: float) -> list[str]:
        """Remove scratch of runs on an object store whose lock object is older than
        ``min(grace_s, OBJECT_SCRATCH_GRACE_S)`` (or missing, for a directory that old)."""
        grace_s = min(grace_s, OBJECT_SCRATCH_GRACE_S)
        now = time.time()
        removed = []
        entries = list(runs.iterdir())
        names = {e.name for e in entries}
        for entry in entries:
            if entry.suffix == ".lock":
                # a run killed before it wrote any scratch leaves only its lock object
                if entry.stem not in names and now - entry.stat().st_mtime >= grace_s:
                    entry.unlink(missing_ok=True)
                continue
            lock = runs / f"{entry.name}.lock"
            try:
                started = lock.stat().st_mtime
            except FileNotFoundError:
                started = 0.0
            if now - started >= grace_s:
                entry.rmtree()
                lock.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    @staticmethod
    def _drop_lock_if_dead(lock: Path, scratch: Path | None = None) -> bool:
        """If nobody holds ``lock``: remove ``scratch`` and the lock file; True if removed."""
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # the run is alive
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            lock.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)


#: Batches of up to this many accepted records build their Merkle tree while the commit
#: writes the attribution shard (both serial tails overlap: a 200k-record run's commit
#: 3.66 -> 2.98 s); larger ones one after the other, as the overlap also overlaps their
#: memory (1M records: the driver's peak 871 -> 1,147 MB, over the issue's bound).
#: 2^18 leaves: a tree of ~60 MB of leaf words.
COMMIT_OVERLAP_LEAVES = 1 << 18


def _with_attribution_shard(store: DatanetStore, batch_id: str,
                            files: Mapping[str, list[FileEntry]],
                            alongside: Callable[[], object] | None
                            ) -> Mapping[str, list[FileEntry]]:
    """``files`` plus the batch's attribution index shard (built outside the commit lock;
    it belongs to the snapshot, so the manifest names it with its hash); ``alongside`` runs
    while the shard is written (:func:`~datanet.attribution.index.write_shard`), or here
    when there is none to build."""
    from datanet.attribution.index import KIND, write_shard

    if not files.get("accepted") or KIND in files:
        if alongside is not None:
            alongside()
        return files
    entry = write_shard(store, batch_id, files["accepted"], alongside=alongside)
    return files if entry is None else {**files, KIND: [entry]}


#: Age after which a run's scratch on an object store is treated as dead (no process lock
#: exists there): longer than any run of this project's scale.
OBJECT_SCRATCH_GRACE_S = 6 * 3600.0
#: Lease of the object-store commit lock: a holder killed with ``kill -9`` blocks others at
#: most this long. Commits themselves do not depend on it (the claim is the commit point).
LOCK_LEASE_S = 120.0


@contextlib.contextmanager
def _object_lock(lock: ObjectPath, *, lease_s: float = LOCK_LEASE_S,
                 poll_s: float = 0.05) -> Iterator[None]:
    """Mutual exclusion through a create-if-absent lock object holding a unique token; a
    lock older than ``lease_s`` is taken over (its holder died). Used to serialise writers of
    receipts / reward epochs; batch commits are made safe by their claim, not by this lock."""
    token = f"{uuid.uuid4().hex} {os.getpid()}\n"
    while not create_exclusive(lock, token):
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            continue
        if age >= lease_s:
            log.warning("taking over the commit lock %s (%.0f s old)", lock, age)
            lock.unlink(missing_ok=True)
            continue
        time.sleep(poll_s)
    try:
        yield
    finally:
        try:
            if lock.read_text() == token:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass


def _manifest_name(seq: int, batch_id: str) -> str:
    return f"{seq:08d}-{batch_id}.json"
