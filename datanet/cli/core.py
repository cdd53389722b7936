"""Core commands: ``init``, ``run``, ``status``, ``sql``."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datanet.cli._common import anchor_committed, err, fail, out
from datanet.errors import DatanetError

__all__ = ["register"]


def init(
    path: Annotated[Path, typer.Argument(help="Directory of the new datanet.")],
    spec: Annotated[Path | None, typer.Option("--spec", help="Spec TOML to copy.")] = None,
) -> None:
    """Create a datanet directory (default spec: every validator on at its defaults)."""
    from datanet.schemas.default_spec import datanet_id_from_name, default_spec_text
    from datanet.store.layout import init_datanet

    try:
        text = (spec.read_text(encoding="utf-8") if spec
                else default_spec_text(datanet_id_from_name(path.resolve().name)))
        store = init_datanet(path, text, source=str(spec) if spec else None)
    except (DatanetError, OSError) as exc:
        fail(exc)
    err.print(f"created datanet [bold]{store.spec.id}[/] at {store.root}")


def run(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    inputs: Annotated[list[str], typer.Argument(help="Input files / globs / URIs, then any "
                                                     "Beam options (--flag=value).")],
    runner: Annotated[str | None, typer.Option(help="Beam runner (default: the spec's, "
                                                    "DirectRunner).")] = None,
    anchor: Annotated[bool, typer.Option("--anchor/--no-anchor",
                                         help="Anchor the batch root on-chain.")] = True,
    dask_address: Annotated[str | None, typer.Option(
        help="With --runner dask: the scheduler address HOST:PORT.")] = None,
    workers: Annotated[int, typer.Option(help="With --runner dask and no address: local "
                                              "worker processes.")] = 2,
) -> None:
    """Ingest, validate and commit one batch; then anchor its Merkle root."""
    from datanet.pipelines.options import check_runner, split_run_args
    from datanet.pipelines.run import run_datanet
    from datanet.store.layout import DatanetStore

    try:  # unknown options and runner typos are usage errors, before anything runs
        split = split_run_args([*inputs, *ctx.args], also_known=_RUN_OPTIONS)
        if runner:
            runner = check_runner(runner, split.beam_args)
    except DatanetError as exc:
        fail(exc, 2)
    files, beam_args = list(split.inputs), list(split.beam_args)
    if not files:
        fail(DatanetError("give at least one input file or glob"), 2)
    try:
        store = DatanetStore(path)
        with err.status(f"running {store.spec.id} on {len(files)} input(s)…"):
            result = _run_with_runner(store, files, runner, beam_args, dask_address, workers,
                                      run_datanet)
    except DatanetError as exc:
        fail(exc)
    c = result.counts
    err.print(
        f"{result.message}: {c.get('input', 0)} records → {c.get('accepted', 0)} accepted, "
        f"{c.get('rejected', 0)} rejected, {c.get('quarantine', 0)} needs review, "
        f"{c.get('deadletter', 0)} dead-letter ({result.seconds:.1f}s)")
    for name, rep in result.report.items():
        err.print(f"[yellow]{name}:[/] {escape(str(rep))}")
    if anchor:
        anchor_committed(store)


#: ``datanet run``'s own options, offered as suggestions for a mistyped one.
_RUN_OPTIONS = ("--runner", "--anchor", "--no-anchor", "--dask-address", "--workers")


def _run_with_runner(store, files, runner, beam_args, dask_address, workers, run_datanet):
    from datanet.pipelines.options import DASK_RUNNER

    if runner == DASK_RUNNER:
        from datanet.pipelines.dask import run_on_dask

        return run_on_dask(store, files, beam_args=beam_args, address=dask_address,
                           workers=workers)
    return run_datanet(store, files, runner=runner, beam_args=beam_args)


def status(path: Annotated[Path, typer.Argument(help="The datanet directory.")]) -> None:
    """Committed batches with their counts and anchor state."""
    from datanet.store.query import connect

    try:
        con = connect(path)
    except DatanetError as exc:
        fail(exc)
    rows = con.execute(
        "SELECT seq, batch_id, created_at, input, accepted, rejected, quarantine, deadletter, "
        "merkle_root, anchor_status FROM batches ORDER BY seq").fetchall()
    table = Table(title=f"datanet {path}")
    for col in ("seq", "batch", "created", "input", "accepted", "rejected", "review",
                "dead-letter", "root", "anchor"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r[0]), r[1][:12] + "…", r[2], *(str(x) for x in r[3:8]),
                      (r[8] or "-")[:12] + ("…" if r[8] else ""), r[9] or "-")
    out.print(table)
    if not rows:
        out.print("no batches committed yet")


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def sql(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    query: Annotated[str, typer.Argument(help="DuckDB SQL over accepted, rejected, quarantine, "
                                              "deadletter, votes, batches.")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    as_of: Annotated[int | None, typer.Option("--as-of", help="Show the datanet as it was "
                                                              "after batch SEQ.")] = None,
) -> None:
    """Query committed batches with DuckDB SQL."""
    import duckdb

    from datanet.store.query import connect

    try:
        con = connect(path, as_of=as_of)
        rel = con.execute(query)
        cols = [d[0] for d in rel.description] if rel.description else []
        rows = rel.fetchall()
    except (DatanetError, duckdb.Error) as exc:
        fail(exc)
    if format is Format.json:
        sys.stdout.write(json.dumps([dict(zip(cols, r, strict=True)) for r in rows],
                                    default=str) + "\n")
    elif format is Format.csv:
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
    else:
        table = Table()
        for c in cols:
            table.add_column(c)
        for r in rows:
            table.add_row(*("NULL" if v is None else str(v) for v in r))
        out.print(table)


def register(app: typer.Typer) -> None:
    """Add the core commands to the ``datanet`` app."""
    app.command("init")(init)
    app.command("run", context_settings={"allow_extra_args": True,
                                         "ignore_unknown_options": True})(run)
    app.command("status")(status)
    app.command("sql")(sql)
