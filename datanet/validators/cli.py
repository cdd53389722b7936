"""CLI commands for signatures and votes: ``datanet sign``, ``vote-sign`` and ``vote``.

Keys come from ``--key-file`` (a file holding a 0x-hex private key, or an encrypted JSON
keystore whose password is in ``DATANET_KEY_PASSWORD``) or from ``DATANET_PRIVATE_KEY``.
Keys are never printed or written anywhere.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from datanet.errors import DatanetError, SignatureError

__all__ = ["register", "load_private_key", "sign_file"]

KEY_ENV = "DATANET_PRIVATE_KEY"
PASSWORD_ENV = "DATANET_KEY_PASSWORD"


def load_private_key(key_file: Path | None) -> bytes:
    """The signing key from ``key_file`` or ``$DATANET_PRIVATE_KEY``."""
    from eth_account import Account

    if key_file is not None:
        try:
            raw = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SignatureError(f"--key-file {key_file}: cannot be read ({exc})") from None
        if raw.startswith("{"):
            password = os.environ.get(PASSWORD_ENV)
            if password is None:
                raise SignatureError(f"--key-file {key_file} is an encrypted keystore; set "
                                     f"{PASSWORD_ENV} to its password")
            try:
                return bytes(Account.decrypt(json.loads(raw), password))
            except (ValueError, KeyError) as exc:
                raise SignatureError(f"--key-file {key_file}: cannot decrypt ({exc})") from None
        source = f"--key-file {key_file}"
    else:
        raw = os.environ.get(KEY_ENV, "").strip()
        if not raw:
            raise SignatureError(f"no signing key: pass --key-file FILE or set {KEY_ENV}")
        source = KEY_ENV
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SignatureError(f"{source} must hold a 32-byte private key as 0x-hex "
                             "(or an encrypted JSON keystore)")
    return key


def _datanet_id(value: str) -> str:
    """``--datanet`` is an id, or the path of a datanet directory / spec file."""
    p = Path(value)
    spec_file = p / "datanet.toml" if p.is_dir() else p
    if spec_file.is_file():
        from datanet.schemas.spec import load_spec

        return load_spec(spec_file).id
    return value


def sign_file(input_path: Path, output_path: Path, key: bytes, datanet_id: str) -> int:
    """Sign every record of a JSONL / CSV / Parquet contributions file; returns the count.

    A record without ``contributor`` gets the signer's address; a record naming another
    contributor is an error (nobody can sign for someone else).
    """
    from eth_account import Account

    from datanet.privacy.normalise import normalise_text
    from datanet.schemas.ids import content_hash
    from datanet.validators.signature import sign_contribution

    address = Account.from_key(key).address

    def signed(obj: dict, where: str) -> dict:
        text = obj.get("text")
        if not isinstance(text, str):
            raise SignatureError(f"{where}: record has no text to sign")
        who = obj.get("contributor") or address
        if not isinstance(who, str) or who.lower() != address.lower():
            raise SignatureError(f"{where}: contributor {who!r} is not the key's address "
                                 f"{address}; sign only your own records")
        h = content_hash(normalise_text(text))
        return {**obj, "contributor": who, "signature": sign_contribution(key, datanet_id, h)}

    name = input_path.name.lower()
    n = 0
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(input_path)
        rows = [signed(r, f"{input_path}:{i}") for i, r in enumerate(table.to_pylist(), 1)]
        out = pa.Table.from_pylist(rows)
        pq.write_table(out, output_path)
        return len(rows)
    if name.endswith(".csv"):
        with open(input_path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [signed(r, f"{input_path}:{i}") for i, r in enumerate(reader, 2)]
            fields = list(reader.fieldnames or [])
        for extra in ("contributor", "signature"):
            if extra not in fields:
                fields.append(extra)
        with open(output_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)
    lines_out = []
    with open(input_path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SignatureError(f"{input_path}:{i}: not JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise SignatureError(f"{input_path}:{i}: a record must be a JSON object")
            lines_out.append(json.dumps(signed(obj, f"{input_path}:{i}"), ensure_ascii=False))
            n += 1
    output_path.write_text("".join(x + "\n" for x in lines_out), encoding="utf-8")
    return n


class Verdict(StrEnum):
    accept = "accept"
    reject = "reject"
    abstain = "abstain"


def register(app: typer.Typer) -> None:
    """Add ``sign``, ``vote-sign`` and ``vote`` to the datanet CLI."""
    from rich.console import Console

    console = Console(stderr=True)

    def fail(exc: Exception, code: int = 1) -> None:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code)

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
        try:
            key = load_private_key(key_file)
            n = sign_file(input, output, key, _datanet_id(datanet))
        except (DatanetError, OSError) as exc:
            fail(exc)
        console.print(f"signed {n} record(s) → {output}")

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
            dn = _datanet_id(datanet)
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
            console.print(f"signed {len(lines)} vote(s) → {output}")

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
        Console().print(table)
        console.print(result.message)
        if anchor and result.committed and result.manifest.merkle_root:
            from datanet import cli as main_cli

            main_cli._anchor(store)
