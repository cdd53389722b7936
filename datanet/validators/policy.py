"""Vote aggregation policy: turn every record's votes into one outcome.

The foundation policy is the simplest sound one: any reject → ``rejected`` (reasons = every
reject reason, sorted), otherwise ``accepted``. The full weighted policy (quorum, threshold,
vetoes, ``needs_review``) builds on :func:`decide`'s signature. Vectorised over the batch's
votes with Arrow group-by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import config_from_mapping
from datanet.schemas.contribution import DECISION_SCHEMA

__all__ = ["PolicyConfig", "decide", "validate_spec_section", "policy_config"]


@dataclass(frozen=True)
class PolicyConfig:
    """``[policy]``: ``any_reject`` rejects a record on any reject vote."""

    mode: str = "any_reject"


def policy_config(spec: Any) -> PolicyConfig:
    """The spec's ``[policy]`` as a :class:`PolicyConfig`."""
    return config_from_mapping(PolicyConfig, spec.policy, prefix="policy")


def validate_spec_section(spec: Any) -> None:
    """Spec hook."""
    policy_config(spec)


def decide(ids: pa.Array | pa.ChunkedArray, votes: pa.Table, config: PolicyConfig) -> pa.Table:
    """One decision row per id in ``ids`` (same order) from ``votes``."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    n = len(ids)
    row = pc.index_in(votes.column("contribution_id"), value_set=ids).to_numpy(
        zero_copy_only=False)
    known = ~np.isnan(row.astype(float)) if row.dtype == object else row >= 0
    verdict = votes.column("verdict").to_numpy(zero_copy_only=False)
    is_acc = (verdict == "accept") & known
    is_rej = (verdict == "reject") & known
    idx = np.nan_to_num(row.astype(float), nan=0).astype(np.int64)
    accept_w = np.bincount(idx[is_acc], minlength=n).astype(np.float64)
    reject_w = np.bincount(idx[is_rej], minlength=n).astype(np.float64)
    reasons: list[set[str]] = [set() for _ in range(n)]
    rej_pos = np.flatnonzero(is_rej)
    if rej_pos.size:
        sub = votes.take(pa.array(rej_pos))
        for i, validator, reason in zip(idx[rej_pos], sub.column("validator").to_pylist(),
                                        sub.column("reason").to_pylist(), strict=True):
            reasons[i].add(reason or f"{validator}:rejected")
    outcome = np.where(reject_w > 0, "rejected", "accepted")
    return pa.Table.from_arrays(
        [
            ids,
            pa.array(outcome, pa.string()),
            pa.array([sorted(r) for r in reasons], pa.list_(pa.string())),
            pa.array(accept_w),
            pa.array(reject_w),
        ],
        schema=DECISION_SCHEMA,
    )
