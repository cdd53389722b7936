"""``datanet export``: a consolidated snapshot for consumers (Parquet, JSON lines, HF folder)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import err, fail, out

__all__ = ["register"]


class ExportFormat(StrEnum):
    parquet = "parquet"
    jsonl = "jsonl"
    hf = "hf"


def export(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    dest: Annotated[Path, typer.Argument(help="File to write (parquet, jsonl) or folder (hf).")],
    as_of: Annotated[int | None, typer.Option("--as-of", help="Snapshot as after batch SEQ "
                                              "(default: every committed batch).")] = None,
    format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.parquet,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace DEST if it "
                                            "exists.")] = False,
) -> None:
    """Export the accepted records as one snapshot (Parquet, JSON lines or an HF dataset).

    The licence, datanet id, batch roots and anchors go in the file metadata; hf writes a
    folder `datasets.load_dataset` reads, with a dataset card.
    """
    from datanet.errors import DatanetError
    from datanet.store.export import export_snapshot

    try:
        with err.status(f"exporting to {dest}…"):
            res = export_snapshot(path, dest, as_of=as_of, format=format.value,
                                  overwrite=overwrite)
    except (DatanetError, OSError) as exc:
        fail(exc)
    err.print(f"exported {res.rows:,} accepted records of batches 1–{res.metadata['as_of']} "
              f"({res.metadata['license']}) as {res.format}:", highlight=False)
    for f in res.files:
        out.print(str(f), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``datanet`` app."""
    app.command("export")(export)
