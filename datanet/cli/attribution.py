"""Attribution commands: ``datanet attribute``, ``index``, ``receipt-proof`` and ``serve``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from datanet.cli._common import err, fail, out
from datanet.errors import DatanetError
from datanet.store.atomic import write_atomic

__all__ = ["register", "read_outputs"]


class Format(StrEnum):
    table = "table"
    json = "json"


def read_outputs(sources: list[str]) -> Iterator[dict[str, Any]]:
    """Model outputs ``{"id", "text", "model"?}`` from JSONL files (``-``: stdin), in order."""
    for src in sources:
        fh = sys.stdin if src == "-" else open(src, encoding="utf-8")
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise DatanetError(f"{src}:{n}: not a JSON object ({exc})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise DatanetError(f'{src}:{n}: expected {{"id": str, "text": str, '
                                       f'"model": str (optional)}}')
                try:
                    obj["text"].encode("utf-8")
                except UnicodeEncodeError:
                    raise DatanetError(f"{src}:{n}: text is not valid Unicode (lone "
                                       "surrogate)") from None
                if "model" in obj and obj["model"] is not None and not isinstance(
                        obj["model"], str):
                    raise DatanetError(f"{src}:{n}: model must be a string")
                yield {"id": str(obj.get("id", f"{src}:{n}")), "text": obj["text"],
                       "model": obj.get("model")}
        finally:
            if fh is not sys.stdin:
                fh.close()


def _table(results: list[Any], top: int = 5) -> None:
    from rich.markup import escape
    from rich.table import Table

    for r in results:
        t = Table(title=f"{escape(r.id)}: {1 - r.unattributed:.1%} attributed "
                        f"(snapshot batch {r.snapshot.seq}, {r.tokens} tokens)")
        for col in ("contributor", "contribution", "weight", "matched text"):
            t.add_column(col, overflow="fold")
        for a in r.attributions[:top]:
            text = " … ".join(r.text[s:e] for s, e in a.spans)
            t.add_row(a.contributor, a.contribution_id[:18] + "…", f"{a.weight:.4f}",
                      escape(text[:160] + ("…" if len(text) > 160 else "")))
        if len(r.attributions) > top:
            t.add_row("…", f"{len(r.attributions) - top} more", "", "")
        out.print(t)


def attribute(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    outputs: Annotated[list[str], typer.Argument(
        help='JSONL files of model outputs {"id", "text", "model"?}; - for stdin.')],
    as_of: Annotated[int | None, typer.Option(help="Attribute against batches up to this "
                                                   "sequence number.")] = None,
    min_span: Annotated[int | None, typer.Option(
        help="Shortest credited span in tokens (default: [attribution] min_span).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table for people, json: one "
                                                         "object per output.")] = Format.table,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write results here.")] = None,
    record: Annotated[bool, typer.Option(help="Commit the results as receipts (and anchor "
                                              "their root).")] = False,
    anchor: Annotated[bool, typer.Option("--anchor/--no-anchor",
                                         help="With --record: anchor the receipts root.")
                      ] = True,
) -> None:
    """Trace model outputs to the accepted contributions they reproduce."""
    from datanet.attribution.match import AttributionIndex
    from datanet.attribution.receipts import anchor_receipts, record_receipts

    try:
        index = AttributionIndex(path, as_of=as_of)
        results = index.attribute_many(read_outputs(outputs), min_span=min_span)
    except (DatanetError, OSError) as exc:
        fail(exc)
    if fmt is Format.json:
        text = "".join(json.dumps(r.to_json()) + "\n" for r in results)
        if output:
            write_atomic(output, text)
        else:
            sys.stdout.write(text)
    else:
        if output:
            write_atomic(output, "".join(json.dumps(r.to_json()) + "\n" for r in results))
        _table(results)
    if record:
        try:
            done = record_receipts(index.store, results)
            err.print(done.message)
            if anchor:
                for st in anchor_receipts(index.store):
                    err.print(f"anchored receipts batch {st.batch_id}: {st.status}")
        except DatanetError as exc:
            fail(exc)


def index(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    as_of: Annotated[int | None, typer.Option(help="Only batches up to this one.")] = None,
) -> None:
    """Build the attribution index shards of batches committed without one."""
    from datanet.attribution.index import index_missing
    from datanet.store.layout import DatanetStore

    try:
        built = index_missing(DatanetStore(path), as_of=as_of)
    except (DatanetError, OSError) as exc:
        fail(exc)
    for seq, entry in built:
        err.print(f"batch {seq}: {entry.path} ({entry.rows} n-grams, {entry.bytes} bytes)")
    err.print(f"indexed {len(built)} batch(es)" if built else "every batch has its shard")


def receipt_proof(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    receipt: Annotated[str, typer.Argument(help="0x-hex receipt id.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write the bundle here.")] = None,
) -> None:
    """Inclusion proof bundle (JSON) of a committed attribution receipt."""
    from datanet.attribution.receipts import receipt_proof as make
    from datanet.store.layout import DatanetStore

    try:
        bundle = make(DatanetStore(path), receipt)
    except DatanetError as exc:
        fail(exc)
    text = json.dumps(bundle, indent=1)
    if output:
        write_atomic(output, text + "\n")
        err.print(f"wrote {output} (receipts batch {bundle['receipt_seq']}, root "
                  f"{bundle['root']}, anchor {'yes' if bundle['anchor'] else 'not yet'})")
    else:
        sys.stdout.write(text + "\n")


def serve(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    record: Annotated[bool, typer.Option(help="Commit every attribution as a receipt.")
                      ] = False,
    record_interval: Annotated[float, typer.Option(
        help="Seconds between receipt commits when recording.")] = 10.0,
    anchor: Annotated[bool, typer.Option("--anchor/--no-anchor",
                                         help="Anchor recorded receipts.")] = True,
    reload_interval: Annotated[float, typer.Option(
        help="Seconds between checks for a newly committed batch.")] = 1.0,
) -> None:
    """HTTP attribution service: POST /attribute, GET /health; follows new batches."""
    from datanet.attribution.service import ServeConfig
    from datanet.attribution.service import serve as run

    try:
        config = ServeConfig(host=host, port=port, record=record,
                             record_interval=record_interval, anchor=anchor,
                             reload_interval=reload_interval)
        err.print(f"serving {path} on http://{host}:{port} (POST /attribute, GET /health)")
        run(path, config)
    except (DatanetError, OSError) as exc:
        fail(exc)


def register(app: typer.Typer) -> None:
    """Add the attribution commands to the datanet CLI."""
    app.command("attribute")(attribute)
    app.command("index")(index)
    app.command("receipt-proof")(receipt_proof)
    app.command("serve")(serve)
