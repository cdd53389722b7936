"""Core commands: ``init``, ``run``, ``status``, ``sql``."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datanet.cli._common import anchor_committed, err, fail, out
from datanet.cli._output import OutFormat, anchor_json, print_json
from datanet.errors import DatanetError

__all__ = ["register"]


def init(
    path: Annotated[Path, typer.Argument(help="Directory of the new datanet.")],
    spec: Annotated[Path | None, typer.Option("--spec", help="Spec TOML to copy.")] = None,
) -> None:
    """Create a datanet directory (default spec: every validator on at its defaults)."""
    from datanet.store.layout import init_datanet
    from datanet.validators.registry import datanet_id_from_name, default_spec_text

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
    format: Annotated[OutFormat, typer.Option("--format", "-f", help="Summary as text or as "
                                              "one JSON object on stdout.")] = OutFormat.table,
    report: Annotated[bool, typer.Option("--report", help="Also write the batch's HTML "
                                         "report (PATH/reports/batch-SEQ.html).")] = False,
) -> None:
    """Ingest, validate and commit one batch; then anchor its Merkle root."""
    from datanet.pipelines.options import check_runner, split_run_args
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
        result = _known_rerun(store, files, runner, beam_args)
        if result is None:
            from datanet.pipelines.run import run_datanet

            result = _run_with_runner(store, files, runner, beam_args, dask_address, workers,
                                      run_datanet)
    except DatanetError as exc:
        fail(exc)
    states = anchor_committed(store) if anchor and format is OutFormat.json else None
    report_path = _write_batch_report(store, result) if report else None
    _print_run_result(result, format, states, report_path)
    if anchor and format is OutFormat.table:
        anchor_committed(store)


def _known_rerun(store, files, runner, beam_args):
    """The "nothing new" result of an input already committed, found without importing Beam
    (:mod:`datanet.pipelines.fingerprint`); None: run the pipeline. Only for local files named
    literally and no Beam options (checking those needs Beam: ``run_datanet`` then checks)."""
    from datanet.pipelines.fingerprint import committed_rerun, literal_inputs
    from datanet.pipelines.options import check_runner

    literal = literal_inputs(files)
    if literal is None or beam_args:
        return None
    check_runner(runner or store.spec.pipeline.runner, store.spec.pipeline.options)
    return committed_rerun(store, literal)


def _write_batch_report(store, result) -> Path | None:
    """The HTML report of the run's batch (also of a re-run's already committed batch)."""
    if result.manifest is None:
        return None
    from datanet.report import write_report

    try:
        return write_report(store.root, batch=result.manifest.seq)
    except (DatanetError, OSError) as exc:
        fail(exc)


def _print_run_result(result, format: OutFormat, anchors, report_path=None) -> None:
    """The run's outcome on stdout: a line of counts and one line per validator report, or
    one JSON object (``anchors`` included when the run anchored)."""
    from datanet.cli._output import describe

    if format is OutFormat.json:
        m = result.manifest
        print_json({
            "committed": result.committed, "message": result.message,
            "batch_id": result.batch_id, "seq": m.seq if m else None,
            "merkle_root": m.merkle_root if m else None, "counts": result.counts,
            "seconds": round(result.seconds, 3), "reports": result.report,
            "anchors": [anchor_json(s) for s in anchors] if anchors is not None else None,
            "report": str(report_path) if report_path else None,
        })
        return
    c = result.counts
    out.print(
        f"{result.message}: {c.get('input', 0)} records → {c.get('accepted', 0)} accepted, "
        f"{c.get('rejected', 0)} rejected, {c.get('quarantine', 0)} needs review, "
        f"{c.get('deadletter', 0)} dead-letter ({result.seconds:.1f}s)", highlight=False,
        soft_wrap=True)
    for name, rep in result.report.items():
        out.print(f"[yellow]{name}:[/] {escape(describe(rep))}", highlight=False, soft_wrap=True)
    if report_path:
        out.print(f"report: {report_path}", highlight=False, soft_wrap=True)


#: ``datanet run``'s own options, offered as suggestions for a mistyped one.
_RUN_OPTIONS = ("--runner", "--anchor", "--no-anchor", "--dask-address", "--workers",
                "--format", "--report")


def _run_with_runner(store, files, runner, beam_args, dask_address, workers, run_datanet):
    from datanet.cli._common import ui
    from datanet.cli._progress import run_progress
    from datanet.pipelines.options import DASK_RUNNER

    label = store.spec.id
    with run_progress(err, quiet=ui.quiet, verbose=ui.verbose, label=label) as progress:
        if runner == DASK_RUNNER:
            from datanet.pipelines.dask import run_on_dask

            return run_on_dask(store, files, beam_args=beam_args, address=dask_address,
                               workers=workers, progress=progress)
        return run_datanet(store, files, runner=runner, beam_args=beam_args,
                           progress=progress)


def status(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    format: Annotated[OutFormat, typer.Option("--format", "-f",
                                              help="table (fits 80 columns) or json.")
                      ] = OutFormat.table,
) -> None:
    """Committed batches with their counts, full batch ids and roots, and anchor state."""
    from datanet.store.query import connect

    try:
        con = connect(path)
    except DatanetError as exc:
        fail(exc)
    rel = con.sql("SELECT * FROM batches ORDER BY seq")
    cols = list(rel.columns)
    rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    if format is OutFormat.json:
        print_json(rows)
        return
    if not rows:
        out.print(f"datanet {escape(str(path))}: no batches committed yet")
        return
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title=f"datanet {escape(str(path))}", title_justify="left")
    table.add_column("seq", justify="right")
    table.add_column("created (UTC)", no_wrap=True)
    for col in ("input", "accepted", "rejected", "review", "dead-letter"):
        table.add_column(col, justify="right")
    table.add_column("anchor")
    for r in rows:
        table.add_row(str(r["seq"]), (r["created_at"] or "")[:16].replace("T", " "),
                      *(str(r[k]) for k in ("input", "accepted", "rejected", "quarantine",
                                            "deadletter")),
                      r["anchor_status"] or "-")
    out.print(table)
    # full ids, one per line: they are what `proof`, `verify` and block explorers take
    for r in rows:
        out.print(f"{r['seq']:>4} batch {r['batch_id']}", highlight=False, soft_wrap=True)
        out.print(f"     root  {r['merkle_root'] or '- (no accepted records)'}",
                  highlight=False, soft_wrap=True)
        if r["anchor_tx"]:
            out.print(f"     tx    {r['anchor_tx']}", highlight=False, soft_wrap=True)


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
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Table format: rows "
                                          "shown before '… N more rows'.")] = 40,
    max_width: Annotated[int, typer.Option("--max-width", min=4, help="Table format: "
                                           "characters shown per value.")] = 40,
) -> None:
    """Query committed batches with DuckDB SQL.

    Table output shows the first rows; csv / json print every row, nested columns as JSON.
    """
    import duckdb

    from datanet.store.query import connect

    try:
        con = connect(path, as_of=as_of)
        if format is Format.table:
            rel = con.sql(query)  # lazy for a SELECT: limit and count run in DuckDB
            if rel is None:  # a statement without a result (SET, CREATE VIEW …)
                return
            head = rel.limit(max_rows + 1).fetchall()
            total = (rel.aggregate("count(*)").fetchall()[0][0] if len(head) > max_rows
                     else len(head))
            _print_sql_table(list(rel.columns), [str(t) for t in rel.types], head[:max_rows],
                             total, max_width)
            return
        cur = con.execute(query)  # once: a script's side effects must not run twice
        desc = cur.description or []
        chunks = iter(lambda: cur.fetchmany(10_000), [])
        _write_sql_rows(format, [d[0] for d in desc], [str(d[1]) for d in desc], chunks)
    except (DatanetError, duckdb.Error) as exc:
        fail(exc)


def _unique_names(cols: list[str]) -> list[str]:
    """JSON object keys for result columns: a repeated name gets ``_2``, ``_3`` … (``SELECT 1
    AS a, 2 AS a`` keeps both values)."""
    seen: dict[str, int] = {}
    names = []
    taken = set(cols)
    for c in cols:
        n = seen.get(c, 0) + 1
        seen[c] = n
        name = c
        while n > 1 and (name := f"{c}_{n}") in taken:
            n += 1
        taken.add(name)
        names.append(name)
    return names


def _write_sql_rows(format: Format, cols: list[str], types: list[str], chunks) -> None:
    from datanet.cli._output import csv_cell, iter_json_array

    if format is Format.json:
        for piece in iter_json_array(_unique_names(cols), chunks):
            sys.stdout.write(piece)
        return
    import csv

    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(cols)
    plain = ("VARCHAR", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "BOOLEAN",
             "UBIGINT", "UINTEGER", "HUGEINT")
    convert = [i for i, t in enumerate(types) if t not in plain]
    for rows in chunks:
        if convert:
            rows = [list(r) for r in rows]
            for r in rows:
                for i in convert:
                    r[i] = csv_cell(r[i])
        w.writerows(rows)


def _fit_widths(natural: list[int], minimum: list[int], total: int, gap: int) -> list[int]:
    """Column widths for ``total`` characters: the leading columns whose minimums fit, each
    grown towards its natural width up to a common cap (widest columns are cut first)."""
    n, used = 0, 0
    while n < len(natural) and used + minimum[n] + (gap if n else 0) <= total:
        used += minimum[n] + (gap if n else 0)
        n += 1
    n = max(n, 1)
    avail = total - gap * (n - 1)

    def widths(cap: int) -> list[int]:
        return [min(natural[i], max(minimum[i], cap)) for i in range(n)]

    lo, hi = 0, max(natural[:n])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if sum(widths(mid)) <= avail else (lo, mid - 1)
    return widths(lo)


def _print_sql_table(cols: list[str], types: list[str], rows: list[tuple], total: int,
                     max_width: int) -> None:
    """A DuckDB-CLI-like table: one line per row (values cut, never wrapped), the columns that
    fit the terminal (then how many were left out), then the row count."""
    from rich import box

    from datanet.cli._output import cell_text

    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
               "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
    cells = [[cell_text(v, max_width) for v in r] for r in rows]
    natural = [max([min(len(c), max_width), *(len(r[i]) for r in cells)])
               for i, c in enumerate(cols)]
    widths = _fit_widths(natural, [min(n, max(6, min(len(c), 12))) for n, c in
                                   zip(natural, cols, strict=True)], out.width, gap=2)
    shown = len(widths)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    for c, t, w in zip(cols, types, widths, strict=False):
        table.add_column(escape(c), no_wrap=True, overflow="ellipsis", width=w,
                         justify="right" if t.startswith(numeric) else "left")
    for r in cells:
        table.add_row(*(escape(v) for v in r[:shown]))
    out.print(table)
    notes = [f"{total} row{'' if total == 1 else 's'}"]
    if total > len(rows):
        notes.append(f"{len(rows)} shown (… {total - len(rows)} more rows)")
    if shown < len(cols):
        rest = ", ".join(cols[shown:])
        rest = rest if len(rest) <= 60 else rest[:59] + "…"
        notes.append(f"{len(cols)} columns, {shown} shown ({rest} left out)")
    if total > len(rows) or shown < len(cols):
        notes.append("--max-rows / --max-width, or --format csv|json for everything")
    out.print("; ".join(notes), soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the core commands to the ``datanet`` app."""
    app.command("init")(init)
    app.command("run", context_settings={"allow_extra_args": True,
                                         "ignore_unknown_options": True})(run)
    app.command("status")(status)
    app.command("sql")(sql)
