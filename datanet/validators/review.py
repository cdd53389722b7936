"""``datanet vote``: ingest external votes and publish re-decided quarantined records.

Records the policy left in ``needs_review`` are stored under the ``quarantine`` kind of the
batch that saw them: not published, not in its Merkle tree. :func:`apply_votes` verifies new
signed votes (:mod:`datanet.validators.external`), re-runs the policy over every vote the
open records have (the automatic validators' votes from their batch, external votes counted
before, and the new ones), and commits ONE new batch holding

- ``accepted``: records now accepted (with the new batch id; they get a Merkle leaf there),
- ``rejected``: records now rejected, with reasons and the tally,
- ``votes``: the new votes in VOTE_SCHEMA (uncounted ones as ``abstain`` with their status),
- ``external_votes``: the signed votes as submitted, with their status (the audit trail).

A committed batch is never rewritten: a quarantined record is "open" while no later batch
accepted or rejected it. The batch id derives from the new votes' ids, so ingesting the same
files twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.schemas.ids import batch_id as make_batch_id
from datanet.schemas.ids import keccak_hex
from datanet.schemas.votes import VOTE_STATUSES
from datanet.validators.external import (
    counted_pairs,
    read_vote_lines,
    to_policy_votes,
    verify_votes,
)
from datanet.validators.policy import DECISION_COLUMNS, decide, policy_config, route

if TYPE_CHECKING:
    from datanet.schemas.manifest import Manifest
    from datanet.store.layout import DatanetStore

__all__ = ["ReviewResult", "apply_votes", "open_quarantine", "EXTERNAL_VOTES_KIND"]

#: Manifest kind of the signed-vote audit trail.
EXTERNAL_VOTES_KIND = "external_votes"
#: Columns the policy adds to rejected / quarantined rows.


@dataclass(frozen=True)
class ReviewResult:
    """Outcome of one ``datanet vote``."""

    batch_id: str | None
    committed: bool
    statuses: dict[str, int]
    accepted: int
    rejected: int
    still_open: int
    message: str
    manifest: Manifest | None = None
    decisions: pa.Table | None = field(default=None, repr=False)


def _read(store: DatanetStore, paths: Sequence[str],
          columns: Sequence[str] | None = None) -> pa.Table:
    tables = [pq.read_table(store.abs(p), columns=list(columns) if columns else None)
              for p in paths]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


def _ids_of(store: DatanetStore, manifests: Sequence[Any], kind: str) -> pa.Array:
    paths = [p for m in manifests for p in m.paths(kind)]
    if not paths:
        return pa.array([], pa.string())
    return _read(store, paths, ["contribution_id"]).column("contribution_id").combine_chunks()


def open_quarantine(store: DatanetStore, manifests: Sequence[Any] | None = None) -> pa.Table:
    """Quarantined rows not accepted or rejected by any later batch (latest copy per id)."""
    manifests = store.manifests() if manifests is None else manifests
    paths = [p for m in manifests for p in m.paths("quarantine")]
    if not paths:
        return pa.table({"contribution_id": pa.array([], pa.string())})
    q = _read(store, paths)
    decided = pa.chunked_array([_ids_of(store, manifests, "accepted"),
                                _ids_of(store, manifests, "rejected")], pa.string())
    q = q.filter(pc.invert(pc.is_in(q.column("contribution_id"),
                                    value_set=decided.combine_chunks())))
    # latest copy per id (a record may be quarantined again by a later run)
    idx = pa.array(np.arange(q.num_rows), pa.int64())
    last = (pa.table({"contribution_id": q.column("contribution_id"), "i": idx})
            .group_by("contribution_id").aggregate([("i", "max")]))
    return q.take(pa.array(np.sort(last.column("i_max").to_numpy()), pa.int64()))


def _prior_votes(store: DatanetStore, manifests: Sequence[Any], ids: pa.Array) -> pa.Table:
    """Committed votes on ``ids``; one per (record, validator), the latest batch's."""
    rows = []
    for m in manifests:
        for p in m.paths("votes"):
            t = pq.read_table(store.abs(p), columns=VOTE_SCHEMA.names)
            t = t.filter(pc.is_in(t.column("contribution_id"), value_set=ids))
            if t.num_rows:
                rows.append(t.cast(VOTE_SCHEMA))
    if not rows:
        return VOTE_SCHEMA.empty_table()
    votes = pa.concat_tables(rows).combine_chunks()
    # External votes that did not count are kept for the record but carry no weight; the
    # latest row per (record, validator) wins so a re-quarantined record is not counted twice.
    order = pa.array(np.arange(votes.num_rows), pa.int64())
    keys = pa.table({"c": votes.column("contribution_id"), "v": votes.column("validator"),
                     "i": order, "counted": _counts(votes)})
    keys = keys.filter(keys.column("counted"))
    last = keys.group_by(["c", "v"]).aggregate([("i", "max")])
    return votes.take(pa.array(np.sort(last.column("i_max").to_numpy()), pa.int64()))


def _counts(votes: pa.Table) -> pa.Array:
    """False for external votes that were not counted (abstain rows with a status)."""
    details = votes.column("details")
    external = pc.fill_null(pc.match_substring(details, '"external": true'), False)
    counted = pc.fill_null(pc.match_substring(details, '"status": "counted"'), False)
    return pc.or_(pc.invert(external), counted)


