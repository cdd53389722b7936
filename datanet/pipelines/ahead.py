"""Parse the input files ahead, in a forked process, while the driver is still setting up.

A run on the in-process DirectRunner with a worker pool (:mod:`.pool`) spends its first
~1.7 s on one core: Beam builds and starts the graph, then the batch validators set up
(Presidio, the language model, compiled kernels) before the pool can fork from that state.
Parsing the input needs none of it, so a process forked at the start of the run parses the
files on the idle core and spills each chunk to the run's scratch; the driver's parse step then
reads those chunks back instead of parsing the files itself (measured on the 200k benchmark
corpus, 2 cores: see ``benchmarks/scale.py`` and the closing note of issue 16).

The chunks are the same: the same :func:`~datanet.pipelines.intake.iter_path_chunks` call on
the same path and file time as the parse step makes; a file whose time no longer matches, or
that the driver reaches before this process claims it, is parsed by the driver as before.
Each file is claimed once, by whichever side comes first. What waits in scratch is bounded
(``limit`` chunks of finished files, ``limit`` of the file being parsed): the process claims a
new file only while fewer than ``limit`` chunks wait, and pauses within a file while ``limit``
of that file's chunks wait. It never waits on chunks of another file than the one it parses,
the only one the driver may be waiting for, so the two cannot wait on each other.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from datanet._ipc import decode
from datanet._pool import _die_with_parent
from datanet.errors import DatanetError, WorkerLost
from datanet.pipelines.intake import iter_path_chunks
from datanet.pipelines.io import spill_chunk
from datanet.schemas.spec import DatanetSpec

__all__ = ["AHEAD_CHUNKS", "ParseAhead", "running"]

#: Chunks (of ``pipeline.batch_rows`` records) parsed ahead and not yet read at which the
#: process stops claiming files, and pauses within the file it parses: ~64 x 2000 records x
#: ~1.2 KB of Arrow IPC each, ~150 MB of scratch (twice that at most, see the module).
AHEAD_CHUNKS = 64

_FREE, _CHILD, _DRIVER = 0, 1, 2  # who claimed a file (``ParseAhead._state``)

#: Parse-ahead processes of the runs in this process, by token (a DoFn finds its run's here).
_RUNNING: dict[str, ParseAhead] = {}

Chunk = tuple[str, pa.RecordBatch | None, pa.RecordBatch | None]


def running(token: str | None) -> ParseAhead | None:
    """The parse-ahead of the run ``token`` names, if it runs in this process."""
    return _RUNNING.get(token) if token else None


class ParseAhead:
    """A forked process parsing ``files`` (``(path, default_time_us)``, in order) into
    ``scratch``; :meth:`take` hands a file's chunks to the driver, :meth:`close` stops it."""

    def __init__(self, spec: DatanetSpec, files: Sequence[tuple[str, int]], scratch: str,
                 opener: Callable[[str], Any], *, limit: int = AHEAD_CHUNKS):
        ctx = multiprocessing.get_context("fork")
        self.token = scratch
        self._files = list(files)
        self._index: dict[str, int] = {}
        for i, (path, _) in enumerate(self._files):
            self._index.setdefault(path, i)
        # No lock between the two (one killed holding it would hang the other): a file is
        # claimed by creating its marker (O_EXCL: one side wins), and each counter has one
        # writer. ``_state`` records who won, for the tests and nothing else.
        self._claims = os.path.join(scratch, "ahead-claims")
        os.makedirs(self._claims, exist_ok=True)
        self._state = ctx.RawArray("b", len(self._files))
        self._made = ctx.RawValue("i", 0)  # chunks handed over (written by the process)
        self._taken = ctx.RawArray("i", len(self._files))  # chunks taken per file (driver)
        self._taken_all = ctx.RawValue("i", 0)  # chunks taken (driver)
        self._asked: set[int] = set()  # files the driver asked for
        self._queue: Any = ctx.Queue()
        self._got: dict[int, collections.deque[tuple[Any, ...]]] = {}
        # id(batch) -> (its spill, the batch: held, so the id stays its own until shipped)
        self._files_of: dict[int, tuple[tuple[str, int, int, int], pa.RecordBatch]] = {}
        self._process = ctx.Process(
            target=self._parse_all, args=(spec, scratch, opener, limit, os.getpid()),
            name="datanet-parse-ahead", daemon=True)
        self._process.start()
        self.exitcode: int | None = None  # the process's, once closed
        _RUNNING[self.token] = self

    # -- in the forked process ------------------------------------------------------------

    def _parse_all(self, spec: DatanetSpec, scratch: str, opener: Callable[[str], Any],
                   limit: int, parent: int) -> None:
        _die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
        for i, (path, time_us) in enumerate(self._files):
            while self._pending() >= limit and not os.path.exists(self._claim_path(i)):
                time.sleep(0.005)
            if not self._claim(i):
                continue
            self._state[i] = _CHILD
            try:
                for n, (key, batch, dead) in enumerate(iter_path_chunks(
                        spec, path, opener, default_time_us=time_us)):
                    while n - self._taken[i] >= limit:
                        time.sleep(0.005)
                    # as the pool ships a chunk (one uncompressed IPC stream): it goes on as is
                    records = spill_chunk(scratch, key, "input", batch)
                    lost = spill_chunk(scratch, key, "ahead-dead", dead)
                    self._made.value += 1  # first: what waits is never undercounted
                    self._queue.put(("chunk", i, key, records, lost))
            except Exception as exc:  # not the input's fault (that is a dead letter): disk, bug
                self._queue.put(("error", i, f"{type(exc).__name__}: {exc}"))
                return
            self._queue.put(("done", i))

    # -- in the driver --------------------------------------------------------------------

    def take(self, path: str, time_us: int) -> Iterator[Chunk] | None:
        """``path``'s chunks as parsed ahead, or None: the caller parses the file itself (it
        was not listed, is not claimed yet - it is now the caller's - or was already taken)."""
        i = self._index.get(path)
        if i is None or i in self._asked:
            return None
        self._asked.add(i)
        if self._claim(i):
            self._state[i] = _DRIVER
            return None
        if self._files[i][1] != time_us:  # the file changed since it was listed: parse anew
            # (its chunks are read to the end first: none may land in scratch later)
            with contextlib.suppress(DatanetError):  # the process failed: parse anew anyway
                for _, batch, _ in self._chunks(i):
                    ref = self.shipped(batch) if batch is not None else None
                    if ref is not None:
                        os.remove(ref[0])
            return None
        return self._chunks(i)

    def _chunks(self, i: int) -> Iterator[Chunk]:
        got = self._got.setdefault(i, collections.deque())
        while True:
            while not got:
                self._receive()
            message = got.popleft()
            if message[0] == "done":
                return
            if message[0] == "error":
                raise DatanetError(f"{self._files[i][0]}: parsing ahead failed: {message[2]}")
            _, _, key, records, lost = message
            self._taken[i] += 1
            self._taken_all.value += 1
            batch = None
            if records is not None:
                batch = _mapped(records)
                self._files_of[id(batch)] = (records, batch)
            dead = None
            if lost is not None:  # read once, here: the memory map keeps the pages
                dead = _mapped(lost)
                os.remove(lost[0])
            yield key, batch, dead

    def _claim_path(self, i: int) -> str:
        return os.path.join(self._claims, str(i))

    def _claim(self, i: int) -> bool:
        """Claim file ``i`` for this side; False if the other side has it."""
        try:
            os.close(os.open(self._claim_path(i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        return True

    def _pending(self) -> int:
        """Chunks handed over and not taken yet."""
        return self._made.value - self._taken_all.value

    def shipped(self, batch: pa.RecordBatch) -> tuple[str, int, int, int] | None:
        """The spill ``batch`` was read from, if it came from :meth:`take`: the pool ships
        that file (its worker reads and removes it) instead of writing the chunk again."""
        found = self._files_of.pop(id(batch), None)  # held there: the id is still its own
        return found[0] if found is not None else None

    def _receive(self) -> None:
        try:
            message = self._queue.get(timeout=1.0)
        except queue.Empty:
            if not self._process.is_alive():
                raise WorkerLost(
                    "the parse-ahead process died mid-file (killed by the OS? out of "
                    "memory?); run again, or set pipeline.local_workers = 1") from None
            return
        self._got.setdefault(message[1], collections.deque()).append(message)

    def close(self) -> None:
        """Stop the process (whatever it has not handed over is the scratch's to remove)."""
        _RUNNING.pop(self.token, None)
        self._files_of.clear()  # chunks never shipped: their memory maps go
        self._got.clear()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self.exitcode = self._process.exitcode
        self._process.close()
        self._queue.close()
        self._queue.cancel_join_thread()
        self._queue._reader.close()  # the driver never put: close() left both pipe ends
        self._queue._writer.close()


def _mapped(ref: tuple[str, int, int, int]) -> pa.RecordBatch:
    """The batch of a chunk's spill, memory-mapped: the driver reads only what it touches
    (the record ids), the worker the rest."""
    path, schema_bytes, offset, length = ref
    mapped = pa.memory_map(path)  # not closed here: the batch references the mapping
    return decode(path, (schema_bytes, offset, length), mapped.read_at(schema_bytes, 0),
                  mapped.read_at(length, offset))
