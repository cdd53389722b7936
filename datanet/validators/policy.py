"""Vote aggregation policy: turn every record's votes into one outcome.

The foundation policy is the simplest sound one: any reject → ``rejected`` (reasons = every
reject reason, sorted), otherwise ``accepted``. The full weighted policy (quorum, threshold,
vetoes, ``needs_review``) builds on :func:`decide`'s signature. Vectorised over the batch's
votes with Arrow group-by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    rejects = votes.filter(pc.equal(votes.column("verdict"), "reject"))
    reason = pc.if_else(
        pc.is_null(rejects.column("reason")),
        pc.binary_join_element_wise(rejects.column("validator"), pa.scalar("rejected"), ":"),
        rejects.column("reason"),
    )
    grouped = (
        pa.table({"contribution_id": rejects.column("contribution_id"), "reason": reason})
        .group_by("contribution_id")
        .aggregate([("reason", "distinct")])
    )
    accept_w = (
        pa.table({"contribution_id": votes.column("contribution_id"),
                  "one": pa.array([1.0] * votes.num_rows, pa.float64())})
        .filter(pc.equal(votes.column("verdict"), "accept"))
        .group_by("contribution_id").aggregate([("one", "sum")])
    )
    base = pa.table({"contribution_id": ids, "_i": pa.array(range(len(ids)), pa.int64())})
    joined = base.join(grouped, "contribution_id", join_type="left outer")
    joined = joined.join(accept_w, "contribution_id", join_type="left outer").sort_by("_i")
    reasons = joined.column("reason_distinct")
    n_rej = pc.fill_null(pc.list_value_length(reasons), 0)
    reasons = pc.if_else(pc.is_null(reasons), pa.scalar([], pa.list_(pa.string())), reasons)
    reasons = pa.array([sorted(r) for r in reasons.to_pylist()], pa.list_(pa.string()))
    outcome = pc.if_else(pc.greater(n_rej, 0), "rejected", "accepted")
    return pa.Table.from_arrays(
        [
            joined.column("contribution_id"),
            outcome,
            reasons,
            pc.fill_null(joined.column("one_sum"), 0.0),
            pc.cast(n_rej, pa.float64()),
        ],
        schema=DECISION_SCHEMA,
    )
