"""Spam heuristics (one case per reason) and flood control (reference and Beam stage)."""

from __future__ import annotations

import base64
import hashlib
import json

import pyarrow as pa
import pytest

from datanet.errors import SpecError
from datanet.validators.keyed import KeyedValidator, resolve_in_memory
from datanet.validators.registry import validator_class, validator_config
from datanet.validators.spam import (
    FloodConfig,
    FloodValidator,
    SpamConfig,
    SpamValidator,
    char_entropy,
    default_blocklist,
    max_char_run,
)
from tests.pipelines.keyed_helpers import stage_outcome
from tests.validators.records import ALICE, BOB, batch, spec
from tests.validators.texts import GOOD

BASE = GOOD[2]

CASES = [
    ("spam_blocklist", BASE + " Claim your free ETH airdrop: send 0.1 ETH to get double back."),
    ("spam_blocklist", BASE + " Ｃｌａｉｍ your ai\u200brdrop today."),  # fullwidth + zero-width
    ("spam_blocklist", BASE + " DM me on Telegram for the recipe."),
    ("spam_links", BASE + " See knives.com, pans.net, https://deals.org/x and www.promo.io."),
    ("spam_repeated_chars", BASE + " So good!!!!!!!!!!!!"),
    ("spam_repeated_tokens", BASE + " Yummy yummy yummy yummy."),
    ("spam_repeated_tokens", "Cheap pans cheap knives: pans, pans, pans for pans lovers, the "
                             "pans shop has pans and pans and pans."),
    ("spam_all_caps", BASE.upper()),
    ("spam_gibberish", "asdkj qwpoe zmxnc qwe asd zxc poi lkj mnb vcx qaz wsx edc rfv tgb yhn "
                       "ujm ikl olp bnm"),
    ("spam_gibberish", " ".join("ab" * i for i in range(1, 12))),
    ("spam_gibberish", base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest()
                                                 for i in range(5))).decode()),
]


@pytest.mark.parametrize(("reason", "text"), CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                        enumerate(CASES)])
def test_rule_trips_exactly_its_reason(reason, text):
    votes = SpamValidator(SpamConfig()).validate(batch([text, GOOD[0]])).votes.to_pylist()
    assert [(v["verdict"], v["reason"]) for v in votes] == [("reject", reason),
                                                            ("accept", None)]
    solo = SpamValidator(SpamConfig(disable=(reason,))).validate(batch([text])).votes
    assert solo.column("verdict").to_pylist() == ["accept"]


def test_realistic_paragraphs_pass():
    votes = SpamValidator(SpamConfig()).validate(batch(GOOD)).votes
    assert votes.column("verdict").to_pylist() == ["accept"] * len(GOOD)


def test_blocklist_configurable():
    text = BASE + " Try our sous vide club."
    assert SpamValidator(SpamConfig()).validate(batch([text])).votes.column(
        "verdict").to_pylist() == ["accept"]
    cfg = SpamConfig(extra_blocklist=(r"\bsous vide club\b",))
    assert SpamValidator(cfg).validate(batch([text])).votes.column("reason").to_pylist() == [
        "spam_blocklist"]
    only = SpamConfig(blocklist=(r"\bfoil\b",))
    assert SpamValidator(only).validate(batch([GOOD[0], CASES[0][1]])).votes.column(
        "reason").to_pylist() == ["spam_blocklist", None]
    assert len(default_blocklist()) >= 20


def test_helpers_exact_values():
    import pyarrow as pa

    assert max_char_run(pa.array(["abbbc", "", "zz!!!!!"])).tolist() == [3, 0, 5]
    assert char_entropy(pa.array(["aaaa", "abab", ""])).tolist() == [0.0, 1.0, 0.0]


def test_bad_config():
    with pytest.raises(SpecError, match=r"validators\.spam\.max_caps_ratio=2\.0 must be"):
        spec({"spam": {"max_caps_ratio": 2}})
    with pytest.raises(SpecError, match=r"validators\.spam\.blocklist\[0\]='\(' must be a valid"):
        spec({"spam": {"blocklist": ["("]}})


# ------------------------------------------------------------------------------- flood

def _variants(n):
    """``n`` near-duplicate rewrites of one paragraph (one word differs each)."""
    words = GOOD[1].split()
    return [" ".join([*words[:-4], f"variant{i}", *words[-3:]]) for i in range(n)]


def test_flood_reference_record_cap_and_near_duplicate_cluster():
    texts = [*_variants(6), *GOOD[:3], *GOOD[3:6]]
    who = [BOB] * 6 + [ALICE] * 3 + ["0x" + "c3" * 20] * 3
    b = batch(texts, contributors=who)
    v = FloodValidator(FloodConfig(max_records_per_contributor=2), spec())
    votes = v.validate(b).votes.to_pylist()
    assert [x["verdict"] for x in votes] == ["reject"] * 6 + ["accept", "accept", "reject",
                                                              "accept", "accept", "reject"]
    assert json.loads(votes[0]["details"]) == {"kind": "near_duplicates", "count": 5,
                                               "limit": 5}
    assert {x["reason"] for x in votes if x["verdict"] == "reject"} == {"contributor_flood"}
    assert json.loads(votes[8]["details"]) == {"kind": "records", "count": 3, "limit": 2}


