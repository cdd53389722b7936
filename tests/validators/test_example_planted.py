"""The example datanet's planted cases against this package's validators, exact counts.

Runs every batch validator and the keyed validators' in-memory references (the Beam stages
are checked on the same logic in test_minhash / test_spam) on all parseable records of
``examples/cooking-qa/contributions``; ``expected.json`` says what each line is.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from datanet.privacy.normalise import normalise_text
from datanet.schemas.contribution import RECORD_SCHEMA
from datanet.schemas.ids import content_hash, contribution_id
from datanet.validators.registry import enabled_validators
from tests.validators.records import spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cooking-qa"
pytestmark = pytest.mark.skipif(not (EXAMPLE / "expected.json").exists(),
                                reason="example datanet not present")


def _records() -> list[tuple[str, int, dict]]:
    out = []
    for name in ("contributions/part-1.jsonl", "contributions/part-2.jsonl.gz"):
        raw = (EXAMPLE / name).read_bytes()
        if name.endswith(".gz"):
            raw = gzip.decompress(raw)
        for line, data in enumerate(raw.split(b"\n"), 1):
            try:
                out.append((name, line, json.loads(data.decode("utf-8"))))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
    text = (EXAMPLE / "contributions/part-3.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    prev = 1
    for row in reader:
        out.append(("contributions/part-3.csv", prev + 1, row))
        prev = reader.line_num
    return [(f, n, r) for f, n, r in out if isinstance(r, dict)
            and isinstance(r.get("text"), str) and isinstance(r.get("contributor"), str)]


@pytest.fixture(scope="module")
def outcome():
    expected = json.loads((EXAMPLE / "expected.json").read_text())
    malformed = {(m["file"], m["line"]) for m in expected["malformed"]}
    kinds = {(p["file"], p["line"]): p["kind"] for p in expected["planted"]}
    recs = [r for r in _records() if (r[0], r[1]) not in malformed]
    norm = [normalise_text(r["text"]) for _, _, r in recs]
    hashes = [content_hash(t) for t in norm]
    who = [r["contributor"] for _, _, r in recs]
    ts = [int(datetime.fromisoformat(r["submitted_at"].replace("Z", "+00:00")).timestamp()
              * 1_000_000) for _, _, r in recs]
    n = len(recs)
    batch = pa.RecordBatch.from_pydict({
        "contribution_id": [contribution_id("cooking-qa", c, h) for c, h in zip(who, hashes,
                                                                                 strict=True)],
        "datanet": ["cooking-qa"] * n, "contributor": who,
        "submitted_at": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "text": [r["text"] for _, _, r in recs], "text_norm": norm, "content_hash": hashes,
        "metadata": [None] * n, "signature": [None] * n,
        "source_file": [f for f, _, _ in recs], "source_line": [line for _, line, _ in recs],
    }, schema=RECORD_SCHEMA)
    s = spec()
    validators = [v for v in (*enabled_validators(s), *enabled_validators(s, kind="keyed"))
                  if v.name not in ("exact_duplicate", "signature")]
    reasons: list[set[str]] = [set() for _ in range(n)]
    for v in validators:
        v.setup()
        for i, vote in enumerate(v.validate(batch).votes.to_pylist()):
            if vote["verdict"] == "reject":
                reasons[i].add(vote["reason"])
    table: dict[str, Counter] = defaultdict(Counter)
    for (f, line, r), rs in zip(recs, reasons, strict=True):
        kind = kinds.get((f, line))
        if kind is None:
            kind = "flood" if r["contributor"] == expected["flood_contributor"] else "clean"
        table[kind]["total"] += 1
        table[kind]["rejected"] += bool(rs)
        for reason in rs:
            table[kind][reason] += 1
    return table


def test_planted_junk_caught_and_clean_accepted(outcome):
    assert outcome["clean"]["total"] == 1709
    # one clean text repeats a 10-word clause (17 % of its characters): Gopher's
    # duplicate 5-gram rule (> 15 %) rejects it
    assert (outcome["clean"]["rejected"], outcome["clean"]["gopher_dup_5_gram"]) == (1, 1)
    assert outcome["flood"] == Counter(total=60, rejected=60, contributor_flood=60)
    for kind in ("low_quality", "spam", "non_english", "near_duplicate"):
        assert outcome[kind]["rejected"] == outcome[kind]["total"] == {
            "low_quality": 40, "spam": 30, "non_english": 15, "near_duplicate": 40}[kind]
    assert outcome["near_duplicate"]["near_duplicate"] == 40
    assert outcome["non_english"]["language"] == 15
    assert outcome["spam"]["spam_blocklist"] == 22
    # exact copies are the exact_duplicate validator's: no near_duplicate vote on them
    assert outcome["exact_duplicate"]["near_duplicate"] == 0
