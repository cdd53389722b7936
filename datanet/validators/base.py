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
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.contribution import VOTE_SCHEMA

if TYPE_CHECKING:
    from datanet.errors import ValidatorError
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "Validator",
    "RuleValidator",
    "ValidationResult",
    "make_votes",
    "check_validator_class",
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
    """Base of every automatic validator: the whole contract the registry relies on.

    - ``name``: the validator's id in votes and in the spec (``[validators.<name>]``);
    - ``config_cls``: a frozen dataclass built from that table (minus ``enabled``), validated
      in its ``__post_init__`` with :func:`datanet.schemas.config.check` messages;
    - ``reason_codes``: every reason it can emit (documentation, README table, tests);
    - ``kind``: ``"batch"`` (votes on one Arrow batch at a time, here) or ``"keyed"`` (needs
      records from the whole input and the history: a
      :class:`~datanet.validators.keyed.KeyedValidator`, ``key`` + ``resolve``);
    - ``summary``: one line for the README table and ``datanet validators``;
    - the constructor ``cls(config, spec)``: cheap and picklable; heavy state (models, engines)
      is created in :meth:`setup`, which the runner calls once per worker before the first
      batch (``validate`` never calls it).
    """

    name: ClassVar[str]
    config_cls: ClassVar[type]
    #: reason codes this validator can emit (documentation and tests).
    reason_codes: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "batch"
    summary: ClassVar[str] = ""

    def __init__(self, config: Any, spec: DatanetSpec | None = None):
        self.config = config
        self.spec = spec

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Create per-worker state (engines, models). Called once before the first batch."""

    @abstractmethod
    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        """Vote on every record of ``batch``: exactly one vote per record."""

    def report(self) -> dict[str, Any]:
        """Run-level facts for the batch manifest (e.g. 'NER disabled'); empty by default."""
        return {}

    def _not_set_up(self) -> ValidatorError:
        """The error of a ``validate`` called before :meth:`setup`."""
        from datanet.errors import ValidatorError

        return ValidatorError(f"validator {self.name!r}: setup() must be called before "
                              "validate() (the pipeline's runner does it once per worker)")


def check_validator_class(cls: object, name: str, origin: str) -> None:
    """Raise :class:`~datanet.errors.ValidatorError` unless ``cls`` fulfils the contract of
    :class:`Validator` under ``name`` (``origin`` says where it was registered)."""
    import dataclasses

    from datanet.errors import ValidatorError

    def bad(what: str) -> None:
        raise ValidatorError(f"validator {name!r} ({origin}): {what}")

    if not (isinstance(cls, type) and issubclass(cls, Validator)):
        bad(f"{cls!r} is not a subclass of datanet.validators.base.Validator")
    if getattr(cls, "name", None) != name:
        bad(f"its class attribute name={getattr(cls, 'name', None)!r} must be {name!r}")
    config_cls = getattr(cls, "config_cls", None)
    if not (dataclasses.is_dataclass(config_cls)
            and config_cls.__dataclass_params__.frozen):  # type: ignore[union-attr]
        bad("config_cls must be a frozen dataclass (the [validators.<name>] table)")
    if cls.kind not in ("batch", "keyed"):
        bad(f"kind={cls.kind!r} must be 'batch' or 'keyed'")
    from datanet.validators.keyed import KeyedValidator

    if (cls.kind == "keyed") != issubclass(cls, KeyedValidator):
        bad("a keyed validator subclasses datanet.validators.keyed.KeyedValidator (key + "
            "resolve), and only a keyed one does")
    if cls.kind == "keyed":
        rank = cls.vote_rank
        if not (isinstance(rank, tuple) and all(isinstance(c, str) for c in rank)):
            bad("vote_rank must be a tuple of column names")
        if cls.history_kind is not None and not isinstance(cls.history_kind, str):
            bad("history_kind must be a manifest kind (e.g. 'accepted') or None")
    codes = cls.reason_codes
    if not (isinstance(codes, tuple) and codes and all(isinstance(c, str) for c in codes)):
        bad("reason_codes must be a non-empty tuple of strings")
    if getattr(cls, "__abstractmethods__", None):
        bad(f"abstract methods not implemented: {', '.join(sorted(cls.__abstractmethods__))}")


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
