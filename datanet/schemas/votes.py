"""Signed messages of datanet: contributor signatures (EIP-191) and validator votes (EIP-712).

A contributor signs, with ``personal_sign`` (EIP-191 version ``0x45``), the canonical text
:func:`contribution_message` over the datanet id and the record's ``content_hash`` (keccak256
of the normalised text), so a wallet shows what is being signed and any change to the text
changes the hash and breaks the signature.

An external validator signs a ``Vote`` as EIP-712 typed data (:data:`VOTE_TYPES`, domain
:data:`VOTE_DOMAIN`). The vote names the datanet, so a vote replayed into another datanet does
not verify there. Votes travel as JSON lines (:func:`vote_to_json`) and are kept, with the
outcome of their verification, in :data:`EXTERNAL_VOTE_SCHEMA` tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from datanet.schemas.contribution import TIMESTAMP, VERDICTS

__all__ = [
    "contribution_message",
    "VOTE_DOMAIN",
    "VOTE_TYPES",
    "SCORE_SCALE",
    "SignedVote",
    "vote_typed_data",
    "vote_to_json",
    "vote_from_json",
    "EXTERNAL_VOTE_SCHEMA",
    "VOTE_STATUSES",
]


def contribution_message(datanet_id: str, content_hash: str) -> str:
    """The text a contributor signs with EIP-191 ``personal_sign`` for one record."""
    return f"datanet contribution\ndatanet: {datanet_id}\ncontent_hash: {content_hash.lower()}"


#: EIP-712 domain of every datanet vote. The datanet is in the message, not the domain, so a
#: wallet shows it; chain and contract are left out: a vote is about data, not a chain.
VOTE_DOMAIN: dict[str, Any] = {"name": "datanet", "version": "1"}

#: EIP-712 types of a vote. ``score`` is in basis points (0..10000) because EIP-712 has no
#: floats; ``timestamp`` in Unix seconds.
VOTE_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
    ],
    "Vote": [
        {"name": "validator", "type": "address"},
        {"name": "datanet", "type": "string"},
        {"name": "contribution", "type": "bytes32"},
        {"name": "verdict", "type": "string"},
        {"name": "score", "type": "uint16"},
        {"name": "reason", "type": "string"},
        {"name": "timestamp", "type": "uint64"},
    ],
}

#: Basis points per 1.0 of score.
SCORE_SCALE = 10_000


@dataclass(frozen=True)
class SignedVote:
    """One external vote as submitted: the signed fields and the 65-byte signature (hex)."""

    validator: str
    datanet: str
    contribution_id: str
    verdict: str
    score: int
    reason: str
    timestamp: int
    signature: str

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``Vote`` message of this vote."""
        return {
            "validator": self.validator,
            "datanet": self.datanet,
            "contribution": self.contribution_id,
            "verdict": self.verdict,
            "score": self.score,
            "reason": self.reason,
            "timestamp": self.timestamp,
        }


def vote_typed_data(message: Mapping[str, Any]) -> dict[str, Any]:
    """The full EIP-712 typed-data document of a ``Vote`` message (for eth-account / wallets)."""
    return {
        "types": VOTE_TYPES,
        "primaryType": "Vote",
        "domain": VOTE_DOMAIN,
        "message": dict(message),
    }


def vote_to_json(vote: SignedVote) -> str:
    """One JSON line of a votes file (``score`` in basis points, as signed)."""
    return json.dumps(
        {
            "validator": vote.validator,
            "datanet": vote.datanet,
            "contribution_id": vote.contribution_id,
            "verdict": vote.verdict,
            "score": vote.score,
            "reason": vote.reason,
            "timestamp": vote.timestamp,
            "signature": vote.signature,
        },
        sort_keys=True,
    )


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "validator": str,
    "datanet": str,
    "contribution_id": str,
    "verdict": str,
    "score": int,
    "reason": str,
    "timestamp": int,
    "signature": str,
}


def vote_from_json(obj: Any) -> SignedVote:
    """Parse one votes-file object; raise ``ValueError`` naming the bad field."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"a vote must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown vote field {unknown[0]!r}; known: {', '.join(_FIELDS)}")
    values: dict[str, Any] = {}
    for name, tp in _FIELDS.items():
        value = obj.get(name, "" if name == "reason" else None)
        if not isinstance(value, tp) or isinstance(value, bool):
            raise ValueError(f"vote field {name!r}={value!r} must be {tp.__name__}")
        values[name] = value
    if values["verdict"] not in VERDICTS:
        raise ValueError(f"vote field 'verdict'={values['verdict']!r} must be one of "
                         f"{', '.join(VERDICTS)}")
    if not 0 <= values["score"] <= SCORE_SCALE:
        raise ValueError(f"vote field 'score'={values['score']} must be between 0 and "
                         f"{SCORE_SCALE} (basis points)")
    if not 0 <= values["timestamp"] < 2**64:
        raise ValueError(f"vote field 'timestamp'={values['timestamp']} must be Unix seconds")
    for name, n in (("validator", 20), ("contribution_id", 32), ("signature", 65)):
        v = values[name]
        try:
            ok = v.startswith("0x") and len(bytes.fromhex(v[2:])) == n
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"vote field {name!r}={v!r} must be 0x-hex of {n} bytes")
    values["validator"] = values["validator"].lower()
    values["contribution_id"] = values["contribution_id"].lower()
    return SignedVote(**values)


#: Statuses of an ingested external vote: ``counted`` or the reason it was not counted.
VOTE_STATUSES = (
    "counted",
    "malformed_vote",
    "wrong_datanet",
    "bad_signature",
    "unknown_validator",
    "unknown_contribution",
    "already_decided",
    "duplicate_vote",
)

#: Every external vote ever submitted, with its verification outcome (the audit trail behind
#: the ``votes`` rows that external validators contribute). ``vote_id`` is the EIP-712 digest
#: of the vote as submitted (or keccak256 of the raw line when it could not be parsed);
#: ``weight`` the registry weight a counted vote carried, 0 otherwise.
EXTERNAL_VOTE_SCHEMA = pa.schema(
    [
        pa.field("vote_id", pa.string(), nullable=False),
        pa.field("contribution_id", pa.string(), nullable=True),
        pa.field("validator", pa.string(), nullable=True),
        pa.field("datanet", pa.string(), nullable=True),
        pa.field("verdict", pa.string(), nullable=True),
        pa.field("score", pa.float64(), nullable=True),
        pa.field("reason", pa.string(), nullable=True),
        pa.field("timestamp", TIMESTAMP, nullable=True),
        pa.field("signature", pa.string(), nullable=True),
        pa.field("status", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=True),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
    ]
)
