"""The near-duplicate Beam stage: sharded banding, exact-Jaccard verification, history."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.errors import ValidatorError
from datanet.privacy.evasion import fold_unicode
from datanet.privacy.normalise import normalise_text
from datanet.store.history import History
from datanet.validators.keyed import hex64
from datanet.validators.minhash import (
    MinHashConfig,
    MinHasher,
    NearDuplicateValidator,
    candidate_pairs,
    hash_function,
    jaccard,
    shingles,
)
from datanet.validators.registry import validator_config
from tests.pipelines.keyed_helpers import stage_outcome
from tests.validators.records import BOB, batch, spec
from tests.validators.texts import GOOD


def _near(text: str) -> str:
    """One word changed near the end: Jaccard of 5-shingles stays above 0.8."""
    words = text.split()
    words[-3] = "really"
    return " ".join(words)


def _stage_votes(chunks, history=None, validators=None):
    """``[(chunk, ChunkOutcome)]`` of the near-duplicate validator through the keyed stage."""
    s = spec(validators)
    validator = NearDuplicateValidator(validator_config(s, "near_duplicate"), s)
    return sorted(stage_outcome(validator, chunks, history).items())


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


def _edit(text: str, edits: dict[int, str]) -> str:
    words = text.split()
    for pos, word in edits.items():
        words[pos] = word
    return " ".join(words)


def _true_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(normalise_text(a), MinHashConfig())), set(
        shingles(normalise_text(b), MinHashConfig()))
    return len(sa & sb) / len(sa | sb)


def test_exact_jaccard_decides_where_the_estimate_disagrees():
    # found by search over word edits of the fixture texts (128 perms, seed 1, 16 x 8 bands)
    below = _edit(GOOD[1], {2: "really", 14: "truly"})  # exact 0.7838, estimated 0.8438
    above = _edit(GOOD[0], {18: "really"})  # exact 0.8276, estimated 0.7422
    texts = [GOOD[0], GOOD[1], below, above]
    sig = MinHasher(MinHashConfig()).signatures(pa.array([normalise_text(t) for t in texts]))
    assert (jaccard(sig[1], sig[2]), round(_true_jaccard(GOOD[1], below), 4)) == (0.84375, 0.7838)
    assert (jaccard(sig[0], sig[3]), round(_true_jaccard(GOOD[0], above), 4)) == (0.7421875, 0.8276)
    b = batch(texts)
    votes = dict(_stage_votes([("c", b)]))["c"].votes.to_pylist()
    assert [v["verdict"] for v in votes] == ["accept", "accept", "accept", "reject"]
    assert votes[3]["score"] == round(_true_jaccard(GOOD[0], above), 6)
    assert json.loads(votes[3]["details"]) == {
        "matched": b.column("contribution_id")[0].as_py(), "jaccard": 0.8276,
        "estimated_jaccard": 0.7422, "history": False}
    # the in-memory reference validator verifies the same way
    v = NearDuplicateValidator(MinHashConfig(), spec())
    v.setup()
    ref = v.validate(b).votes.to_pylist()
    assert [v["verdict"] for v in ref] == ["accept", "accept", "accept", "reject"]
    assert json.loads(ref[3]["details"])["jaccard"] == 0.8276


def test_best_ranked_verified_match_wins_and_shards_do_not_matter():
    earliest = _edit(GOOD[1], {2: "really", 14: "truly"})  # candidate, exact 0.7838: no match
    middle = _edit(GOOD[1], {50: "really"})
    assert round(_true_jaccard(GOOD[1], earliest), 4) == 0.7838
    assert _true_jaccard(GOOD[1], middle) >= 0.8 > _true_jaccard(earliest, middle)
    c1 = batch([GOOD[1], GOOD[3]], start_us=50_000_000)
    c2 = batch([earliest, middle], contributors=[BOB, BOB], start_us=1_000_000)
    outs = []
    for shards in (1, 7, 32):
        rows = dict(_stage_votes([("c1", c1), ("c2", c2)],
                                 validators={"near_duplicate": {"shards": shards}}))
        outs.append({k: v.votes.to_pylist() for k, v in rows.items()})
    assert outs[0] == outs[1] == outs[2]
    got = outs[0]
    assert [v["verdict"] for v in got["c2"]] == ["accept", "accept"]
    assert [v["verdict"] for v in got["c1"]] == ["reject", "accept"]
    d = json.loads(got["c1"][0]["details"])
    assert d["matched"] == c2.column("contribution_id")[1].as_py()
    assert d["jaccard"] == round(_true_jaccard(GOOD[1], middle), 4)


def test_history_without_shingle_sets_fails_with_a_clear_message(tmp_path):
    committed = dict(_stage_votes([("a", batch(GOOD[:2]))]))
    path = tmp_path / "part-0.parquet"
    pq.write_table(committed["a"].index["minhash"].drop_columns(["shingles"]), path)
    with pytest.raises(Exception, match="index/minhash has no 'shingles' column"):
        _stage_votes([("b", batch(GOOD[2:4]))], History({"index/minhash": (str(path),)}))


def test_candidate_pairs_ranks_history_first_and_skips_copies():
    # rows: 0 new t=5, 1 history t=9, 2 new t=1 (copy of 0's content), 3 new t=7, 4 other band
    band = np.array([1, 1, 1, 1, 2], dtype=np.uint64)
    new = np.array([True, False, True, True, True])
    ts = np.array([5, 9, 1, 7, 0])
    id64 = np.array([10, 11, 12, 13, 14], dtype=np.uint64)
    ch64 = np.array([100, 101, 100, 103, 104], dtype=np.uint64)
    later, earlier, capped = candidate_pairs(band, new, ts, id64, ch64, skip_exact=True)
    # rank order in band 1: 1 (history), 2, 0, 3; 0 is a copy of 2 (not a candidate)
    assert list(zip(later.tolist(), earlier.tolist(), strict=True)) == [
        (0, 1), (2, 1), (3, 1), (3, 2)]
    assert capped == 0
    later, earlier, capped = candidate_pairs(band, new, ts, id64, ch64, skip_exact=False)
    assert list(zip(later.tolist(), earlier.tolist(), strict=True)) == [
        (0, 1), (0, 2), (2, 1), (3, 1), (3, 2)]
    # only the best-ranked earlier text of each bucket: 3 is not paired with 2 any more
    later, earlier, capped = candidate_pairs(band, new, ts, id64, ch64, skip_exact=True,
                                             max_candidates=1)
    assert list(zip(later.tolist(), earlier.tolist(), strict=True)) == [(0, 1), (2, 1), (3, 1)]
    assert capped == 2  # (3, 2) and (0, 2), counted before the copy filter


def test_hex64_and_shingle_sets():
    ids = pa.array(["0x" + "0123456789abcdef" + "f" * 48, "0xFFFFFFFFFFFFFFFF" + "0" * 48])
    assert hex64(ids.slice(1)).tolist() == [0xFFFFFFFFFFFFFFFF]
    assert hex64(ids).tolist() == [0x0123456789ABCDEF, 0xFFFFFFFFFFFFFFFF]
    config = MinHashConfig()
    texts = [normalise_text(t) for t in (GOOD[0], "", "a b c a b c a b c")]
    _, sets = MinHasher(config).sketch(pa.array(texts))
    fn = hash_function(config)
    assert sets.to_pylist() == [sorted({fn(s) for s in shingles(t, config)}) for t in texts]
    assert [len(s) for s in sets.to_pylist()] == [len(set(shingles(texts[0], config))), 0, 3]


def test_index_rows_spill_to_the_runs_scratch(tmp_path):
    """With a scratch directory every table travels as a spilled file: same votes, same rows,
    and what the shuffle carries are file references."""
    base = GOOD[4]
    chunks = [("c1", batch([base, GOOD[5]], start_us=1_000_000)),
              ("c2", batch([_near(base), GOOD[6]], contributors=[BOB] * 2, start_us=5_000_000))]
    in_memory = dict(_stage_votes(chunks))
    spilled = dict(_stage_votes(chunks, History(scratch=str(tmp_path))))
    # per chunk: its index (also the lookup) and its key rows; per shard with a vote: one file
    names = sorted(p.name.split("-", 1)[1] for p in tmp_path.iterdir())
    assert names.count("near_duplicate-minhash.arrow") == 2
    assert names.count("near_duplicate-rows.arrow") == 2
    assert set(names) == {"keyed-votes.arrow", "near_duplicate-minhash.arrow",
                          "near_duplicate-rows.arrow"}
    for key in ("c1", "c2"):
        assert spilled[key].votes.to_pylist() == in_memory[key].votes.to_pylist()
        assert spilled[key].index["minhash"].equals(in_memory[key].index["minhash"])
    assert [v["verdict"] for v in spilled["c2"].votes.to_pylist()] == ["reject", "accept"]


def test_index_keeps_band_hashes_and_signature_era_indexes_vote_alike(tmp_path):
    """``index/minhash`` stores the 16 band hashes (128 bytes) instead of the 512-byte
    signature; an index written with signatures gives the very same votes, and the
    estimated Jaccard recomputed from stored shingle sets is the signatures' own."""
    config = MinHashConfig()
    hasher = MinHasher(config)
    first = batch([*GOOD[:4], ""], start_us=10_000_000)
    index = dict(_stage_votes([("a", first)]))["a"].index["minhash"]
    assert "signature" not in index.column_names
    sig = hasher.signatures(fold_unicode(first.column("text_norm")))
    assert (hasher.set_signatures(index.column("shingles")) == sig).all()
    bands = hasher.band_hashes(sig)
    assert index.column("bands").to_pylist() == [r.astype("<u8").tobytes() for r in bands]
    assert {len(b) for b in index.column("bands").to_pylist()} == {8 * hasher.bands} == {128}
    old = index.drop_columns(["bands"]).add_column(
        3, "signature", pa.array([r.astype("<u4").tobytes() for r in sig], pa.binary()))
    second = batch([_near(GOOD[2]), GOOD[7], ""], contributors=[BOB] * 3, start_us=1)
    got = []
    for name, table in (("new", index), ("old", old)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        got.append(dict(_stage_votes([("b", second)],
                                     History({"index/minhash": (str(path),)})))["b"].votes)
    assert got[0].to_pylist() == got[1].to_pylist()
    votes = got[0].to_pylist()
    assert [v["verdict"] for v in votes] == ["reject", "accept", "accept"]
    d = json.loads(votes[0]["details"])
    near = hasher.signatures(fold_unicode(second.column("text_norm")))[0]
    assert d["matched"] == first.column("contribution_id")[2].as_py() and d["history"]
    assert d["estimated_jaccard"] == round(float(np.mean(near == sig[2])), 4)


def test_committed_index_leaves_sets_to_the_accepted_text(tmp_path):
    """Committed shingle sets are null where the accepted text gives them back; a redacted
    record and a text without shingles keep theirs; a search against that history votes
    exactly as against the full index, and a row its accepted files lack fails loudly."""
    s = spec()
    near = NearDuplicateValidator(validator_config(s, "near_duplicate"), s)
    near.setup()
    first = batch([*GOOD[:4], ""], start_us=10_000_000)
    full = dict(_stage_votes([("a", first)]))["a"].index["minhash"]
    ids = first.column("contribution_id")
    # record 3 was redacted: its stored text is not the text it was validated with
    redacted = GOOD[3].replace(GOOD[3].split()[1], "<PERSON>")
    committed = near.commit_index("minhash", full,
                                  ids.filter(pa.array([True, True, True, False, True])))
    sets = committed.column("shingles").to_pylist()
    assert [x is None for x in sets] == [True, True, True, False, False]
    assert sets[3] == full.column("shingles")[3].as_py() and sets[4] == []
    assert committed.drop_columns(["shingles"]).equals(full.drop_columns(["shingles"]))
    accepted = pa.table({"contribution_id": ids,
                         "text": [*GOOD[:3], redacted, ""]})
    paths = {k: tmp_path / f"{k.replace('/', '-')}.parquet" for k in ("index/minhash",
                                                                      "accepted")}
    pq.write_table(accepted, paths["accepted"])
    second = batch([_near(GOOD[2]), _near(GOOD[3]), GOOD[7]], contributors=[BOB] * 3,
                   start_us=1)
    got = []
    for table in (full, committed):
        pq.write_table(table, paths["index/minhash"])
        history = History({k: (str(p),) for k, p in paths.items()},
                          batch_of={str(p): "0xB1" for p in paths.values()})
        got.append(dict(_stage_votes([("b", second)], history))["b"].votes.to_pylist())
    assert got[0] == got[1]
    assert [v["verdict"] for v in got[1]] == ["reject", "reject", "accept"]
    assert [json.loads(v["details"])["matched"] for v in got[1][:2]] == \
        [ids[2].as_py(), ids[3].as_py()]
    # the recomputed set is the one key() computed from the validated text
    back = near.complete_history(committed, lambda: accepted)
    assert back.column("shingles").to_pylist()[:3] == full.column("shingles").to_pylist()[:3]
    with pytest.raises(ValidatorError, match=f"index/minhash row {ids[0].as_py()} has no "
                                             "shingle set"):
        near.complete_history(committed, lambda: accepted.slice(1))


def test_bucket_orders_equal_the_lexsorts_they_replace():
    """The radix sort by band with each group ordered alone gives numpy's two lexsorts
    exactly: ties on every key, groups of one, a few, and many rows (a batch of identical
    texts: the large-group path, stable merge sorts)."""
    from datanet.validators._kernels import bucket_orders

    rng = np.random.default_rng(9)
    for n, bands, spread in ((1, 1, 1), (2, 1, 1), (500, 300, 3), (3000, 40, 4),
                             (2000, 2, 2), (4000, 1, 1000)):
        band = rng.integers(0, bands, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        new = rng.random(n) < 0.7
        ts = rng.integers(0, spread, n).astype(np.int64)
        id64 = rng.integers(0, spread, n).astype(np.uint64) << np.uint64(60)
        ch64 = rng.integers(0, spread, n).astype(np.uint64) << np.uint64(63 - spread % 7)
        order, by_content = bucket_orders(band, new, ts, id64, ch64)
        want = np.lexsort((id64, ts, new, band))
        assert order.tolist() == want.tolist(), n
        want_c = np.lexsort((np.arange(n), ch64[want], band[want]))
        assert by_content.tolist() == want_c.tolist(), n
    empty = np.zeros(0, np.uint64)
    order, by_content = bucket_orders(empty, np.zeros(0, bool), np.zeros(0, np.int64), empty,
                                      empty)
    assert len(order) == len(by_content) == 0
