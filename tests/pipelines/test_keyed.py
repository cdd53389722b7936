"""The one generic keyed stage: every keyed validator, in Beam and in memory, the same."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.pipelines.keyed import split_by_shard
from datanet.store.history import History
from datanet.validators import registry
from datanet.validators.exact_duplicate import ExactDuplicateConfig, ExactDuplicateValidator
from datanet.validators.keyed import resolve_in_memory, string_keys
from datanet.validators.minhash import MinHashConfig, NearDuplicateValidator
from datanet.validators.spam import FloodConfig, FloodValidator
from tests.pipelines.keyed_helpers import stage_outcome
from tests.validators.records import ALICE, BOB, batch, spec
from tests.validators.texts import GOOD

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "examples" / "validator-plugin" / "src"
CAROL = "0x" + "c3" * 20


def test_split_by_shard_partitions_and_parts_pickle_only_their_rows():
    n = 4000
    rows = pa.table({"shard_key": pa.array(np.arange(n, dtype=np.uint64) * 0x9E3779B97F4A7C15),
                     "payload": ["x" * 100] * n})
    parts = split_by_shard(rows, 16)
    assert [s for s, _ in parts] == list(range(16))
    for shard, part in parts:
        assert set((part.column("shard_key").to_numpy() % 16).tolist()) == {shard}
        # a compact copy: a slice would pickle its parent's whole buffers
        fresh = pa.table(part.to_pydict(), schema=rows.schema)
        assert len(pickle.dumps(part)) < 1.05 * len(pickle.dumps(fresh))
    assert sum(p.num_rows for _, p in parts) == n
    # not compact: the same parts, as slices of one copy sorted by shard
    sliced = split_by_shard(rows, 16, compact=False)
    assert [s for s, _ in sliced] == list(range(16))
    assert all(a.equals(b) for (_, a), (_, b) in zip(parts, sliced, strict=True))
    assert split_by_shard(rows.slice(0, 0), 16, compact=False) == []


def test_string_keys_equal_strings_equal_keys():
    keys = string_keys(pa.chunked_array([pa.array(["ab", "", None]), pa.array(["ab", "b"])]))
    assert keys[0] == keys[3] and keys[1] == keys[2] and len(set(keys.tolist())) == 3


def _variants(n: int) -> list[str]:
    words = GOOD[1].split()
    return [" ".join([*words[:-4], f"variant{i}", *words[-3:]]) for i in range(n)]


def _chunks():
    """Exact copies across chunks, a resubmission, near-duplicates, a flooding contributor."""
    v = _variants(7)
    c1 = batch([GOOD[0], GOOD[2], v[0], v[1], GOOD[3]],
               contributors=[ALICE, ALICE, BOB, BOB, CAROL], source="a.jsonl")
    c2 = batch([GOOD[0], v[2], v[3], GOOD[4], GOOD[2]],
               contributors=[BOB, BOB, BOB, ALICE, ALICE], start_us=1_700_000_100_000_000,
               source="b.jsonl")  # GOOD[2] by ALICE again: the same contribution id
    c3 = batch([v[4], v[5], v[6], GOOD[5] + " Season well.", GOOD[6]],
               contributors=[BOB, BOB, BOB, CAROL, CAROL], start_us=1_600_000_000_000_000,
               source="c.jsonl")
    return [("a.jsonl#0", c1), ("b.jsonl#0", c2), ("c.jsonl#0", c3)]


def _history(tmp_path: Path) -> tuple[History, dict[str, list[tuple[str, pa.Table]]]]:
    """A committed accepted file and index/minhash file holding GOOD[5] (batch 0xB1)."""
    old = batch([GOOD[5]], contributors=[CAROL], start_us=1_500_000_000_000_000)
    accepted = pa.table({"content_hash": old.column("content_hash"),
                         "contribution_id": old.column("contribution_id"),
                         "batch": ["0xB1"], "text": old.column("text")})
    near = NearDuplicateValidator(MinHashConfig(), spec())
    near.setup()
    # as committed: the shingle set is left to the accepted text (not redacted)
    index = near.commit_index("minhash", near.key(old).index["minhash"],
                              old.column("contribution_id"))
    assert index.column("shingles").null_count == 1
    paths = {"accepted": tmp_path / "accepted.parquet", "index/minhash": tmp_path / "mh.parquet"}
    pq.write_table(accepted, paths["accepted"])
    pq.write_table(index, paths["index/minhash"])
    files = {k: (str(p),) for k, p in paths.items()}
    tables = {k: [(str(p), pq.read_table(p))] for k, p in paths.items()}
    batch_of = {str(p): "0xB1" for p in paths.values()}
    return History(files, scratch=str(tmp_path / "scratch"), batch_of=batch_of), tables


@pytest.mark.parametrize("shards", [1, 5])
def test_stage_and_in_memory_agree_for_every_builtin(tmp_path, shards):
    (tmp_path / "scratch").mkdir()
    history, tables = _history(tmp_path)
    chunks = _chunks()
    validators = [ExactDuplicateValidator(ExactDuplicateConfig(shards=shards), spec()),
                  NearDuplicateValidator(MinHashConfig(shards=shards), spec()),
                  FloodValidator(FloodConfig(shards=shards), spec())]
    got = {}
    for v in validators:
        v.setup()
        staged = stage_outcome(v, chunks, history)
        mem_votes, mem_drops = resolve_in_memory(
            v, [b for _, b in chunks], tables.get(v.history_kind or "", []),
            sources={tables["index/minhash"][0][0]: tables["accepted"][0][1]})
        for (key, _), votes, drops in zip(chunks, mem_votes, mem_drops, strict=True):
            assert staged[key].votes.equals(votes), (v.name, key)
            staged_drops = [d.select(["_row", "reason", "message"]) for d in staged[key].drops]
            assert (pa.concat_tables(staged_drops).to_pylist() if staged_drops else []) == \
                drops.to_pylist(), (v.name, key)
        got[v.name] = {k: [(x["verdict"], x["reason"]) for x in o.votes.to_pylist()]
                       for k, o in staged.items()}
        got[v.name + "/drops"] = {k: sum(d.num_rows for d in o.drops) for k, o in staged.items()}
    ok, dup, near, flood = (("accept", None), ("reject", "exact_duplicate"),
                            ("reject", "near_duplicate"), ("reject", "contributor_flood"))
    # exact: GOOD[0] by BOB is a copy of ALICE's; GOOD[5] + " Season well." is not a copy
    assert got["exact_duplicate"] == {"a.jsonl#0": [ok] * 5,
                                      "b.jsonl#0": [dup, ok, ok, ok, ok],
                                      "c.jsonl#0": [ok] * 5}
    assert got["exact_duplicate/drops"] == {"a.jsonl#0": 0, "b.jsonl#0": 1, "c.jsonl#0": 0}
    # near: the variants lose to the earliest (c3 was submitted first); GOOD[5] + a sentence
    # loses to the committed GOOD[5] (history first)
    assert got["near_duplicate"] == {"a.jsonl#0": [ok, ok, near, near, ok],
                                     "b.jsonl#0": [ok, near, near, ok, ok],
                                     "c.jsonl#0": [ok, near, near, near, ok]}
    # flood: BOB has 8 variants (7 near-duplicates of an earlier one of his own) -> all of his
    assert got["flood"] == {"a.jsonl#0": [ok, ok, flood, flood, ok],
                            "b.jsonl#0": [flood, flood, flood, ok, ok],
                            "c.jsonl#0": [flood, flood, flood, ok, ok]}


def test_third_party_keyed_validator_runs_through_datanet_run(tmp_path, monkeypatch):
    """The example plugin's keyed validator (one class: key + resolve) through ``datanet run``:
    against the input, then against the datanet's accepted history."""
    monkeypatch.syspath_prepend(str(PLUGIN_SRC))
    target = "datanet_topic_keywords.repeated_opening:RepeatedOpeningValidator"
    monkeypatch.setattr(registry, "plugin_validators", lambda: {"repeated_opening": target})
    registry.validator_class.cache_clear()
    try:
        opening = "Whisk the eggs with a pinch of salt before you start the omelette. "
        spec_path = tmp_path / "datanet.toml"
        spec_path.write_text('id = "plug"\nname = "Plug"\n'
                             "[validators.repeated_opening]\nmin_chars = 30\n")
        dn = tmp_path / "dn"
        run = CliRunner()
        assert run.invoke(app, ["init", str(dn), "--spec", str(spec_path)]).exit_code == 0

        def submit(name: str, rows: list[tuple[str, str, str]]) -> None:
            path = tmp_path / name
            path.write_text("".join(json.dumps({"contributor": c, "text": t, "submitted_at": s})
                                    + "\n" for c, t, s in rows))
            r = run.invoke(app, ["run", str(dn), str(path), "--no-anchor"])
            assert r.exit_code == 0, r.output

        def votes() -> list[dict]:
            r = run.invoke(app, ["sql", str(dn), "SELECT contribution_id, verdict, reason, "
                                 "details FROM votes WHERE validator = 'repeated_opening' "
                                 "ORDER BY verdict, contribution_id", "--format", "json"])
            assert r.exit_code == 0, r.output
            return json.loads(r.stdout)

        submit("one.jsonl", [(BOB, opening + GOOD[3], "2026-01-02T00:00:00Z"),
                             (ALICE, opening + GOOD[4], "2026-01-01T00:00:00Z"),
                             (CAROL, GOOD[6], "2026-01-03T00:00:00Z")])
        first = votes()
        assert [(v["verdict"], v["reason"]) for v in first] == [
            ("accept", None), ("accept", None), ("reject", "repeated_opening")]
        alice = first[-1]["contribution_id"]  # not ALICE's: she submitted first
        accepted = {v["contribution_id"] for v in first if v["verdict"] == "accept"}
        assert json.loads(first[-1]["details"])["matched"] in accepted
        assert alice not in accepted
        submit("two.jsonl", [(CAROL, opening + GOOD[7], "2025-01-01T00:00:00Z")])
        second = [v for v in votes() if v["contribution_id"] not in {x["contribution_id"]
                                                                      for x in first}]
        # earlier than anything committed, still the committed opening wins (history first)
        assert [(v["verdict"], v["reason"]) for v in second] == [("reject", "repeated_opening")]
        assert json.loads(second[0]["details"])["matched"] == json.loads(
            first[-1]["details"])["matched"]
    finally:
        registry.validator_class.cache_clear()
        sys.modules.pop("datanet_topic_keywords.repeated_opening", None)


