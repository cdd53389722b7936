"""Exact duplicates: the same normalised text (content_hash) within the input or in history.

Beam-free resolution logic; ``pipelines.dedup`` groups records by content_hash across the
whole input and joins the datanet's committed accepted records. Resolution: history wins,
then the earliest ``submitted_at``, then the smallest contribution id. Losers get reason
``exact_duplicate`` with the matched contribution id in the vote's details. A second copy of
the very same contribution (same contributor and text → same contribution id) is not a new
record: it goes to dead-letter as ``duplicate_submission``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from datanet.validators.base import ValidationResult, Validator

__all__ = ["ExactDuplicateConfig", "ExactDuplicateValidator", "Candidate", "resolve_group"]


@dataclass(frozen=True)
class ExactDuplicateConfig:
    """No settings: exact duplicates are always compared on the normalised text."""


class Candidate(NamedTuple):
    """A record in a content-hash group (small: no text)."""

    contribution_id: str
    submitted_at: int  # microseconds since epoch
    chunk: str
    source_file: str
    source_line: int


class Resolution(NamedTuple):
    """Outcome of one content-hash group."""

    votes: list[tuple[str, str, dict[str, Any]]]  # (chunk, verdict, details) per record
    resubmissions: list[Candidate]  # second copies of the same contribution id


def resolve_group(
    candidates: Iterable[Candidate], history: Sequence[tuple[str, str]]
) -> tuple[list[tuple[Candidate, str, dict[str, Any] | None]], list[Candidate]]:
    """Resolve one content-hash group.

    ``history`` holds ``(contribution_id, batch_id)`` of committed accepted records with the
    same hash. Returns ``[(candidate, verdict, details)]`` for every distinct contribution and
    the list of resubmitted copies (same contribution id seen before in the input).
    """
    ordered = sorted(candidates, key=lambda c: (c.source_file, c.source_line))
    first: dict[str, Candidate] = {}
    resubmitted: list[Candidate] = []
    for c in ordered:
        if c.contribution_id in first:
            resubmitted.append(c)
        else:
            first[c.contribution_id] = c
    distinct = sorted(first.values(), key=lambda c: (c.submitted_at, c.contribution_id))
    out: list[tuple[Candidate, str, dict[str, Any] | None]] = []
    if history:
        hist_id, hist_batch = min(history)
        for c in distinct:
            out.append((c, "reject", {"matched": hist_id, "batch": hist_batch}))
        return out, resubmitted
    winner = distinct[0]
    out.append((winner, "accept", None))
    for c in distinct[1:]:
        out.append((c, "reject", {"matched": winner.contribution_id}))
    return out, resubmitted


class ExactDuplicateValidator(Validator):
    """Keyed validator; its Beam stage lives in ``pipelines.dedup``.

    ``validate`` on a single batch (no history) is the in-memory reference used by tests
    and small tools.
    """

    name = "exact_duplicate"
    config_cls = ExactDuplicateConfig
    reason_codes = ("exact_duplicate",)
    stage = "datanet.pipelines.dedup:ExactDuplicateStage"

    def __init__(self, config: ExactDuplicateConfig, spec: Any):
        self.config = config

    def validate(self, batch: Any) -> ValidationResult:
        from datanet.validators.base import make_votes

        hashes = batch.column("content_hash").to_pylist()
        ids = batch.column("contribution_id").to_pylist()
        ts = batch.column("submitted_at").cast("int64").to_pylist()
        groups: dict[str, list[Candidate]] = {}
        for i, (h, cid, t) in enumerate(zip(hashes, ids, ts, strict=True)):
            groups.setdefault(h, []).append(Candidate(cid, t, "", "", i))
        verdict: dict[str, tuple[str, dict[str, Any] | None]] = {}
        for group in groups.values():
            resolved, _ = resolve_group(group, ())
            for c, v, d in resolved:
                verdict[c.contribution_id] = (v, d)
        verdicts = [verdict[c][0] for c in ids]
        return ValidationResult(
            make_votes(
                ids, self.name, verdicts,
                reasons=[None if v == "accept" else "exact_duplicate" for v in verdicts],
                details=[verdict[c][1] for c in ids],
            )
        )


def reject_reason(verdict: str) -> str | None:
    """Reason code for a verdict of this validator."""
    return None if verdict == "accept" else "exact_duplicate"


__all__ += ["reject_reason", "Resolution"]
