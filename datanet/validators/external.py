"""External validator votes: EIP-712 signed votes, verified against the validator registry.

A votes file is JSON lines of :func:`~datanet.schemas.votes.vote_to_json` objects (a JSON
array of them also works). :func:`verify_votes` checks every vote in order and gives each one
a status (:data:`~datanet.schemas.votes.VOTE_STATUSES`); the first failing check wins:

``malformed_vote``       not JSON, missing / mistyped field, bad hex;
``wrong_datanet``        the vote names another datanet;
``bad_signature``        the signature does not recover the vote's validator (any tampered
                         field, or a vote replayed with its datanet changed, lands here);
``unknown_validator``    the signer is not in the registry;
``unknown_contribution`` no such record in this datanet;
``already_decided``      the record was already accepted or rejected;
``duplicate_vote``       this validator already voted on this record (earlier in the files,
                         or in a committed batch): the earliest vote counts;
``counted``              the vote joins the tally with the signer's registry weight.

:func:`to_policy_votes` turns the verified table into :data:`VOTE_SCHEMA` rows for the policy:
counted votes keep their verdict; the others become ``abstain`` rows whose reason is their
status, so the votes view shows why a vote did not count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.schemas.votes import (
    EXTERNAL_VOTE_SCHEMA,
    SCORE_SCALE,
    SignedVote,
    vote_from_json,
    vote_to_json,
    vote_typed_data,
)

__all__ = [
    "OPEN_STATUSES",
    "sign_vote",
    "recover_voter",
    "read_vote_lines",
    "verify_votes",
    "to_policy_votes",
    "counted_pairs",
]

#: Record statuses that still accept votes.
OPEN_STATUSES = frozenset({"needs_review", "pending"})


def _signable(message: Mapping[str, Any]) -> Any:
    from eth_account.messages import encode_typed_data

    return encode_typed_data(full_message=vote_typed_data(message))


def _digest(vote: SignedVote) -> bytes:
    from eth_hash.auto import keccak

    s = _signable(vote.message())
    return keccak(b"\x19" + s.version + s.header + s.body)


def _recover_digest(digest: bytes, signature: str) -> str | None:
    """Lowercase signer of a 32-byte digest from a 65-byte ``r ‖ s ‖ v`` signature."""
    from eth_keys import keys

    try:
        raw = bytearray(bytes.fromhex(signature.removeprefix("0x")))
        if len(raw) != 65:
            return None
        if raw[64] >= 27:
            raw[64] -= 27
        sig = keys.Signature(signature_bytes=bytes(raw))
        return sig.recover_public_key_from_msg_hash(digest).to_address().lower()
    except Exception:  # eth-keys raises several types for out-of-range r / s / v
        return None


def sign_vote(
    private_key: str | bytes,
    *,
    datanet_id: str,
    contribution_id: str,
    verdict: str,
    score: int = SCORE_SCALE,
    reason: str = "",
    timestamp: int | None = None,
) -> SignedVote:
    """Sign one vote with a local key (``datanet vote-sign``, tests)."""
    from eth_account import Account

    account = Account.from_key(private_key)
    unsigned = SignedVote(
        validator=account.address.lower(),
        datanet=datanet_id,
        contribution_id=contribution_id.lower(),
        verdict=verdict,
        score=score,
        reason=reason,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        signature="0x" + "00" * 65,
    )
    vote_from_json(json.loads(vote_to_json(unsigned)))  # same checks as a reader applies
    signed = account.sign_message(_signable(unsigned.message()))
    return SignedVote(**{**unsigned.__dict__, "signature": signed.signature.to_0x_hex()})


def recover_voter(vote: SignedVote) -> str | None:
    """Lowercase address that signed ``vote`` as submitted, or None if the signature is bad."""
    return _recover_digest(_digest(vote), vote.signature)


def read_vote_lines(paths: Iterable[str | Path]) -> Iterator[tuple[str, int, str]]:
    """``(source_file, line_number, raw_json)`` of every vote in JSONL or JSON-array files."""
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                items = None
            if isinstance(items, list):
                for i, item in enumerate(items, 1):
                    yield str(path), i, json.dumps(item)
                continue
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield str(path), i, line


def verify_votes(
    lines: Iterable[tuple[str, int, str]],
    *,
    datanet_id: str,
    registry: Mapping[str, float],
    status_of: Mapping[str, str],
    prior: Iterable[tuple[str, str]] = (),
) -> pa.Table:
    """Verify votes and give each a status (module docstring); one row per input line.

    ``registry``: lowercase address -> weight. ``status_of``: contribution id -> record status
    (``needs_review`` / ``pending`` accept votes; ``accepted`` / ``rejected`` do not).
    ``prior``: ``(validator, contribution_id)`` pairs already counted in committed batches.
    """
    from eth_hash.auto import keccak

    rows: list[dict[str, Any]] = []
    votes: list[SignedVote | None] = []
    for source_file, line_no, raw in lines:
        row: dict[str, Any] = {"source_file": source_file, "source_line": line_no,
                               "weight": 0.0}
        try:
            vote = vote_from_json(json.loads(raw))
        except (ValueError, json.JSONDecodeError) as exc:
            row.update(vote_id="0x" + keccak(raw.encode("utf-8")).hex(),
                       status="malformed_vote", message=str(exc)[:500])
            rows.append(row)
            votes.append(None)
            continue
        digest = _digest(vote)
        row.update(
            vote_id="0x" + digest.hex(), contribution_id=vote.contribution_id,
            validator=vote.validator, datanet=vote.datanet, verdict=vote.verdict,
            score=vote.score / SCORE_SCALE, reason=vote.reason or None,
            timestamp=vote.timestamp * 1_000_000, signature=vote.signature, message=None,
        )
        if vote.datanet != datanet_id:
            row["status"] = "wrong_datanet"
            row["message"] = f"vote is for datanet {vote.datanet!r}, not {datanet_id!r}"
        else:
            signer = _recover_digest(digest, vote.signature)
            if signer != vote.validator:
                row["status"] = "bad_signature"
                row["message"] = f"signature recovers {signer}, not {vote.validator}"
            elif signer not in registry:
                row["status"] = "unknown_validator"
            elif vote.contribution_id not in status_of:
                row["status"] = "unknown_contribution"
            elif status_of[vote.contribution_id] not in OPEN_STATUSES:
                row["status"] = "already_decided"
                row["message"] = f"record is {status_of[vote.contribution_id]}"
            else:
                row["status"] = "counted"
        rows.append(row)
        votes.append(vote)

    # Duplicates among the candidates: earliest (timestamp, vote_id) per (validator, record).
    seen = {(v.lower(), c.lower()) for v, c in prior}
    order = sorted(
        (i for i, r in enumerate(rows) if r["status"] == "counted"),
        key=lambda i: (rows[i]["timestamp"], rows[i]["vote_id"]),
    )
    for i in order:
        key = (rows[i]["validator"], rows[i]["contribution_id"])
        if key in seen:
            rows[i]["status"] = "duplicate_vote"
        else:
            seen.add(key)
            rows[i]["weight"] = float(registry[rows[i]["validator"]])
    return pa.Table.from_pylist(rows, schema=EXTERNAL_VOTE_SCHEMA)


def to_policy_votes(verified: pa.Table) -> pa.Table:
    """:data:`VOTE_SCHEMA` rows for every verified vote that names a record (see module doc)."""
    verified = verified.filter(pc.is_valid(verified.column("contribution_id")))
    status = verified.column("status").to_numpy(zero_copy_only=False)
    counted = status == "counted"
    verdict = np.where(counted, verified.column("verdict").to_numpy(zero_copy_only=False),
                       "abstain")
    reason = np.where(counted, verified.column("reason").to_numpy(zero_copy_only=False),
                      status)
    score = np.where(counted, verified.column("score").to_numpy(zero_copy_only=False), None)
    details = [
        json.dumps({"external": True, "status": s, "vote_id": v, "weight": w}, sort_keys=True)
        for s, v, w in zip(status, verified.column("vote_id").to_pylist(),
                           verified.column("weight").to_pylist(), strict=True)
    ]
    return pa.Table.from_arrays(
        [
            verified.column("contribution_id"),
            verified.column("validator"),
            pa.array(verdict.tolist(), pa.string()),
            pa.array(score.tolist(), pa.float64()),
            pa.array(reason.tolist(), pa.string()),
            pa.array(details, pa.string()),
        ],
        schema=VOTE_SCHEMA,
    )


def counted_pairs(votes: pa.Table) -> set[tuple[str, str]]:
    """``(validator, contribution_id)`` of counted external votes in a VOTE_SCHEMA table."""
    out: set[tuple[str, str]] = set()
    details = votes.column("details").to_pylist()
    for v, c, d in zip(votes.column("validator").to_pylist(),
                       votes.column("contribution_id").to_pylist(), details, strict=True):
        if d and '"external": true' in d and json.loads(d).get("status") == "counted":
            out.add((v, c))
    return out