def _committed_statuses(store: DatanetStore, manifests: Sequence[Any]) -> dict[str, set[str]]:
    """vote id -> every status it was committed with (the ``external_votes`` ledgers)."""
    out: dict[str, set[str]] = {}
    paths = [p for m in manifests for p in m.paths(EXTERNAL_VOTES_KIND)]
    if not paths:
        return out
    t = _read(store, paths, ["vote_id", "status"])
    for vid, status in zip(t.column("vote_id").to_pylist(), t.column("status").to_pylist(),
                           strict=True):
        out.setdefault(vid, set()).add(status)
    return out


def _new_information(ledger: pa.Table, committed: dict[str, set[str]],
                     ) -> tuple[pa.Table, list[str]]:
    """The ledger rows worth a batch, and the ids its batch id derives from.

    A vote never committed is new (its id is its vote id, as before). A vote committed but
    never counted (e.g. ``unknown_validator`` while its signer was not registered yet) is
    re-evaluated on every ingest and is new when it counts now; its id then binds the status,
    so the batch differs from the one that recorded it uncounted. A vote once counted is
    settled.
    """
    keep: list[int] = []
    ids: list[str] = []
    for i, (vid, status) in enumerate(zip(ledger.column("vote_id").to_pylist(),
                                          ledger.column("status").to_pylist(), strict=True)):
        before = committed.get(vid)
        if before is None:
            keep.append(i)
            ids.append(vid)
        elif status == "counted" and "counted" not in before:
            keep.append(i)
            ids.append(keccak_hex(f"{vid}:{status}".encode()))
    return ledger.take(pa.array(keep, pa.int64())), ids


def apply_votes(store: DatanetStore, vote_files: Sequence[str | Path]) -> ReviewResult:
    """Verify ``vote_files`` against ``store`` and commit the re-decided records (module doc)."""
    from datanet.store.files import write_table

    spec = store.spec
    config = policy_config(spec)
    manifests = store.manifests()
    history_seq = manifests[-1].seq if manifests else 0

    quarantine = open_quarantine(store, manifests)
    open_ids = quarantine.column("contribution_id").combine_chunks()
    status_of: dict[str, str] = {}
    for kind, label in (("accepted", "accepted"), ("rejected", "rejected")):
        status_of.update(dict.fromkeys(_ids_of(store, manifests, kind).to_pylist(), label))
    status_of.update(dict.fromkeys(open_ids.to_pylist(), "needs_review"))

    prior = _prior_votes(store, manifests, open_ids)
    lines = list(read_vote_lines(vote_files))
    ledger = verify_votes(lines, datanet_id=spec.id, registry=config.registry,
                          status_of=status_of, prior=counted_pairs(prior))
    statuses = {s: 0 for s in VOTE_STATUSES}
    for s in ledger.column("status").to_pylist():
        statuses[s] += 1
    if ledger.num_rows == 0:
        return ReviewResult(None, False, statuses, 0, 0, len(open_ids),
                            "the vote files hold no votes")
    ledger, record_ids = _new_information(ledger, _committed_statuses(store, manifests))
    if ledger.num_rows == 0:
        return ReviewResult(None, False, statuses, 0, 0, len(open_ids),
                            "nothing new: every vote in these files is already committed "
                            "with this status")
    batch = make_batch_id(spec.id, record_ids)
    existing = store.manifest_for(batch)
    if existing is not None:
        return ReviewResult(batch, False, statuses, 0, 0, len(open_ids),
                            f"nothing new: these votes are batch {existing.seq} "
                            f"({batch[:12]}…), already committed", existing)

    new_votes = to_policy_votes(ledger)
    all_votes = pa.concat_tables([prior, new_votes.filter(
        pc.is_in(new_votes.column("contribution_id"), value_set=open_ids))])
    decisions = decide(open_ids, all_votes, config)

    files: dict[str, list[Any]] = {}

    def write(kind: str, table: pa.Table) -> None:
        if table.num_rows:
            files.setdefault(kind, []).append(write_table(str(store.root), kind, batch, table))

    base = quarantine.drop_columns([c for c in (*DECISION_COLUMNS, "batch")
                                    if c in quarantine.column_names])
    routed = route(base, decisions)  # still-open records stay in their quarantine batch
    accepted, rejected = routed["accepted"], routed["rejected"]
    write("accepted", accepted)
    write("rejected", rejected)

    write("votes", new_votes)
    write(EXTERNAL_VOTES_KIND, ledger)

    n_acc, n_rej = accepted.num_rows, rejected.num_rows
    still_open = len(open_ids) - n_acc - n_rej
    counts = {"input": 0, "accepted": n_acc, "rejected": n_rej, "quarantine": 0,
              "deadletter": 0, "votes": ledger.num_rows, "votes_counted": statuses["counted"]}
    report = {"review": {"votes": {k: v for k, v in statuses.items() if v},
                         "resolved": n_acc + n_rej, "still_needs_review": still_open}}
    tree = None
    if n_acc:
        from datanet.anchoring.merkle import batch_tree

        tree = batch_tree(spec.id, batch, accepted.select(
            ["contribution_id", "contributor", "content_hash"]))
    manifest = store.commit(batch_id=batch, files=files, counts=counts,
                            history_seq=history_seq,
                            sources=sorted({str(Path(p).resolve()) for p in vote_files}),
                            report=report, tree=tree)
    if manifest is None:
        return ReviewResult(batch, False, statuses, 0, 0, len(open_ids),
                            "nothing new: a concurrent run committed these votes")
    return ReviewResult(batch, True, statuses, n_acc, n_rej, still_open,
                        f"committed batch {manifest.seq} ({batch[:12]}…): {n_acc} accepted, "
                        f"{n_rej} rejected, {still_open} still need review",
                        manifest, decisions)


