"""Reward commands: ``datanet rewards compute|publish|proof|claim``.

Wired into the ``datanet`` typer app by :func:`register` as a command group; heavy imports
happen inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from datanet.cli._common import err as _err
from datanet.cli._common import fail as _fail
from datanet.cli._common import out as _out

__all__ = ["register"]

rewards_app = typer.Typer(help="Settle reward epochs, publish their roots, prove and claim.",
                          no_args_is_help=True)

_Path = Annotated[Path, typer.Argument(help="The datanet directory.")]
_Epoch = Annotated[int, typer.Option("--epoch", help="Epoch number (1, 2, ...).")]


def _pool(value: str) -> int:
    text = value.strip().replace("_", "")
    if not text.isdigit():
        raise typer.BadParameter(f"{value!r} must be a non-negative integer in the token's "
                                 "smallest unit (e.g. 1000000000000000000007)")
    return int(text)


@rewards_app.command("compute")
def compute(
    path: _Path,
    epoch: _Epoch,
    pool: Annotated[str, typer.Option("--pool", help="Pool in the token's smallest unit "
                                                     "(an integer).")],
    attributions: Annotated[Path | None, typer.Option(
        "--attributions", help="JSON lines of `datanet attribute --format json` (default: "
                               "the datanet's committed receipts, if any).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Compute and commit an epoch (a no-op if it is already committed with the same inputs)."""
    from datanet.errors import DatanetError
    from datanet.rewards.epoch import compute_epoch, read_attributions_file
    from datanet.store.layout import DatanetStore

    if fmt not in ("table", "json"):
        _fail(f"--format {fmt!r} must be 'table' or 'json'", 2)
    amount = _pool(pool)
    try:
        store = DatanetStore(path)
        receipts = source = None
        if attributions is not None:
            receipts, digest = read_attributions_file(attributions)
            source = f"file sha256:{digest}"
        settlement, created = compute_epoch(store, epoch, amount, attributions=receipts,
                                            attributions_source=source)
    except (DatanetError, OSError) as exc:
        _fail(exc)
    _err.print(f"epoch {epoch} {'committed' if created else 'already committed (same inputs)'}"
               f": root {settlement.root}, {len(settlement.allocations)} accounts")
    if fmt == "json":
        typer.echo(json.dumps(settlement.summary()))
        return
    from rich.table import Table

    table = Table("account", "words", "usage", "amount", "cumulative")
    for acc, words, usage, amt, cum in settlement.allocations:
        table.add_row(acc, str(words), str(usage), str(amt), str(cum))
    _out.print(table)
    _out.print(f"epoch {settlement.epoch} pool {settlement.pool} root {settlement.root}",
               soft_wrap=True)


@rewards_app.command("publish")
def publish(
    path: _Path,
    epoch: _Epoch,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Send and return without "
                                          "waiting for confirmations (resume later).")] = False,
) -> None:
    """Set the epoch's root on-chain through the outbox (resumable; one transaction per epoch)."""
    from datanet.errors import DatanetError
    from datanet.rewards.chain import publish_epoch
    from datanet.store.layout import DatanetStore

    try:
        state = publish_epoch(DatanetStore(path), epoch, wait=not no_wait)
    except DatanetError as exc:
        _fail(exc)
    _out.print(f"epoch {epoch}: {state.status} root {state.root} contract {state.contract} "
               f"tx {state.tx_hash or '-'} block {state.block_number or '-'} "
               f"gas {state.gas_used or '-'}", soft_wrap=True)


@rewards_app.command("proof")
def proof(
    path: _Path,
    account: Annotated[str, typer.Argument(help="0x address of the account.")],
    epoch: _Epoch,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write the bundle here.")] = None,
) -> None:
    """Claim bundle (JSON) of an account: root, leaf value, proof, leaf encoding, contract."""
    from datanet.errors import DatanetError
    from datanet.rewards.chain import proof_bundle
    from datanet.store.layout import DatanetStore

    try:
        bundle = proof_bundle(DatanetStore(path), epoch, account)
    except DatanetError as exc:
        _fail(exc)
    text = json.dumps(bundle, indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        _err.print(f"wrote {output} (cumulative {bundle['cumulative']}, root {bundle['root']})")
    else:
        typer.echo(text)


@rewards_app.command("claim")
def claim(
    bundle_file: Annotated[Path, typer.Argument(help="A bundle from `datanet rewards proof`.")],
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Private key file (0x-hex or encrypted keystore); default "
                           "$DATANET_PRIVATE_KEY. Never printed.")] = None,
    rpc_url: Annotated[str | None, typer.Option(
        "--rpc-url", help="JSON-RPC URL (default $DATANET_RPC_URL).")] = None,
    datanet: Annotated[Path | None, typer.Option(
        "--datanet", help="Datanet directory whose embedded chain to use.")] = None,
) -> None:
    """Send the claim: pays cumulative minus what the account already claimed."""
    from datanet.errors import DatanetError
    from datanet.keys import load_private_key
    from datanet.rewards.chain import claim_client, send_claim
    from datanet.store.layout import DatanetStore

    try:
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
        url = rpc_url or (None if datanet else os.environ.get("DATANET_RPC_URL"))
        client = claim_client(load_private_key(key_file), rpc_url=url,
                              store=DatanetStore(datanet) if datanet else None)
        result = send_claim(client, bundle)
    except (DatanetError, OSError, json.JSONDecodeError) as exc:
        _fail(exc)
    _out.print(f"claimed {result.amount} for {result.account} in tx {result.tx_hash} "
               f"(gas {result.gas_used})", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``rewards`` command group to the ``datanet`` app."""
    app.add_typer(rewards_app, name="rewards")
