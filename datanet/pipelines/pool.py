"""Chunk work on the other cores of the machine that runs the in-process DirectRunner.

Beam's own ways to use more cores cost too much here (measured on a 2-core machine, 100k
records): ``multi_processing`` starts each worker from scratch (imports, Presidio, fastText)
and moves every chunk through the runner's data plane (~1.45x the CPU of one process);
``multi_threading`` shares one GIL, and fastText's predict and the per-record Python steps hold
it (~1.4 of 2 cores busy, ~1.1-1.3x the CPU). A :class:`ChunkPool` instead forks worker
processes *after* the validators are set up, so each inherits them ready (copy-on-write, no
second set-up), and only the chunk (Arrow IPC through a pipe) and a small result travel.

Only the DirectRunner in its default in-memory mode uses it (:func:`local_workers`): on
Dask, or Beam's own multi-worker modes, the runner already spreads the work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from datanet._pool import ChunkPool, pool_size, usable_cores

__all__ = ["IN_PROCESS_RUNNERS", "POOL_MIN_INPUT_BYTES", "ChunkPool", "ForkedDoFn",
           "local_workers", "pool_size", "usable_cores"]

#: Runner names that mean Beam's in-process FnApiRunner (see ``run._runner_object``).
IN_PROCESS_RUNNERS = ("DirectRunner", "direct", "FnApiRunner")


#: Below this many input bytes, ``local_workers = 0`` (automatic) runs in one process: each
#: forked stage costs a fixed ~0.1-0.3 s, which a small input does not earn back
#: (``benchmarks/scale.py``, 1 KB records on 2 cores: 10k records took 1.10x the wall time
#: of one process with the pool, 20k 0.82x, 50k 0.70x).
POOL_MIN_INPUT_BYTES = 16 << 20


def local_workers(configured: int, runner: str, beam_args: Sequence[str],
                  input_bytes: int | None = None) -> int:
    """Worker processes for chunk work: ``configured`` (``0`` = one per usable core, or none
    for less than :data:`POOL_MIN_INPUT_BYTES` of known ``input_bytes``) on the in-process
    DirectRunner in its in-memory mode, else 1 (the runner spreads the work)."""
    if runner not in IN_PROCESS_RUNNERS:
        return 1
    if configured == 0 and input_bytes is not None and input_bytes < POOL_MIN_INPUT_BYTES:
        return 1
    for arg in beam_args:
        name, _, value = arg.partition("=")
        if name == "--direct_running_mode" and value != "in_memory":
            return 1
        if name == "--direct_num_workers" and value not in ("", "1"):
            return 1
    return pool_size(configured)


class ForkedDoFn(beam.DoFn):
    """A DoFn whose per-element work runs on a :class:`ChunkPool` when ``workers`` > 1.

    Subclasses implement :meth:`work` (element -> ``(outputs, note)``; its files go to the
    run's scratch, so only small references come back) and may override :meth:`received`,
    which gets each element's ``note`` in the driver (Beam metrics counted in a worker would
    be lost). The pool is forked at a bundle's start (after ``setup``: the workers inherit what
    it built) and stopped at the bundle's end; outputs still pending there are emitted from
    ``finish_bundle``, in the global window.
    """

    workers: int = 1
    #: Elements are ``(key, iterable)`` from a GroupByKey: shipped as ``(key, list)``.
    grouped: ClassVar[bool] = False
    _pool: ChunkPool | None = None
    _counters: dict[tuple[str, str], Any] | None = None

    def work(self, element: Any) -> tuple[list[Any], Any]:
        raise NotImplementedError

    def received(self, note: Any) -> None:
        """Driver-side bookkeeping for one element's ``note`` (default: none)."""

    def count(self, namespace: str, increments: Mapping[str, int]) -> None:
        """Beam counters ``namespace:name`` increased in the driver (from a ``note``)."""
        if self._counters is None:
            self._counters = {}
        for name, value in increments.items():
            counter = self._counters.get((namespace, name))
            if counter is None:
                counter = self._counters[namespace, name] = Metrics.counter(namespace, name)
            counter.inc(value)

    def start_bundle(self) -> None:
        if self.workers > 1 and self._pool is None:
            self._pool = ChunkPool(self.work, self.workers)

    def process(self, element: Any) -> Iterator[Any]:
        if self._pool is None:
            done: Iterable[tuple[list[Any], Any]] = [self.work(element)]
        else:
            done = self._pool.submit(self.shippable(element))
        for outputs, note in done:
            self.received(note)
            yield from outputs

    def shippable(self, element: Any) -> Any:
        """``element`` as it is sent to a worker (as is, or a group's values as a list)."""
        if self.grouped:
            key, values = element
            return key, list(values)
        return element

    def finish_bundle(self) -> Iterator[Any]:
        if self._pool is None:
            return
        try:
            for outputs, note in self._pool.drain():
                self.received(note)
                for value in outputs:
                    yield WindowedValue(value, MIN_TIMESTAMP, [GlobalWindow()])
        finally:
            self._pool.close()
            self._pool = None

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
