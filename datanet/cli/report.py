"""``datanet report``: a self-contained HTML report of one batch or of the whole datanet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import err, fail, out

__all__ = ["register"]


def report(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    batch: Annotated[int | None, typer.Option("--batch", help="Report on batch SEQ only "
                                              "(default: the whole datanet).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write "
                                                "(default: PATH/reports/batch-SEQ.html or "
                                                "PATH/reports/datanet.html).")] = None,
) -> None:
    """Write a self-contained HTML report of a batch or of the whole datanet (opens offline).

    Funnel, votes and reasons, scores, duplicates, contributors, dead-letter.
    """
    from datanet.errors import DatanetError
    from datanet.report import write_report

    try:
        with err.status("writing the report…"):
            target = write_report(path, batch=batch, output=output)
    except (DatanetError, OSError) as exc:
        fail(exc)
    out.print(str(target), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``datanet`` app."""
    app.command("report")(report)
