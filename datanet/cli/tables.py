"""``datanet migrate``: build the Delta tables outside engines read for an existing datanet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import err, fail, out

__all__ = ["register"]


def migrate(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
) -> None:
    """Commit every committed batch missing from the Delta tables (accepted, rejected,
    quarantine, deadletter, votes, external_votes) by referencing the Parquet files the
    batches already hold: no data is rewritten, manifests and Merkle roots are untouched.
    Re-running it is a no-op."""
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore
    from datanet.store.tables import open_table, sync_tables, synced_seq, table_rows

    try:
        store = DatanetStore(path)
        with store.lock():
            manifests = store.manifests()
            added = sync_tables(store, manifests)
        for problem in store.problems:
            err.print(f"warning: {problem}", markup=False, highlight=False)
        for kind, n in added.items():
            dt = open_table(store, kind)
            out.print(f"{kind}: {n} batch{'es' if n != 1 else ''} added; table at batch "
                      f"{synced_seq(dt)}, Delta version {dt.version()}, "
                      f"{table_rows(dt):,} rows  {dt.table_uri}",
                      markup=False, highlight=False, soft_wrap=True)
    except (DatanetError, OSError) as exc:
        fail(exc)
    total = sum(added.values())
    err.print(f"migrated {len(manifests)} committed batches"
              + ("" if total else " (nothing to do: the tables were up to date)"),
              highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the ``datanet`` app."""
    app.command("migrate")(migrate)
