"""Live progress of ``datanet run`` on stderr: a rich progress line on a terminal, a plain
line every few seconds otherwise, nothing with ``--quiet``. Fed by the pipeline's own counts
(:mod:`datanet.pipelines.progress`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from datanet.pipelines.progress import Progress as RunProgress

__all__ = ["run_progress", "describe_progress"]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}:{seconds % 60:02d}"


def describe_progress(p: RunProgress, *, verbose: bool = False) -> str:
    """One line: stage, records read, rate, ETA (and per-stage counts when ``verbose``)."""
    c = p.counts
    line = (f"{p.stage}: {c.get('read', 0):,} records read"
            + (f" of ~{p.estimated_total:,}" if p.estimated_total else "")
            + f", {p.rate:,.0f} records/s, ETA {_eta(p.eta)}")
    if verbose:
        line += (f" (validated {c.get('validate', 0):,}, written {c.get('write', 0):,}, "
                 f"{p.seconds:.1f}s)")
    return line


@contextlib.contextmanager
def run_progress(console: Console, *, quiet: bool, verbose: int,
                 label: str) -> Iterator[Callable[[RunProgress], None] | None]:
    """A progress callback for :func:`datanet.pipelines.run.run_datanet` (None when quiet)."""
    if quiet:
        yield None
        return
    if not console.is_terminal:
        every = 1.0 if verbose else 5.0
        last = [0.0]

        def plain(p: RunProgress) -> None:
            now = time.monotonic()
            if p.final or now - last[0] >= every:
                last[0] = now
                console.print(f"{label}: {describe_progress(p, verbose=bool(verbose))}",
                              highlight=False, soft_wrap=True)

        yield plain
        return
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=16),
                   TextColumn("{task.fields[line]}"), TimeElapsedColumn(), console=console,
                   transient=True)
    task = bar.add_task(label, total=None, line="starting…")

    def rich_update(p: RunProgress) -> None:
        done = p.counts.get("write") or p.counts.get("validate") or p.counts.get("read") or 0
        read = p.counts.get("read", 0)
        of = f"/~{p.estimated_total:,}" if p.estimated_total else ""
        bar.update(task, total=p.estimated_total or None, completed=done,
                   description=f"{label} · {p.stage}",
                   line=f"{read:,}{of} read · {p.rate:,.0f} rec/s · ETA {_eta(p.eta)}")

    with bar:
        yield rich_update