def test_what_the_keyed_shuffle_carries_are_file_references(tmp_path):
    """With a run scratch, a chunk's key rows, lookup and index become scratch files: what the
    shuffle carries per (chunk, shard) is a reference of a few hundred bytes, whatever the
    number of records (issue 16: memory bounded by chunks x shards)."""
    from datanet.pipelines.keyed import _KeyChunk

    validator = NearDuplicateValidator(MinHashConfig(shards=4), spec())
    key = _KeyChunk(validator, str(tmp_path))
    key.setup()
    sizes = {}
    for n in (10, 400):
        texts = [f"{GOOD[i % len(GOOD)]} Note {i}." for i in range(n)]
        out = list(key.process((f"c{n}", batch(texts))))
        parts = [item for tag, item in out if tag == "parts"]
        index = [item for tag, item in out if tag == "out"]
        assert sorted(s for s, _ in parts) == [0, 1, 2, 3]
        for _, ref in parts:
            assert isinstance(ref.rows, tuple) and isinstance(ref.lookup, str)
        assert isinstance(index[0][1].index["minhash"], str)
        assert ref.lookup == index[0][1].index["minhash"]  # the index doubles as the lookup
        sizes[n] = len(pickle.dumps(out))
    assert sizes[400] < sizes[10] + 64  # the same references, only longer chunk names
