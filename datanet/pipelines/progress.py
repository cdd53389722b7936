"""Live progress of a run: record counts per stage, written by the DoFns, read by the driver.

Beam's metrics reach the driver only when the pipeline has finished (FnApiRunner) or through
runner-specific APIs, so each DoFn instance writes its own cumulative counts to a small JSON
DoFn writes one small file per chunk of records to the run's scratch directory
(``_runs/<run_id>/progress/<stage>-<chunk>.json``: one write per thousands of records, and no
``finish_bundle``, which Beam's DaskRunner mishandles); the driver sums them while it waits.
Display only: a remote scratch directory (``gs://…``) writes nothing, and nothing here feeds a
decision.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datanet.store.fs import os_path

__all__ = ["StageCounter", "Progress", "read_progress", "estimate_records", "ProgressPoller",
           "STAGES"]

#: Stages that report, in pipeline order: parsed (records + dead-letter lines), through the
#: batch validators, decided and written.
STAGES = ("read", "validate", "write")


class StageCounter:
    """A DoFn's record counts for one stage, one small file per chunk key.

    A chunk's file is named by its key, so a bundle that a runner retries or recomputes
    (Beam's DaskRunner recomputes shared stages) rewrites the same file instead of counting
    the chunk twice.
    """

    def __init__(self, directory: str | None, stage: str):
        self.directory = directory if directory and os_path(directory) else None
        self.stage = stage

    def add(self, key: str, n: int) -> None:
        """Record that chunk ``key`` had ``n`` records in this stage (atomic rewrite)."""
        if not self.directory or not n:
            return
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:20]
        path = os.path.join(self.directory, f"{self.stage}-{digest}.json")
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        try:
            os.makedirs(self.directory, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"stage": self.stage, "records": int(n)}, fh)
            os.replace(tmp, path)
        except OSError:
            pass  # progress is display only; the run's scratch may be gone after a failure


@dataclass(frozen=True)
class Progress:
    """What the driver knows while a run goes: records per stage, elapsed seconds, the
    estimated number of input records (None when it cannot be estimated cheaply), and whether
    this is the last report (the pipeline has finished). ``active_seconds`` is the time since the
    first record was counted: the rate leaves out the runner's start-up."""

    counts: dict[str, int]
    seconds: float
    estimated_total: int | None
    final: bool = False
    active_seconds: float | None = None

    @property
    def stage(self) -> str:
        """The stage being worked on: the last stage with counts, or ``keyed stages`` when
        everything was validated but nothing written yet (dedup, flood … run then)."""
        read, val, wrote = (self.counts.get(s, 0) for s in STAGES)
        if wrote:
            return "deciding and writing"
        if val and self.estimated_total and val >= self.estimated_total:
            return "duplicate and flood checks"
        if val:
            return "validating"
        if read:
            return "reading"
        return "starting"

    @property
    def rate(self) -> float:
        """Records per second through the stage furthest along (read → validate → write)."""
        seconds = self.active_seconds if self.active_seconds is not None else self.seconds
        for s in reversed(STAGES):
            if self.counts.get(s):
                return self.counts[s] / max(seconds, 0.5)
        return 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until the current stage has seen every estimated record, or None."""
        done = next((self.counts[s] for s in reversed(STAGES) if self.counts.get(s)), 0)
        if not self.estimated_total or not done or done >= self.estimated_total:
            return None
        return (self.estimated_total - done) / max(self.rate, 1e-9)


def read_progress(directory: str) -> dict[str, int]:
    """Records per stage summed over every progress file in ``directory``."""
    counts = dict.fromkeys(STAGES, 0)
    try:
        names = os.listdir(directory)
    except OSError:
        return counts
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                data = json.load(fh)
            counts[data["stage"]] = counts.get(data["stage"], 0) + int(data["records"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced right now; the next poll reads it
    return counts


def _count_lines(path: Path, opener: Callable) -> int:
    n = 0
    with opener(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def estimate_records(files: Sequence[str], *, max_bytes: int = 2 << 30) -> int | None:
    """Input records, estimated cheaply on the driver: Parquet row counts from the footer,
    newlines of local JSONL / CSV files (gzip decompressed, CSV minus its header). None when
    a file is remote or the inputs exceed ``max_bytes`` (counting would cost too much)."""
    total, size = 0, 0
    for f in files:
        p = Path(f)
        if not os_path(f) or not p.is_file():
            return None
        size += p.stat().st_size
        if size > max_bytes:
            return None
        name = p.name.lower()
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            total += pq.ParquetFile(p).metadata.num_rows
            continue
        opener = gzip.open if name.endswith(".gz") else open
        lines = _count_lines(p, opener)
        base = name[:-3] if name.endswith(".gz") else name
        total += max(lines - 1, 0) if base.endswith(".csv") else lines
    return total


class ProgressPoller:
    """A driver thread calling ``callback(Progress)`` every ``interval`` seconds until stopped."""

    def __init__(self, directory: str, callback: Callable[[Progress], None],
                 estimated_total: int | None, interval: float = 0.5):
        self.directory = directory
        self.callback = callback
        self.estimated_total = estimated_total
        self.interval = interval
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._first: float | None = None
        self._thread = threading.Thread(target=self._loop, name="datanet-progress",
                                        daemon=True)

    def snapshot(self, final: bool = False) -> Progress:
        counts = read_progress(self.directory)
        now = time.monotonic()
        if self._first is None and any(counts.values()):
            self._first = now - self.interval / 2  # counted somewhere since the last poll
        active = now - self._first if self._first is not None else None
        return Progress(counts, now - self._start, self.estimated_total, final, active)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.callback(self.snapshot())

    def __enter__(self) -> ProgressPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.callback(self.snapshot(final=True))
