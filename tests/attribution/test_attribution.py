"""Matching, weights, offsets, snapshots and shards on small handmade datanets."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.anchoring.history import check_attribution_shard
from datanet.anchoring.merkle import StandardMerkleTree
from datanet.attribution import AttributionIndex, attribute
from datanet.attribution.index import build_shard, index_missing, shard_entry
from datanet.attribution.tokens import gram_hashes, output_tokens, record_grams
from datanet.errors import SpecError, StoreError
from datanet.schemas.spec import parse_spec
from datanet.store.layout import init_datanet
from datanet.validators._kernels import group_by_top_bits
from tests.attribution.helpers import commit_texts
from tests.conftest import ADDRS, TINY_SPEC

GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa"  # 10 tokens
OTHER = "sourdough starter needs feeding twice a day with equal weights of flour and water"
BOILER = "please remember to wash your hands before you start cooking anything"  # 11 tokens


@pytest.fixture
def store(tmp_path):
    return init_datanet(tmp_path / "dn", TINY_SPEC)


def _words(n, tag):
    return " ".join(f"{tag}{i}" for i in range(n))


def test_exact_span_weight_and_offsets(store):
    commit_texts(store, [f"Intro words. {GREEK}. The end.", OTHER])
    text = f"x y {GREEK} z"
    (r,) = attribute(store, [text])
    start = text.index("alpha")
    assert [(a.weight, a.spans) for a in r.attributions] == [
        (round(10 / 13, 12), ((start, start + len(GREEK)),))]
    assert r.unattributed == round(1 - round(10 / 13, 12), 12)
    assert r.tokens == 13
    assert r.snapshot.records == 2 and r.snapshot.seq == 1


def test_recased_respaced_homoglyph_quote_matches(store):
    commit_texts(store, [GREEK, OTHER])
    # Cyrillic 'а' (U+0430) and 'е' (U+0435), fullwidth 'ＢＥＴＡ', a zero-width space, tabs
    quote = "ALPHA  ＢＥＴＡ\tgаmma\u200b DELTA, еpsilon;  Zeta eta...theta IOTA kappa"
    (r,) = attribute(store, [quote])
    (a,) = r.attributions
    assert a.weight == 1.0 and r.unattributed == 0.0
    assert a.spans == ((0, len(quote)),)


def test_lightly_edited_quote_gives_two_spans(store):
    words = _words(20, "w")
    commit_texts(store, [words, OTHER])
    edited = words.replace("w10", "CHANGED")
    (r,) = attribute(store, [edited])
    (a,) = r.attributions
    t = edited
    assert [t[s:e] for s, e in a.spans] == [_words(10, "w"),
                                            " ".join(f"w{i}" for i in range(11, 20))]
    assert a.weight == round(19 / 20, 12)
    # with min_span 10, the 9-token tail no longer counts
    (r10,) = attribute(store, [edited], min_span=10)
    assert r10.attributions[0].weight == round(10 / 20, 12)


def test_boilerplate_held_by_many_records_gets_little(store):
    texts = [f"{BOILER} {_words(6, f'r{i}x')}" for i in range(30)]
    texts += [_words(12, f"u{i}y") for i in range(10)]
    commit_texts(store, texts)
    unique = _words(12, "u3y")
    (r,) = attribute(store, [f"{unique} {BOILER}"])
    n_total, holders = 40, 30
    w = math.log((n_total + 1) / holders) / math.log(n_total + 1)
    top, *rest = r.attributions
    assert top.weight == round(12 / 23, 12)
    assert len(rest) == 30
    assert {a.weight for a in rest} == {round(w / holders * 11 / 23, 12)}
    assert rest[0].weight < 0.002
    assert math.isclose(r.unattributed + sum(a.weight for a in r.attributions), 1.0,
                        abs_tol=1e-9)


def test_unrelated_text_gets_nothing(store):
    commit_texts(store, [GREEK, OTHER])
    results = attribute(store, ["the weather was lovely and we walked along the coast all day",
                                "alpha beta gamma", ""])
    assert [(r.attributions, r.unattributed) for r in results] == [((), 1.0)] * 3


def test_short_overlap_below_min_span_is_not_credited(store):
    commit_texts(store, [_words(20, "w")])
    (r,) = attribute(store, [_words(7, "w") + " other tokens follow here now"])
    assert r.attributions == ()


def test_as_of_uses_shards_up_to_that_batch(store):
    commit_texts(store, [GREEK])
    commit_texts(store, [OTHER])
    both = f"{GREEK} and {OTHER}"
    now = attribute(store, [both])[0]
    then = attribute(store, [both], as_of=1)[0]
    assert len(now.attributions) == 2 and now.snapshot.seq == 2
    assert len(then.attributions) == 1 and then.snapshot.seq == 1
    assert then.attributions[0].weight == round(10 / 25, 12)
    with pytest.raises(StoreError, match="no such batch"):
        AttributionIndex(store, as_of=7)


def test_incremental_shards_equal_one_full_build(tmp_path):
    batches = [[GREEK, OTHER], [f"{BOILER} one", _words(15, "q")], [f"{BOILER} two"]]
    who = {t: ADDRS[i] for i, t in enumerate(t for b in batches for t in b)}
    inc = init_datanet(tmp_path / "inc", TINY_SPEC)
    for b in batches:
        commit_texts(inc, b, contributors=[who[t] for t in b])
    full = init_datanet(tmp_path / "full", TINY_SPEC)
    commit_texts(full, list(who), contributors=list(who.values()))
    outputs = [f"{GREEK} {BOILER} {_words(15, 'q')}", f"so {OTHER}", "nothing at all here"]

    def key(results):
        return [[(a.contribution_id, a.weight, a.spans) for a in r.attributions]
                for r in results]

    assert key(attribute(inc, outputs)) == key(attribute(full, outputs))
    boiler = round(math.log(6 / 2) / math.log(6) / 2 * 11 / 36, 12)  # N = 5 records
    assert [a.weight for a in attribute(inc, outputs)[0].attributions] == [
        round(15 / 36, 12), round(10 / 36, 12), boiler, boiler]


def test_records_rejected_later_never_appear(store):
    commit_texts(store, [GREEK, OTHER])
    cid = attribute(store, [GREEK])[0].attributions[0].contribution_id
    commit_texts(store, [], rejected_ids=[cid])
    (r,) = attribute(store, [GREEK])
    assert r.attributions == () and r.snapshot.records == 1
    assert attribute(store, [GREEK], as_of=1)[0].attributions[0].contribution_id == cid


def test_min_span_below_ngram_and_bad_spec_values(store):
    commit_texts(store, [GREEK])
    with pytest.raises(SpecError, match="min_span=4 must be >= the index n-gram length"):
        attribute(store, [GREEK], min_span=4)
    with pytest.raises(SpecError, match=r"attribution.min_span=6 must be >= attribution.ngram"):
        parse_spec({"id": "x", "attribution": {"min_span": 6}})
    with pytest.raises(SpecError, match=r"attribution.ngram=1 must be between 2 and 64"):
        parse_spec({"id": "x", "attribution": {"ngram": 1, "min_span": 8}})


def test_shard_bytes_are_deterministic_and_sorted():
    texts = pa.array([GREEK, OTHER, f"{GREEK} {GREEK}", None, "short"])
    a, meta = build_shard(texts, 8)
    b, _ = build_shard(texts, 8)
    assert a == b
    assert meta["records"] == 5 and meta["tokens"] == 10 + 14 + 20 + 0 + 1
    table = pa.ipc.open_file(pa.BufferReader(a)).read_all()
    grams = table["gram"].to_numpy()
    assert (grams[1:] >= grams[:-1]).all()
    # record 2 repeats GREEK: its 3 repeated 8-grams are stored once; 3 + 7 + 13 - 3 pairs
    assert meta["grams"] == 3 + 7 + 10


def test_output_tokens_match_record_tokens():
    text = "Ｈｅｌｌｏ, ᴡorld — it's 2026!"
    toks = output_tokens(text)
    assert [text[s:e] for s, e in toks.spans] == ["Ｈｅｌｌｏ", "ᴡorld", "it", "s", "2026"]
    grams, _, n = record_grams(pa.array(["hello world it s 2026"]), 5)
    assert n == 5
    q, _ = gram_hashes(toks.hashes, np.array([0, 5]), 5)
    assert q.tolist() == grams.tolist()


def test_datanet_index_for_batches_that_predate_it(store):
    m = commit_texts(store, [GREEK, OTHER])
    path = store.root / "batches" / f"{m.seq:08d}-{m.batch_id}.json"
    data = json.loads(path.read_text())
    shard_path = data["files"].pop("attribution")[0]["path"]
    path.write_text(json.dumps(data))
    (store.root / shard_path).unlink()
    (legacy,) = store.manifests()
    assert shard_entry(store, legacy) is None
    with pytest.raises(StoreError, match="run `datanet index"):
        attribute(store, [GREEK])
    built = index_missing(store)
    assert [seq for seq, _ in built] == [1]
    assert index_missing(store) == []
    assert attribute(store, [GREEK])[0].attributions[0].weight == 1.0
    problems: list[str] = []
    assert check_attribution_shard(store, legacy, problems) is None and problems == []
    # a tampered shard is reported by the history check
    shard = Path(store.abs(built[0][1].path))
    raw = bytearray(shard.read_bytes())
    raw[-40] ^= 1
    shard.write_bytes(bytes(raw))
    check_attribution_shard(store, legacy, problems)
    assert problems == [f"batch 1: attribution shard {built[0][1].path} does not match the "
                        "sha256 / size its manifest names"]


def test_shard_built_in_parts_equals_one_array():
    texts = [GREEK, OTHER, f"{GREEK} {GREEK}", None, "short", BOILER, f"{BOILER} {GREEK}"]
    whole, meta = build_shard(pa.array(texts), 8)
    parts, meta_parts = build_shard(iter([pa.array(texts[:3]), pa.array(texts[3:5]),
                                          pa.array(texts[5:])]), 8)
    assert bytes(whole) == bytes(parts) and meta == meta_parts
    assert meta["records"] == 7
    # one array per record: more arrays than the pool keeps in flight, rows still in order
    forked, meta_forked = build_shard(iter([pa.array([t], pa.string()) for t in texts]), 8,
                                       workers=2)
    assert bytes(forked) == bytes(whole) and meta_forked == meta


def test_pairs_grouped_by_top_bits_equal_a_stable_sort_of_the_top_bits():
    rng = np.random.default_rng(3)
    # few distinct tops (many ties: the arrival order must hold within a group), and none
    keys = (rng.integers(0, 6, 5000, dtype=np.uint64) << np.uint64(56)) | rng.integers(
        0, 1 << 40, 5000, dtype=np.uint64)
    vals = np.arange(5000, dtype=np.uint32)
    for k, v in ((keys, vals), (keys[:0], vals[:0])):
        got_k, got_v, counts = group_by_top_bits(k.copy(), v.copy(), 8)
        order = np.argsort((k >> np.uint64(56)).astype(np.uint8), kind="stable")
        assert got_k.tolist() == k[order].tolist() and got_v.tolist() == v[order].tolist()
        assert counts.tolist() == np.bincount(k >> np.uint64(56), minlength=256).tolist()


def _corpus(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(300)]
    return [" ".join(rng.choice(vocab, size=int(rng.integers(5, 40)))) for _ in range(n)]


def test_a_large_batch_is_built_by_spilling_buckets_with_the_same_pairs(tmp_path, monkeypatch):
    from datanet.attribution import index as index_mod

    texts = pa.array(_corpus(400))
    whole, meta = build_shard(texts, 8)
    monkeypatch.setattr(index_mod, "IN_MEMORY_PAIRS", 500)
    spilled, meta_spilled = build_shard(iter([texts.slice(i, 50) for i in range(0, 400, 50)]),
                                        8, spill_dir=tmp_path)
    again, _ = build_shard(texts, 8, spill_dir=tmp_path)
    # n-grams grouped by bucket in forked workers, buckets sorted on the pool: same bytes
    forked, meta_forked = build_shard(iter([texts.slice(i, 50) for i in range(0, 400, 50)]),
                                      8, spill_dir=tmp_path, workers=2)
    assert bytes(spilled) == bytes(again) == bytes(forked)
    assert meta_spilled == meta_forked == meta
    assert list(tmp_path.iterdir()) == []  # spill files removed
    one = pa.ipc.open_file(pa.BufferReader(whole))
    many = pa.ipc.open_file(pa.BufferReader(spilled))
    assert one.num_record_batches == 1 and many.num_record_batches > 100
    a, b = one.read_all(), many.read_all()
    assert b["gram"].to_pylist() == a["gram"].to_pylist()
    assert b["row"].to_pylist() == a["row"].to_pylist()
    # each part holds one spill bucket: the top 8 bits of its grams
    tops = {int(batch.column(0)[0].as_py()) >> 56 for batch in
            (many.get_batch(i) for i in range(many.num_record_batches))}
    assert len(tops) == many.num_record_batches


def test_attribution_over_a_spilled_shard_equals_one_part(tmp_path, monkeypatch):
    from datanet.attribution import index as index_mod

    texts = _corpus(300)
    plain = init_datanet(tmp_path / "plain", TINY_SPEC)
    commit_texts(plain, texts)
    monkeypatch.setattr(index_mod, "IN_MEMORY_PAIRS", 400)
    spilled = init_datanet(tmp_path / "spilled", TINY_SPEC)
    (m,) = [commit_texts(spilled, texts)]
    entry = shard_entry(spilled, m)
    assert len(index_mod.load_shard(spilled, m, entry).parts) > 100
    assert list((spilled.root / "_runs").iterdir()) == []
    problems: list[str] = []
    assert check_attribution_shard(spilled, m, problems) is None and problems == []
    outputs = [texts[5], f"{texts[7]} and then {texts[9]}", texts[11][:60], "w1 w2 w3"]
    got = [(r.attributions, r.unattributed) for r in attribute(spilled, outputs)]
    want = [(r.attributions, r.unattributed) for r in attribute(plain, outputs)]
    assert got == want
    assert sum(len(a) for a, _ in got) > 3


def test_batch_fold_of_record_texts_equals_each_texts_clean_fold():
    """The index folds a column at once (the batch homoglyph fold, then the blanking of what
    stays non-ASCII); each row is what the per-text fold used for outputs gives, so a model
    output and the record it quotes meet in the same tokens."""
    from datanet.attribution.tokens import _fold_rows, clean_folded

    texts = ["plain ascii", "Ｃａｌｌ ｍｅ ａｔ ５５５", "p\u0430ypal l\u043egin",
             "e\u0301t\u00e9 caf\u00e9",
             "\u200bzero\u200d width", "\u01c5 \u00df \u1e9e \u0130 \u0131 \u017f \u212a",
             "\u0661\u0662\u0663 digits", "\U0001f600 emoji \u2014 dash", None, "",
             "mixed\u00a0space \u201cquoted\u201d"]
    got = _fold_rows(pa.array(texts)).to_pylist()
    assert got == [None if t is None else clean_folded(t).text for t in texts]
    assert got[1] == "Call me at 555" and got[2] == "paypal login"


def _fmix64(h: int) -> int:
    m = (1 << 64) - 1
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & m
    h ^= h >> 33
    h = (h * 0xC4CEB93FE1A85EC5) & m
    return h ^ (h >> 33)


def _reference_grams(text: str, k: int) -> list[int]:
    """The scheme the module documents, written out for ASCII text: tokens are runs of
    letters and digits, lower-cased, FNV-1a 64 then fmix64; a k-gram is sum(tok_j *
    P**(k-1-j)) mod 2**64, then fmix64."""
    m = (1 << 64) - 1
    toks = []
    for word in re.findall(r"[A-Za-z0-9]+", text):
        h = 0xCBF29CE484222325
        for b in word.lower().encode():
            h = ((h ^ b) * 0x100000001B3) & m
        toks.append(_fmix64(h))
    out = []
    for i in range(len(toks) - k + 1):
        h = 0
        for t in toks[i:i + k]:
            h = (h * 0x9E3779B97F4A7C15 + t) & m
        out.append(_fmix64(h))
    return out


@pytest.mark.parametrize("k", [2, 3, 8])
def test_record_grams_follow_the_documented_hash_scheme(k):
    rng = random.Random(k)
    alphabet = "abcXYZ019 ,.-'\n\t!"
    texts = ["", "one", "Two words", " lead and trail ", "a-b-c-d-e-f-g-h-i-j"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
              for _ in range(300)]
    grams, rows, n_tokens = record_grams(pa.array(texts), k)
    want = [(g, r) for r, t in enumerate(texts) for g in _reference_grams(t, k)]
    assert list(zip(grams.tolist(), rows.tolist(), strict=True)) == want
    assert n_tokens == sum(len(re.findall(r"[A-Za-z0-9]+", t)) for t in texts)
    for text in texts[:60]:  # a model output: same hashes, and each token's span
        toks = output_tokens(text)
        words = list(re.finditer(r"[A-Za-z0-9]+", text))
        assert [tuple(s) for s in toks.spans.tolist()] == [w.span() for w in words]
        q, _ = gram_hashes(toks.hashes, np.array([0, len(toks)]), k)
        assert q.tolist() == _reference_grams(text, k)


def test_write_shard_runs_its_alongside_job_on_a_helper_thread_once_sorted(store):
    """The commit's tree job runs beside the shard's write: on the helper thread, after the
    pairs are sorted (the shard file does not exist yet), and the shard is the same bytes."""
    import threading

    from datanet.attribution.index import write_shard

    m = commit_texts(store, [GREEK, OTHER])
    accepted = list(m.files["accepted"])
    (plain,) = m.files["attribution"]
    Path(store.abs(plain.path)).unlink()
    seen: list[tuple[str, bool]] = []

    def job() -> None:
        seen.append((threading.current_thread().name,
                     Path(store.abs(plain.path)).exists()))

    entry = write_shard(store, m.batch_id, accepted, alongside=job)
    assert entry == plain and Path(store.abs(plain.path)).exists()
    assert len(seen) == 1 and seen[0][0].startswith("datanet-commit") and seen[0][1] is False

    def boom() -> None:
        raise ValueError("tree job failed")

    with pytest.raises(ValueError, match="tree job failed"):
        write_shard(store, m.batch_id, accepted, alongside=boom)
    # no text column: nothing to index, the job still runs (on the calling thread)
    seen.clear()
    part = store.abs(accepted[0].path)
    pq.write_table(pq.read_table(part).drop(["text"]), part)
    assert write_shard(store, m.batch_id, accepted, alongside=job) is None
    assert [name for name, _ in seen] == [threading.current_thread().name]


def test_commit_builds_the_tree_beside_the_shard_up_to_a_bound(store, monkeypatch):
    import threading

    import datanet.store.layout as layout

    names: list[str] = []

    def note() -> None:
        names.append(threading.current_thread().name)

    m = commit_texts(store, [GREEK, OTHER], on_tree=note)
    monkeypatch.setattr(layout, "COMMIT_OVERLAP_LEAVES", 1)  # two records: above the bound
    m2 = commit_texts(store, [_words(12, "w"), _words(12, "v")], on_tree=note)
    assert names[0].startswith("datanet-commit") and names[1] == threading.current_thread().name
    for manifest in (m, m2):
        tree = StandardMerkleTree.loads(
            (store.root / "trees" / f"{manifest.batch_id}.json").read_text())
        assert tree.root == manifest.merkle_root and len(tree) == manifest.leaf_count == 2
