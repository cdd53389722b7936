"""Signature and vote commands: ``datanet sign``, ``vote-sign`` and ``vote``.

Keys come from ``--key-file`` (a file holding a 0x-hex private key, or an encrypted JSON
keystore whose password is in ``DATANET_KEY_PASSWORD``) or from ``DATANET_PRIVATE_KEY``.
Keys are never printed or written anywhere.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import anchor_committed, datanet_id_arg, err, fail, out
from datanet.errors import DatanetError
from datanet.keys import KEY_ENV, load_private_key

__all__ = ["register"]

class Verdict(StrEnum):
    accept = "accept"
    reject = "reject"
    abstain = "abstain"


def register(app: typer.Typer) -> None:
    """Add ``sign``, ``vote-sign`` and ``vote`` to the datanet CLI."""
    @app.command("sign")
    def sign(
        input: Annotated[Path, typer.Argument(help="Contributions file (JSONL, CSV, Parquet).",
                                              exists=True, dir_okay=False)],
        output: Annotated[Path, typer.Option("--output", "-o", help="Signed copy to write.")],
        datanet: Annotated[str, typer.Option(help="Datanet id, or its directory / spec.")],
        key_file: Annotated[Path | None, typer.Option(
            help=f"Private key file (hex or keystore); default ${KEY_ENV}.")] = None,
    ) -> None:
        """Sign every record with your key (EIP-191 over datanet id + content hash)."""
        from datanet.validators.signature import sign_file

        try:
            key = load_private_key(key_file)
            n = sign_file(input, output, key, datanet_id_arg(datanet))
        except (DatanetError, OSError) as exc:
            fail(exc)
        err.print(f"signed {n} record(s) → {output}")

    @app.command("vote-sign")
    def vote_sign(
        contribution_ids: Annotated[list[str] | None, typer.Argument(
            help="Contribution ids (0x…) to vote on.")] = None,
        datanet: Annotated[str, typer.Option(help="Datanet id, or its directory / spec.")] = "",
        verdict: Annotated[Verdict, typer.Option(help="Your verdict.")] = Verdict.accept,
        score: Annotated[float, typer.Option(min=0.0, max=1.0,
                                             help="Confidence 0..1.")] = 1.0,
        reason: Annotated[str, typer.Option(help="Reason code (snake_case).")] = "",
        ids_file: Annotated[Path | None, typer.Option(
            help="File with one contribution id per line.")] = None,
        output: Annotated[Path | None, typer.Option(
            "--output", "-o", help="Votes file to append to (default: stdout).")] = None,
        key_file: Annotated[Path | None, typer.Option(
            help=f"Private key file (hex or keystore); default ${KEY_ENV}.")] = None,
        timestamp: Annotated[int | None, typer.Option(
            help="Unix seconds (default: now).")] = None,
    ) -> None:
        """Create EIP-712 signed votes (JSON lines) for `datanet vote`."""
        from datanet.schemas.votes import SCORE_SCALE, vote_to_json
        from datanet.validators.external import sign_vote

        ids = list(contribution_ids or [])
        if ids_file is not None:
            ids += [x.strip() for x in ids_file.read_text(encoding="utf-8").splitlines()
                    if x.strip()]
        if not ids:
            fail(DatanetError("give contribution ids as arguments or with --ids-file"), 2)
        if not datanet:
            fail(DatanetError("--datanet is required (the id, or the datanet directory)"), 2)
        try:
            key = load_private_key(key_file)
            dn = datanet_id_arg(datanet)
            lines = [vote_to_json(sign_vote(key, datanet_id=dn, contribution_id=c,
                                            verdict=verdict.value,
                                            score=round(score * SCORE_SCALE), reason=reason,
                                            timestamp=timestamp)) for c in ids]
        except (DatanetError, ValueError, OSError) as exc:
            fail(exc)
        text = "".join(x + "\n" for x in lines)
        if output is None:
            sys.stdout.write(text)
        else:
            with open(output, "a", encoding="utf-8") as fh:
                fh.write(text)
            err.print(f"signed {len(lines)} vote(s) → {output}")

    @app.command("vote")
    def vote(
        path: Annotated[Path, typer.Argument(help="The datanet directory.")],
        votes: Annotated[list[Path], typer.Argument(help="Signed votes files (JSON lines).",
                                                    exists=True, dir_okay=False)],
        anchor: Annotated[bool, typer.Option("--anchor/--no-anchor",
                                             help="Anchor the new batch's root.")] = True,
    ) -> None:
        """Ingest signed votes; publish re-decided `needs_review` records in a new batch."""
        from rich.table import Table

        from datanet.store.layout import DatanetStore
        from datanet.validators.review import apply_votes

        try:
            store = DatanetStore(path)
            result = apply_votes(store, [str(v) for v in votes])
        except (DatanetError, OSError) as exc:
            fail(exc)
        table = Table(title="votes")
        table.add_column("status")
        table.add_column("count", justify="right")
        for status, n in result.statuses.items():
            if n:
                table.add_row(status, str(n))
        out.print(table)
        err.print(result.message)
        if anchor and result.committed and result.manifest.merkle_root:
            anchor_committed(store)
