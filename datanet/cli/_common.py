"""What every command module shares: the two consoles, the one error helper, argument
resolvers, and the post-commit anchoring step.

Results go to stdout (``out``); progress, logs and errors to stderr (``err``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["err", "out", "ui", "fail", "datanet_id_arg", "anchor_committed"]

err = Console(stderr=True, soft_wrap=True)
out = Console()


class _Ui:
    """The global options of this invocation (set by the app callback)."""

    quiet = False
    verbose = 0
    debug = False


ui = _Ui()


def fail(exc: Exception | str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` (as text, not rich markup) and exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


def datanet_id_arg(value: str) -> str:
    """A ``--datanet`` value: an id, or the path of a datanet directory / spec file."""
    p = Path(value)
    spec_file = p / "datanet.toml" if p.is_dir() else p
    if spec_file.is_file():
        from datanet.schemas.spec import load_spec

        return load_spec(spec_file).id
    return value


def anchor_committed(store: DatanetStore) -> list:
    """Anchor every committed, unanchored batch (after a commit); print one line per batch
    (on stderr) and return the anchor states."""
    from datanet.anchoring.outbox import anchor_pending
    from datanet.errors import DatanetError

    try:
        with err.status("anchoring committed batches…"):
            states = anchor_pending(store)
    except DatanetError as exc:
        fail(exc)
    for st in states:
        err.print(f"anchored batch {st.batch_id}: {st.status}")
    return states