def test_flood_clusters_look_alike_copies_as_near_duplicate_does():
    """Six copies of one paragraph, each with Cyrillic look-alikes in a different half of its
    words: as typed they share almost no shingles, folded they are one text, and flood
    counts them as the near-duplicate cluster they are."""
    import numpy as np

    from datanet.privacy.normalise import normalise
    from datanet.validators.minhash import MinHashConfig, MinHasher

    look = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441",
                          "p": "\u0440"})
    words = GOOD[1].split()
    texts = [" ".join(w.translate(look) if (j + i) % 2 else w for j, w in enumerate(words))
             for i in range(6)]
    typed = MinHasher(MinHashConfig()).signatures(normalise(pa.array(texts)))
    assert np.mean(typed[0] == typed[1]) < 0.3  # not near-duplicates as typed
    votes = FloodValidator(FloodConfig(), spec()).validate(
        batch(texts, contributors=[BOB] * 6)).votes
    assert votes.column("verdict").to_pylist() == ["reject"] * 6
    assert json.loads(votes.column("details")[0].as_py()) == {
        "kind": "near_duplicates", "count": 5, "limit": 5}


def test_flood_near_duplicate_threshold_exact():
    six = batch(_variants(6), contributors=[BOB] * 6)
    five = batch(_variants(5), contributors=[BOB] * 5)
    v = FloodValidator(FloodConfig(), spec())
    assert v.validate(six).votes.column("verdict").to_pylist() == ["reject"] * 6
    assert json.loads(v.validate(six).votes.column("details")[0].as_py()) == {
        "kind": "near_duplicates", "count": 5, "limit": 5}
    assert v.validate(five).votes.column("verdict").to_pylist() == ["accept"] * 5


def test_flood_stage_groups_contributor_across_chunks():
    v = _variants(6)
    c1 = batch([v[0], v[1], v[2], GOOD[0]], contributors=[BOB, BOB, BOB, ALICE])
    c2 = batch([v[3], v[4], v[5], GOOD[1]], contributors=[BOB, BOB, BOB, ALICE],
               start_us=1_800_000_000_000_000)
    validator = FloodValidator(FloodConfig(), spec())
    for shards in (1, 3, 32):
        validator = FloodValidator(FloodConfig(shards=shards), spec())
        got = stage_outcome(validator, [("c1", c1), ("c2", c2)])
        for key in ("c1", "c2"):
            votes = got[key].votes.to_pylist()
            assert [x["verdict"] for x in votes] == ["reject"] * 3 + ["accept"]
            assert [x["validator"] for x in votes] == ["flood"] * 4
            assert [x["reason"] for x in votes] == ["contributor_flood"] * 3 + [None]
            assert json.loads(votes[0]["details"]) == {"kind": "near_duplicates", "count": 5,
                                                       "limit": 5}
            assert got[key].drops == [] and got[key].index == {}
    # the in-memory run of the same contract agrees (one batch per chunk)
    mem, _ = resolve_in_memory(validator, [c1, c2])
    assert [t.to_pylist() for t in mem] == [got["c1"].votes.to_pylist(),
                                            got["c2"].votes.to_pylist()]


def test_registered():
    s = spec()
    assert validator_class("spam") is SpamValidator
    assert issubclass(validator_class("flood"), KeyedValidator)
    assert validator_config(s, "flood") == FloodConfig()


def test_flood_hourly_rate():
    texts = [f"{GOOD[i % len(GOOD)]} Note {i}." for i in range(21)]
    v = FloodValidator(FloodConfig(max_near_duplicates=0), spec())
    votes = v.validate(batch(texts, contributors=[BOB] * 21)).votes.to_pylist()
    assert {x["verdict"] for x in votes} == {"reject"}
    assert json.loads(votes[0]["details"]) == {"kind": "rate", "count": 21, "limit": 20}
    assert v.validate(batch(texts[:20], contributors=[BOB] * 20)).votes.column(
        "verdict").to_pylist() == ["accept"] * 20
    # the same 21 records spread over 21 hours are not a flood
    spread = batch(texts, contributors=[BOB] * 21)
    hours = [1_700_000_000_000_000 + i * 3_600_000_001 for i in range(21)]
    import pyarrow as pa

    spread = spread.set_column(3, "submitted_at", pa.array(hours, pa.timestamp("us", tz="UTC")))
    assert v.validate(spread).votes.column("verdict").to_pylist() == ["accept"] * 21


