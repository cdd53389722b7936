"""The validator contract: an Arrow batch in, one vote per record out.

A validator knows nothing of Beam. :meth:`Validator.validate` receives a record batch of
:data:`~datanet.schemas.contribution.RECORD_SCHEMA` (plus the spec's extra fields) and returns
a :class:`ValidationResult` holding one vote per record in :data:`VOTE_SCHEMA`. Reason codes
are stable snake_case strings. A validator may also return a replacement ``text`` column
(redaction), which is what the store then keeps.

Most validators are rules: subclass :class:`RuleValidator` and implement
:meth:`RuleValidator.reasons`, returning a reason (or null for "pass") per record; the base
class builds the votes, like datatrove's ``BaseFilter.filter``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.contribution import VOTE_SCHEMA

__all__ = [
    "Validator",
    "RuleValidator",
    "ValidationResult",
    "make_votes",
]


@dataclass(frozen=True)
class ValidationResult:
    """Votes for a batch, and optionally a replacement for its ``text`` column."""

    votes: pa.Table
    text: pa.Array | pa.ChunkedArray | None = None


def make_votes(
    contribution_ids: pa.Array | pa.ChunkedArray | Sequence[str],
    validator: str,
    verdicts: Sequence[str] | np.ndarray | pa.Array | str,
    *,
    scores: Sequence[float | None] | np.ndarray | pa.Array | None = None,
    reasons: Sequence[str | None] | pa.Array | None = None,
    details: Sequence[dict[str, Any] | str | None] | pa.Array | None = None,
) -> pa.Table:
    """Build a vote table; scalar ``verdicts`` are broadcast, dict ``details`` become JSON."""
    ids = pa.array(contribution_ids, pa.string()) if not isinstance(
        contribution_ids, (pa.Array, pa.ChunkedArray)
    ) else contribution_ids
    n = len(ids)
    if isinstance(verdicts, str):
        verdict_arr = pa.array([verdicts] * n, pa.string())
    else:
        verdict_arr = pa.array(verdicts, pa.string()) if not isinstance(
            verdicts, (pa.Array, pa.ChunkedArray)) else verdicts
    if details is not None and not isinstance(details, (pa.Array, pa.ChunkedArray)):
        details = pa.array(
            [d if d is None or isinstance(d, str) else json.dumps(d, sort_keys=True)
             for d in details],
            pa.string(),
        )
    columns = [
        ids,
        pa.array([validator] * n, pa.string()),
        verdict_arr,
        pa.nulls(n, pa.float64()) if scores is None else pa.array(scores, pa.float64()),
        pa.nulls(n, pa.string()) if reasons is None else pa.array(reasons, pa.string()),
        pa.nulls(n, pa.string()) if details is None else details,
    ]
    return pa.Table.from_arrays(columns, schema=VOTE_SCHEMA)


class Validator(ABC):
    """Base of every automatic validator.

    ``name`` is the validator's id in votes and in the spec (``[validators.<name>]``);
    ``config`` its frozen config dataclass. Heavy state (models, engines) is created in
    :meth:`setup`, once per worker, not in ``__init__`` (which must stay picklable and cheap).
    """

    name: ClassVar[str]
    #: reason codes this validator can emit (documentation and tests).
    reason_codes: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Create per-worker state (engines, models). Called once before the first batch."""

    @abstractmethod
    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        """Vote on every record of ``batch``: exactly one vote per record."""

    def report(self) -> dict[str, Any]:
        """Run-level facts for the batch manifest (e.g. 'NER disabled'); empty by default."""
        return {}


class RuleValidator(Validator):
    """A validator that is a set of rules: reject with a reason, or accept.

    Subclasses implement :meth:`reasons`; a null reason means accept. Optional
    :meth:`scores` gives a per-record score.
    """

    @abstractmethod
    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        """A string array aligned with ``batch``: the reject reason or null."""

    def scores(self, batch: pa.RecordBatch) -> pa.Array | None:
        """Optional float scores aligned with ``batch``."""
        return None

    def details(self, batch: pa.RecordBatch) -> pa.Array | None:
        """Optional JSON details aligned with ``batch``."""
        return None

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        reasons = self.reasons(batch)
        verdicts = pc.if_else(pc.is_null(reasons), "accept", "reject")
        return ValidationResult(
            make_votes(
                batch.column("contribution_id"),
                self.name,
                verdicts,
                scores=self.scores(batch),
                reasons=reasons,
                details=self.details(batch),
            )
        )


def first_reason(conditions: Sequence[tuple[str, np.ndarray | pa.Array]], n: int) -> pa.Array:
    """Combine boolean masks into one reason array: the first matching reason wins."""
    out = np.full(n, None, dtype=object)
    for reason, mask in conditions:
        mask_np = np.asarray(
            mask.to_numpy(zero_copy_only=False) if isinstance(mask, (pa.Array, pa.ChunkedArray))
            else mask,
            dtype=bool,
        )
        pick = mask_np & np.equal(out, None)
        out[pick] = reason
    return pa.array(out, pa.string())


__all__.append("first_reason")
