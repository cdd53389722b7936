"""Arrow schemas of contributions, dead-letter rows and votes.

Records travel through the pipeline as Arrow record batches of :data:`RECORD_SCHEMA` plus
the spec's extra typed fields; votes travel as :data:`VOTE_SCHEMA` tables.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "RECORD_SCHEMA",
    "DEADLETTER_SCHEMA",
    "VOTE_SCHEMA",
    "DECISION_SCHEMA",
    "TALLY_TYPE",
    "VERDICTS",
    "OUTCOMES",
    "record_schema",
    "INPUT_REQUIRED",
    "INPUT_OPTIONAL",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Fields every contribution carries. ``text`` is the original submitted text;
#: ``text_norm`` the normalised text that feeds content_hash and the validators (in memory
#: only, never written: it could hold PII that a redaction removed from ``text``).
RECORD_SCHEMA = pa.schema(
    [
        pa.field("contribution_id", pa.string(), nullable=False),
        pa.field("datanet", pa.string(), nullable=False),
        pa.field("contributor", pa.string(), nullable=False),
        pa.field("submitted_at", TIMESTAMP, nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_norm", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=True),
        pa.field("signature", pa.string(), nullable=True),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
    ]
)

#: Keys an input record must have, and optional ones.
INPUT_REQUIRED = ("contributor", "text")
INPUT_OPTIONAL = ("submitted_at", "metadata", "signature")

#: A line / row that could not become a record. ``raw_sha256`` identifies the raw bytes;
#: the raw content itself is never stored (it may hold PII).
DEADLETTER_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=True),
        pa.field("message", pa.string(), nullable=False),
        pa.field("raw_bytes", pa.int64(), nullable=False),
    ]
)

VERDICTS = ("accept", "reject", "abstain")

#: One vote of one validator on one record. ``details`` is a JSON object (or null) with
#: validator-specific evidence, e.g. the matched contribution id of a duplicate.
VOTE_SCHEMA = pa.schema(
    [
        pa.field("contribution_id", pa.string(), nullable=False),
        pa.field("validator", pa.string(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=True),
        pa.field("reason", pa.string(), nullable=True),
        pa.field("details", pa.string(), nullable=True),
    ]
)

OUTCOMES = ("accepted", "rejected", "needs_review")

#: The policy's weighted tally of one record: weights of accept / reject / abstain votes,
#: ``cast`` = accept + reject, ``share`` = accept / cast (1.0 when nothing was cast), the
#: number of votes, and which rule decided (``veto``, ``quorum`` or ``threshold``).
TALLY_TYPE = pa.struct(
    [
        pa.field("accept", pa.float64()),
        pa.field("reject", pa.float64()),
        pa.field("abstain", pa.float64()),
        pa.field("cast", pa.float64()),
        pa.field("share", pa.float64()),
        pa.field("votes", pa.int32()),
        pa.field("decided_by", pa.string()),
    ]
)

#: The policy's decision per record: outcome, every reason (sorted) and the weighted tally.
DECISION_SCHEMA = pa.schema(
    [
        pa.field("contribution_id", pa.string(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("accept_weight", pa.float64(), nullable=False),
        pa.field("reject_weight", pa.float64(), nullable=False),
        pa.field("tally", TALLY_TYPE, nullable=True),
    ]
)

_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
}


def record_schema(extra_fields: dict[str, str] | None = None) -> pa.Schema:
    """:data:`RECORD_SCHEMA` plus the spec's extra fields (``name -> type name``)."""
    schema = RECORD_SCHEMA
    for name, type_name in (extra_fields or {}).items():
        schema = schema.append(pa.field(name, _ARROW_TYPES[type_name], nullable=True))
    return schema
