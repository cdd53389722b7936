"""PII reason codes and what they mean at rest (light: no Presidio import).

The writer and the vote review import these to keep rows rejected for PII without their
text; :mod:`datanet.privacy.policy` re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PII_REASON_PREFIX", "pii_reason", "contains_pii_reason", "drop_pii_text"]

PII_REASON_PREFIX = "pii:"


def pii_reason(entity: str) -> str:
    """The reject reason of an entity type: ``pii:<ENTITY>``."""
    return f"{PII_REASON_PREFIX}{entity}"


def contains_pii_reason(reasons: Sequence[str] | None) -> bool:
    """True when any reason is a PII rejection (the writer then stores no text)."""
    return any(r is not None and r.startswith(PII_REASON_PREFIX) for r in reasons or ())


def drop_pii_text(rows: pa.Table, reasons: pa.Array | pa.ChunkedArray) -> pa.Table:
    """``rows`` with ``text`` nulled where its ``reasons`` hold a PII rejection (no PII at rest)."""
    pii = pa.array([contains_pii_reason(r) for r in reasons.to_pylist()], pa.bool_())
    i = rows.schema.get_field_index("text")
    return rows.set_column(i, rows.schema.field(i),
                           pc.if_else(pii, pa.nulls(rows.num_rows, pa.string()),
                                      rows.column("text")))
