"""The near-duplicate Beam stage: sharded banding, exact-Jaccard verification, history."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from datanet.pipelines.near_dedup import NearDuplicateStage
from datanet.pipelines.stages import History
from tests.validators.records import BOB, batch, spec
from tests.validators.texts import GOOD


def _near(text: str) -> str:
    """One word changed near the end: Jaccard of 5-shingles stays above 0.8."""
    words = text.split()
    words[-3] = "really"
    return " ".join(words)


_SINK: dict[str, list] = {}


def _sink(element, token):
    """Module-level (pickled by reference) so DirectRunner writes into this process's dict."""
    _SINK.setdefault(token, []).append(element)


def _stage_votes(chunks, history=None, validators=None):
    token = str(len(_SINK))
    _SINK[token] = []
    with TestPipeline(runner="DirectRunner") as p:
        res = (p | beam.Create(chunks)
               | NearDuplicateStage(spec(validators), history or History()))
        _ = res | beam.Map(_sink, token)
        assert_that(res | beam.Keys(), equal_to([k for k, _ in chunks]))
    return _SINK.pop(token)


def test_stage_within_one_input_homoglyph_and_zero_width():
    base = GOOD[4]
    zw = base.replace("pasta", "pa\u200bsta").replace("water", "wat\u200der")
    fullwidth = base.replace("four", "ｆｏｕｒ")  # NFKC folds fullwidth letters
    b1 = batch([base, GOOD[5]], start_us=1_000_000)
    b2 = batch([zw, GOOD[6], fullwidth], contributors=[BOB] * 3, start_us=5_000_000)
    rows = _stage_votes([("c1", b1), ("c2", b2)],
                        validators={"exact_duplicate": {"enabled": False}})
    got = {k: so for k, so in rows}
    v1 = got["c1"].votes.to_pylist()
    v2 = got["c2"].votes.to_pylist()
    assert [v["verdict"] for v in v1] == ["accept", "accept"]
    assert [v["verdict"] for v in v2] == ["reject", "accept", "reject"]
    base_id = b1.column("contribution_id")[0].as_py()
    for v in (v2[0], v2[2]):
        d = json.loads(v["details"])
        assert (v["reason"], d["matched"], d["history"]) == ("near_duplicate", base_id, False)
    assert got["c2"].index["minhash"].num_rows == 3
    assert all(v["validator"] == "near_duplicate" for v in v1 + v2)


def test_exact_copies_left_to_exact_duplicate_when_enabled():
    b = batch([GOOD[0], GOOD[0], _near(GOOD[0])], contributors=["0x" + "c3" * 20, BOB, BOB])
    rows = dict(_stage_votes([("c", b)]))
    verdicts = [v["verdict"] for v in rows["c"].votes.to_pylist()]
    assert verdicts == ["accept", "accept", "reject"]


def test_incremental_against_committed_index(tmp_path):
    first = batch(GOOD[:4], start_us=10_000_000)
    committed = dict(_stage_votes([("a", first)]))
    path = tmp_path / "index" / "minhash" / "batch=1" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(committed["a"].index["minhash"], path)
    # earlier submitted_at than the committed record: history still wins
    second = batch([_near(GOOD[2]), GOOD[7]], contributors=[BOB, BOB], start_us=1)
    rows = dict(_stage_votes([("b", second)], History({"index/minhash": (str(path),)})))
    votes = rows["b"].votes.to_pylist()
    assert [v["verdict"] for v in votes] == ["reject", "accept"]
    d = json.loads(votes[0]["details"])
    assert d["matched"] == first.column("contribution_id")[2].as_py()
    assert d["history"] is True


def test_history_with_other_params_fails_loudly(tmp_path):
    committed = dict(_stage_votes([("a", batch(GOOD[:2]))]))
    path = tmp_path / "part-0.parquet"
    pq.write_table(committed["a"].index["minhash"], path)
    with pytest.raises(Exception, match="index/minhash was built with"):
        _stage_votes([("b", batch(GOOD[2:4]))], History({"index/minhash": (str(path),)}),
                     validators={"near_duplicate": {"seed": 99}})
