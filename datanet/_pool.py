"""Fork-based worker processes for chunk work (Beam-free: the pipeline's DoFns and the
commit's attribution shard both use it; see :mod:`datanet.pipelines.pool` for why fork).

Workers are forked from the calling process once its set-up is done, so they inherit every
engine and table it built (copy-on-write, no second set-up); only the arguments and results
travel, pickled through a pipe (Arrow and numpy pickle as buffers).
"""

from __future__ import annotations

import collections
import ctypes
import math
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from datanet.errors import DatanetError, WorkerLost

__all__ = ["ChunkPool", "cgroup_cpus", "pool_size", "usable_cores"]

#: What the forked workers call: set by the parent just before it forks (a closure or a bound
#: method cannot cross the pipe, a module global is inherited by the fork).
_WORK: Callable[..., Any] | None = None


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity (else ``os.cpu_count()``), capped by a
    cgroup v2 CPU quota (a container limited to 2 CPUs on a 64-core host gets 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota = cgroup_cpus(Path("/sys/fs/cgroup/cpu.max").read_text())
    except OSError:
        quota = None
    return max(1, min(cores, quota) if quota else cores)


def cgroup_cpus(cpu_max: str) -> int | None:
    """CPUs a cgroup v2 ``cpu.max`` line (``"<quota> <period>"`` or ``"max <period>"``)
    allows, rounded up; None without a quota."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills the worker when the process that forked it dies
    (even by SIGKILL), so no orphan keeps the run's lock or scratch; Linux ``prctl``."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def pool_size(configured: int) -> int:
    """Worker processes to fork: ``configured`` (``0`` = one per usable core), or 1 (no pool)
    where this process may not fork workers (a daemonic ``multiprocessing`` worker, whose
    children multiprocessing refuses, or a platform without ``fork``)."""
    if multiprocessing.current_process().daemon or "fork" not in (
            multiprocessing.get_all_start_methods()):
        return 1
    return configured if configured > 0 else usable_cores()


def _call(*args: Any) -> Any:
    """Run the inherited work function in a worker; an exception that cannot be pickled back
    (a custom ``__init__``) comes back as a :class:`DatanetError` with its text."""
    if _WORK is None:  # pragma: no cover - only if a worker was not forked from the parent
        raise DatanetError("chunk pool worker started without its work function")
    try:
        return _WORK(*args)
    except Exception as exc:
        if _round_trips(exc):
            raise
        message = f"{type(exc).__name__}: {exc}"
    # raised outside the handler: no __context__ chain back to the unpicklable exception
    raise DatanetError(message)


def _round_trips(exc: BaseException) -> bool:
    """Whether ``exc`` survives the trip back (pickled as the pool does, read as the parent
    does)."""
    try:
        pickle.loads(ForkingPickler.dumps(exc))
    except Exception:
        return False
    return True


class ChunkPool:
    """``work(*args)`` on ``workers`` forked processes, results handed back in submission order.

    At most ``ahead`` (default ``2 * workers``) calls are in flight (each holds its chunk and,
    once done, its result in the parent), so memory is bounded by the pool, not by the input.
    ``work`` and everything it reaches are inherited at fork time: create the pool after the
    set-up, from the thread that will submit.
    """

    def __init__(self, work: Callable[..., Any], workers: int, ahead: int | None = None):
        if workers < 2:
            raise DatanetError(f"a chunk pool needs 2 or more workers, not {workers}")
        global _WORK
        _WORK = work
        self.work = work
        self.workers = workers
        self.ahead = max(ahead or 2 * workers, 1)
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent, initargs=(os.getpid(),))
        self._executor.submit(os.getpid).result()  # fork every worker now, from this state
        self._pending: collections.deque[Future[Any]] = collections.deque()

    def submit(self, *args: Any) -> list[Any]:
        """Queue one call now; the results, in order, that are done or must be waited for to
        stay within the bound."""
        self._pending.append(self._executor.submit(_call, *args))
        ready = []
        while len(self._pending) > self.ahead or (
                self._pending and self._pending[0].done()):
            ready.append(self._result(self._pending.popleft()))
        return ready

    def drain(self) -> Iterator[Any]:
        """Every result still pending, in submission order."""
        while self._pending:
            yield self._result(self._pending.popleft())

    def _result(self, future: Future[Any]) -> Any:
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerLost(
                f"a chunk worker process ({self.work.__qualname__}) died mid-task (killed by "
                "the OS? out of memory?); run again, or set pipeline.local_workers = 1 to "
                "work in one process") from None

    def close(self) -> None:
        """Stop the workers (pending calls are cancelled) and let go of the work function."""
        global _WORK
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)
        if _WORK is self.work:
            _WORK = None
