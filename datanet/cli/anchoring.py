"""Anchoring commands: ``anchor``, ``proof``, ``verify``, ``verify-history``.

Wired into the ``datanet`` typer app by :func:`register`; heavy imports happen inside the
commands so ``datanet --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import err as _err
from datanet.cli._common import fail as _fail
from datanet.cli._common import out as _out

__all__ = ["register"]


def anchor(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    no_wait: Annotated[bool, typer.Option("--no-wait",
                                          help="Send and return without waiting for "
                                               "confirmations (resume later).")] = False,
) -> None:
    """Anchor (or resume anchoring) every committed batch that is not anchored yet."""
    from datanet.anchoring.outbox import anchor_pending
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    try:
        states = anchor_pending(DatanetStore(path), wait=not no_wait)
    except DatanetError as exc:
        _fail(exc)
    if not states:
        _err.print("nothing to anchor (no committed batch with accepted records, or "
                   "anchoring disabled)")
    for s in states:
        _out.print(f"batch {s.seq} {s.batch_id}: {s.status} root {s.root} "
                   f"tx {s.tx_hash or '-'} block {s.block_number if s.block_number else '-'}",
                   soft_wrap=True)


def proof(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    contribution_id: Annotated[str | None, typer.Argument(
        help="0x-hex contribution id.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write the bundle here.")] = None,
    receipt: Annotated[str | None, typer.Option(
        help="Prove an attribution receipt (0x-hex receipt id) instead.")] = None,
) -> None:
    """Inclusion proof bundle (JSON) of an accepted contribution (or, with --receipt, of an
    attribution receipt)."""
    from datanet.anchoring.proofs import make_proof_bundle
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    if (contribution_id is None) == (receipt is None):
        _fail("give a contribution id, or --receipt ID", 2)
    if receipt is not None:
        from datanet.cli.attribution import receipt_proof

        receipt_proof(path, receipt, output)
        return
    try:
        bundle = make_proof_bundle(DatanetStore(path), contribution_id)
    except DatanetError as exc:
        _fail(exc)
    text = json.dumps(bundle, indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        _err.print(f"wrote {output} (batch {bundle['seq']}, root {bundle['root']}, "
                   f"anchor {'yes' if bundle['anchor'] else 'not yet'})")
    else:
        _out.print_json(text)


def verify(
    bundle: Annotated[Path, typer.Argument(help="A proof bundle from `datanet proof`.")],
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the anchor "
                                                          "chain for the on-chain check.")] = None,
    datanet: Annotated[Path | None, typer.Option("--datanet", help="Check on the chain of "
                                                 "this datanet (embedded or configured).")
                       ] = None,
) -> None:
    """Check a proof bundle off-chain, and on-chain with --rpc or --datanet. Exit 1 if bad."""
    from datanet.anchoring.proofs import verify_bundle
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    try:
        store = DatanetStore(datanet) if datanet else None
        result = verify_bundle(bundle, rpc=rpc, store=store)
    except (DatanetError, OSError, ValueError) as exc:
        _fail(exc)
    for c in result.checks:
        mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
        _out.print(f"{mark} {c.name}: {c.detail}", soft_wrap=True)
    where = {None: "not checked (give --rpc or --datanet)", True: "valid", False: "INVALID"}
    _out.print(f"off-chain: {'valid' if result.offchain else 'INVALID'}; "
               f"on-chain: {where[result.onchain]}")
    if not result.ok:
        raise typer.Exit(1)


def verify_history(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
) -> None:
    """Check every batch's tree against its manifest root, the prevRoot chain and anchors."""
    from datanet.anchoring.history import verify_history as check
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    try:
        problems, lines = check(DatanetStore(path))
    except DatanetError as exc:
        _fail(exc)
    for line in lines:
        _out.print(line, soft_wrap=True)
    for p in problems:
        _out.print(f"[red]FAIL[/] {p}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    _out.print("history valid")


def register(app: typer.Typer) -> None:
    """Add the anchoring commands to the ``datanet`` app."""
    app.command("anchor")(anchor)
    app.command("proof")(proof)
    app.command("verify")(verify)
    app.command("verify-history")(verify_history)
