"""``datanet validators``: the validators this installation knows (built-ins and plugins)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from datanet.cli._common import fail, out
from datanet.errors import DatanetError

__all__ = ["register"]


class ListFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


def validators(
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
) -> None:
    """List every validator with its kind, reason codes and config keys (defaults)."""
    from datanet.validators.registry import validator_rows, validators_markdown

    try:
        if format is ListFormat.markdown:
            sys.stdout.write(validators_markdown())
            return
        rows = validator_rows()
    except DatanetError as exc:
        fail(exc)
    if format is ListFormat.json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    for r in rows:
        origin = " (plugin)" if r["plugin"] else ""
        out.print(f"[bold]{r['name']}[/] {r['kind']}{origin}: {escape(r['summary'])}",
                  soft_wrap=True, highlight=False)
        out.print("  reasons: " + ", ".join(r["reason_codes"]), soft_wrap=True, markup=False,
                  highlight=False)
        keys = ", ".join(f"{k}={v}" for k, v in r["keys"].items())
        if keys:
            out.print(f"  keys: {keys}", soft_wrap=True, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``datanet validators`` to the app."""
    app.command("validators")(validators)