def _datasketch_near_count(sig, minhash) -> int:
    """The near-duplicate count written with datasketch's own MinHashLSH (reference)."""
    import numpy as np
    from datasketch import LeanMinHash, MinHashLSH

    from datanet.validators.minhash import jaccard, lsh_params

    lsh = MinHashLSH(threshold=minhash.threshold, num_perm=minhash.num_perm,
                     params=lsh_params(minhash))
    near = 0
    for i in range(len(sig)):
        if np.all(sig[i] == np.uint32(0xFFFFFFFF)):
            continue
        m = LeanMinHash(seed=minhash.seed, hashvalues=sig[i], scheme="affine32")
        if any(jaccard(sig[i], sig[j]) >= minhash.threshold for j in lsh.query(m)):
            near += 1
        lsh.insert(i, m, check_duplication=False)
    return near


@pytest.mark.parametrize("seed", range(6))
def test_flood_near_duplicate_count_equals_datasketch_lsh(seed):
    import random

    import numpy as np
    import pyarrow as pa

    from datanet.privacy.normalise import normalise
    from datanet.validators._kernels import near_earlier_count
    from datanet.validators.minhash import MinHashConfig, MinHasher, lsh_params

    rng = random.Random(seed)
    words = " ".join(GOOD).split()
    texts = ["", ""]  # records without shingles take no part
    for _ in range(rng.randint(20, 120)):
        if len(texts) > 2 and rng.random() < 0.5:  # an edited copy of an earlier text
            base = rng.choice(texts[2:]).split()
            for _ in range(rng.randint(0, 6)):
                base[rng.randrange(len(base))] = rng.choice(words)
            texts.append(" ".join(base))
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))))
    config = MinHashConfig(threshold=rng.choice([0.5, 0.7, 0.8, 0.9]))
    sig = MinHasher(config).signatures(normalise(pa.array(texts))).astype(np.uint32)
    bands, rows = lsh_params(config)
    got = near_earlier_count(np.ascontiguousarray(sig), bands, rows, float(config.threshold))
    want = _datasketch_near_count(sig, config)
    assert got == want
    assert 0 < want < len(texts)  # the planted copies are found, not every record


@pytest.mark.parametrize("seed", range(5))
def test_top_word_count_kernel_matches_a_sort_of_doc_word_keys(seed):
    """The compiled per-record top word count equals counting ``(doc, word)`` keys with
    ``np.unique`` (what it replaced), including records with no kept word."""
    import numpy as np

    from datanet.validators._kernels import top_count_per_doc

    rng = np.random.default_rng(seed)
    n = 40
    lengths = rng.integers(0, 30, n)
    lengths[::7] = 0  # records without words
    doc = np.repeat(np.arange(n), lengths)
    ids = rng.integers(0, 12, len(doc))
    keep = rng.random(len(doc)) < 0.7
    want = np.zeros(n)
    key = doc[keep] * 12 + ids[keep]
    uniq, counts = np.unique(key, return_counts=True)
    for k, c in zip(uniq, counts, strict=True):
        want[k // 12] = max(want[k // 12], c)
    got, runs = top_count_per_doc(doc, ids, keep, n, 12)
    assert got.tolist() == want.tolist()
    assert (got == 0).any() and got.max() >= 3
    # the longest run of one id, as the numpy run-length code it replaced computed it
    same = np.zeros(len(ids), dtype=bool)
    same[1:] = (ids[1:] == ids[:-1]) & (doc[1:] == doc[:-1])
    run_id = np.cumsum(~same)
    run_len = np.bincount(run_id)[run_id]
    want_runs = np.zeros(n)
    for d, r in zip(doc.tolist(), run_len.tolist(), strict=True):
        want_runs[d] = max(want_runs[d], r)
    assert runs.tolist() == want_runs.tolist()
    assert runs.max() >= 2 and (runs == 0).any()


def test_entropy_has_the_bits_of_the_dense_formula_it_replaced():
    """Byte entropy from the occurring bytes only equals, bit for bit, the dense
    ``-nansum(where(p > 0, p log2 p, 0))`` over all 256 columns (the votes must not move)."""
    import random

    import numpy as np

    from datanet.validators._kernels import byte_stats
    from datanet.validators.textstats import utf8_buffers

    rng = random.Random(5)
    texts = ["", "a", "aaaa", "\x00\x7f", "é" * 40, *GOOD]
    texts += ["".join(chr(rng.choice([rng.randint(32, 126), rng.randint(128, 0x2FFF)]))
                      for _ in range(rng.randint(1, 400))) for _ in range(300)]
    arr = pa.array(texts)
    counts = byte_stats(*utf8_buffers(arr))[0].astype(float)
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    got = char_entropy(arr)
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()
    assert len(set(got.tolist())) > 250
