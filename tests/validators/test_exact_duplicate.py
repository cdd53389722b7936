"""Vectorised exact-duplicate resolution: history, earliest, smallest id, resubmissions."""

from __future__ import annotations

import json

import pyarrow as pa

from datanet.validators.exact_duplicate import resolve_table
from datanet.validators.keyed import dense_votes


def _new(rows):
    """Rows ``(hash, id, submitted_at, part, file, line)``; ``_row`` is the position."""
    keys = ["content_hash", "contribution_id", "submitted_at", "_part", "source_file",
            "source_line"]
    table = pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)},
                     schema=pa.schema([("content_hash", pa.string()),
                                       ("contribution_id", pa.string()),
                                       ("submitted_at", pa.int64()), ("_part", pa.int32()),
                                       ("source_file", pa.string()),
                                       ("source_line", pa.int64())]))
    return table.append_column("_row", pa.array(range(len(rows)), pa.int32()))


def _by_id(table, votes):
    dense = dense_votes("exact_duplicate", table.column("contribution_id"), [votes])
    return {(r["contribution_id"], p): (r["verdict"], r["reason"],
                                        json.loads(r["details"]) if r["details"] else None)
            for r, p in zip(dense.to_pylist(), table.column("_part").to_pylist(), strict=True)}


def test_earliest_then_smallest_id_wins_and_resubmissions_drop():
    new = _new([
        ("0xh1", "0xb", 5, 1, "f", 1),
        ("0xh1", "0xa", 9, 1, "f", 2),   # later
        ("0xh1", "0xc", 5, 2, "g", 1),   # same time as 0xb, larger id
        ("0xh2", "0xd", 1, 2, "g", 2),
        ("0xh2", "0xd", 0, 2, "g", 3),   # resubmission of 0xd (later line)
    ])
    votes, drops = resolve_table(new, None)
    assert _by_id(new, votes) == {
        ("0xb", 1): ("accept", None, None),
        ("0xa", 1): ("reject", "exact_duplicate", {"matched": "0xb"}),
        ("0xc", 2): ("reject", "exact_duplicate", {"matched": "0xb"}),
        ("0xd", 2): ("accept", None, None),
    }
    assert drops.to_pylist() == [{
        "_part": 2, "_row": 4, "reason": "duplicate_submission",
        "message": "g:3: the same contributor submitted the same text again (contribution 0xd)"}]


def test_history_wins_over_everything_new():
    history = pa.table({"content_hash": ["0xh1", "0xh1", "0xh9"],
                        "contribution_id": ["0xz", "0xy", "0xq"],
                        "batch": ["0xB2", "0xB1", "0xB1"]})
    new = _new([("0xh1", "0xa", 0, 0, "f", 1), ("0xh3", "0xe", 0, 0, "f", 2)])
    votes, drops = resolve_table(new, history)
    assert drops is None
    assert votes.select(["_part", "_row", "verdict", "reason"]).to_pylist() == [
        {"_part": 0, "_row": 0, "verdict": "reject", "reason": "exact_duplicate"}]
    assert _by_id(new, votes) == {
        ("0xa", 0): ("reject", "exact_duplicate", {"matched": "0xy", "batch": "0xB1"}),
        ("0xe", 0): ("accept", None, None),
    }
