"""Vectorised exact-duplicate resolution: history, earliest, smallest id, resubmissions."""

from __future__ import annotations

import json

import pyarrow as pa

from datanet.validators.exact_duplicate import resolve_table


def _new(rows):
    keys = ["content_hash", "contribution_id", "submitted_at", "chunk", "source_file",
            "source_line"]
    return pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)},
                    schema=pa.schema([("content_hash", pa.string()),
                                      ("contribution_id", pa.string()),
                                      ("submitted_at", pa.int64()), ("chunk", pa.string()),
                                      ("source_file", pa.string()),
                                      ("source_line", pa.int64())]))


def _by_id(votes):
    return {r["contribution_id"]: (r["verdict"], r["reason"],
                                   json.loads(r["details"]) if r["details"] else None, r["chunk"])
            for r in votes.to_pylist()}


def test_earliest_then_smallest_id_wins_and_resubmissions_drop():
    votes, drops = resolve_table(_new([
        ("0xh1", "0xb", 5, "c1", "f", 1),
        ("0xh1", "0xa", 9, "c1", "f", 2),   # later
        ("0xh1", "0xc", 5, "c2", "g", 1),   # same time as 0xb, larger id
        ("0xh2", "0xd", 1, "c2", "g", 2),
        ("0xh2", "0xd", 0, "c2", "g", 3),   # resubmission of 0xd (later line)
    ]), None)
    assert _by_id(votes) == {
        "0xb": ("accept", None, None, "c1"),
        "0xa": ("reject", "exact_duplicate", {"matched": "0xb"}, "c1"),
        "0xc": ("reject", "exact_duplicate", {"matched": "0xb"}, "c2"),
        "0xd": ("accept", None, None, "c2"),
    }
    assert drops.select(["source_file", "source_line", "reason", "chunk"]).to_pylist() == [
        {"source_file": "g", "source_line": 3, "reason": "duplicate_submission", "chunk": "c2"}]


def test_history_wins_over_everything_new():
    history = pa.table({"content_hash": ["0xh1", "0xh1", "0xh9"],
                        "contribution_id": ["0xz", "0xy", "0xq"],
                        "batch": ["0xB2", "0xB1", "0xB1"]})
    votes, drops = resolve_table(_new([("0xh1", "0xa", 0, "c", "f", 1),
                                       ("0xh3", "0xe", 0, "c", "f", 2)]), history)
    assert drops is None
    assert _by_id(votes) == {
        "0xa": ("reject", "exact_duplicate", {"matched": "0xy", "batch": "0xB1"}, "c"),
        "0xe": ("accept", None, None, "c"),
    }
