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
from datanet.cli._output import OutFormat, anchor_json, print_json

_FORMAT = typer.Option("--format", "-f", help="Text, or one JSON document on stdout.")

__all__ = ["register"]


def anchor(
    path: Annotated[Path, typer.Argument(help="The datanet directory.")],
    no_wait: Annotated[bool, typer.Option("--no-wait",
                                          help="Send and return without waiting for "
                                               "confirmations (resume later).")] = False,
    format: Annotated[OutFormat, _FORMAT] = OutFormat.table,
) -> None:
    """Anchor (or resume anchoring) every committed batch that is not anchored yet."""
    from datanet.anchoring.outbox import anchor_pending
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    try:
        states = anchor_pending(DatanetStore(path), wait=not no_wait)
    except DatanetError as exc:
        _fail(exc)
    if format is OutFormat.json:
        print_json([anchor_json(s) for s in states])
        return
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
    """Inclusion proof bundle (JSON) of an accepted contribution or, with --receipt, a receipt.
    """
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
        store = DatanetStore(path)
        bundle = make_proof_bundle(store, contribution_id)
    except DatanetError as exc:
        why = _why_not_accepted(path, contribution_id)
        _fail("\n".join([str(exc), *why]))
    text = json.dumps(bundle, indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        _err.print(f"wrote {output} (batch {bundle['seq']}, root {bundle['root']}, "
                   f"anchor {'yes' if bundle['anchor'] else 'not yet'})")
    else:
        _out.print_json(text)


def _why_not_accepted(path: Path, contribution_id: str) -> list[str]:
    """Why a record has no proof: it was rejected or is quarantined (its reasons and the
    votes carrying them). Empty when the record is unknown or the lookup fails."""
    from datanet.errors import DatanetError
    from datanet.store.query import connect, contribution_state

    try:
        st = contribution_state(connect(path), contribution_id)
    except (DatanetError, OSError):
        return []
    if st is None:
        return []
    what = "rejected" if st.state == "rejected" else "quarantined (needs review)"
    lines = [f"it was {what} in batch {st.seq} ({st.source}): reasons "
             f"{', '.join(st.reasons) or 'none'}"]
    for v in st.votes:
        extra = "".join(f" {k} {x}" for k, x in (("score", v.score), ("details", v.details))
                        if x is not None)
        lines.append(f"  {v.validator}: {v.verdict} {v.reason or ''}{extra}")
    return lines


def verify(
    bundle: Annotated[Path, typer.Argument(help="A proof bundle from `datanet proof`.")],
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the anchor "
                                                          "chain for the on-chain check.")] = None,
    datanet: Annotated[Path | None, typer.Option("--datanet", help="Check on the chain of "
                                                 "this datanet (embedded or configured).")
                       ] = None,
    format: Annotated[OutFormat, _FORMAT] = OutFormat.table,
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
    if format is OutFormat.json:
        print_json({"ok": result.ok, "offchain": result.offchain, "onchain": result.onchain,
                    "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                               for c in result.checks]})
        if not result.ok:
            raise typer.Exit(1)
        return
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
    data: Annotated[bool, typer.Option("--data/--no-data",
                                       help="Also re-hash every committed file and recompute "
                                            "every accepted row's content hash, id, leaf and "
                                            "batch root (default; --no-data checks only "
                                            "trees, the root chain and anchors).")] = True,
    format: Annotated[OutFormat, _FORMAT] = OutFormat.table,
) -> None:
    """Check a datanet end to end; exit 1 naming batch, file and row on any mismatch.

    Checks every batch's tree against its manifest root, the prevRoot chain, the on-chain
    anchors and (unless --no-data) the committed files and accepted rows themselves.
    """
    from datanet.anchoring.history import verify_history as check
    from datanet.errors import DatanetError
    from datanet.store.layout import DatanetStore

    try:
        problems, lines = check(DatanetStore(path), data=data)
    except DatanetError as exc:
        _fail(exc)
    if format is OutFormat.json:
        print_json({"ok": not problems, "problems": problems, "checked": lines})
        if problems:
            raise typer.Exit(1)
        return
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
