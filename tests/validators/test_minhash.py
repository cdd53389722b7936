"""MinHash signatures (datasketch bit-identity), the reference validator and the Beam stage."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from datanet.errors import SpecError
from datanet.schemas.config import config_from_mapping
from datanet.validators.keyed import KeyedValidator
from datanet.validators.minhash import (
    MinHashConfig,
    MinHasher,
    NearDuplicateValidator,
    exact_jaccard,
    hash_function,
    lsh_params,
    shingles,
)
from datanet.validators.registry import enabled_validators
from tests.validators.records import batch, spec
from tests.validators.texts import GOOD

CONFIGS = [
    MinHashConfig(),
    MinHashConfig(hash="sha1"),
    MinHashConfig(shingle="char", shingle_size=5),
    MinHashConfig(shingle="char", hash="sha1", num_perm=64, seed=7, lowercase=False),
    MinHashConfig(shingle_size=3, num_perm=256, seed=42),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.shingle}-{c.hash}-{c.num_perm}")
def test_signatures_bit_identical_to_datasketch(config):
    texts = [*GOOD[:6], "", "Too short", "Ünïcödé façade — naïve café… 42 °C",
             "one two three four five six"]
    sig = MinHasher(config).signatures(pa.array(texts))
    for i, text in enumerate(texts):
        m = MinHash(num_perm=config.num_perm, seed=config.seed, hashfunc=hash_function(config))
        m.update_batch(shingles(text, config))
        np.testing.assert_array_equal(sig[i], m.hashvalues)
    assert sig.dtype == np.uint32
    assert (sig[6] == 0xFFFFFFFF).all()  # no shingles: datasketch's empty MinHash


def test_default_lsh_params_are_datasketch_optimum():
    assert lsh_params(MinHashConfig()) == (16, 8)
    assert lsh_params(MinHashConfig(false_positive_weight=0.5, false_negative_weight=0.5)) == (
        9, 13)
    assert lsh_params(MinHashConfig(bands=20, rows=5)) == (20, 5)


def test_lsh_optimum_and_permutations_are_datasketch_own():
    """Gauss-Legendre (exact for these polynomials) picks the (b, r) scipy's quad does."""
    from datasketch.lsh import _optimal_param

    from datanet.validators.minhash import _optimal, _permutations

    grid = [(t / 10, n, w) for n in (32, 128, 256) for t in range(1, 10)
            for w in ((0.5, 0.5), (0.05, 0.95), (0.9, 0.1))]
    assert [_optimal(t, n, w) for t, n, w in grid] == [
        _optimal_param(t, n, *w) for t, n, w in grid]
    for num_perm, seed in ((128, 1), (64, 7)):
        a, b = _permutations(num_perm, seed)
        want = MinHash(num_perm=num_perm, seed=seed).permutations
        np.testing.assert_array_equal(a, want[0])
        np.testing.assert_array_equal(b, want[1])
        assert a.dtype == b.dtype == np.uint32


def test_config_checks():
    with pytest.raises(SpecError, match=r"validators.near_duplicate.threshold=1.5 must be"):
        config_from_mapping(MinHashConfig, {"threshold": 1.5}, prefix="validators.near_duplicate")
    with pytest.raises(SpecError, match="hash"):
        config_from_mapping(MinHashConfig, {"hash": "md5"}, prefix="validators.near_duplicate")


def _near(text: str) -> str:
    """One word changed near the end: Jaccard of 5-shingles stays above 0.8."""
    words = text.split()
    words[-3] = "really"
    return " ".join(words)


def test_validator_rejects_near_duplicate_with_details():
    dup = _near(GOOD[1])
    b = batch([GOOD[1], GOOD[2], dup, GOOD[3]])
    v = NearDuplicateValidator(MinHashConfig(), spec())
    v.setup()
    votes = v.validate(b).votes.to_pylist()
    assert [v["verdict"] for v in votes] == ["accept", "accept", "reject", "accept"]
    assert votes[2]["reason"] == "near_duplicate"
    details = json.loads(votes[2]["details"])
    assert details["matched"] == b.column("contribution_id")[0].as_py()
    assert 0.8 <= details["jaccard"] < 1.0


def _datasketch_reference(v: NearDuplicateValidator, b: pa.RecordBatch) -> list[str | None]:
    """Per record, the id of its best-ranked verified match, written with datasketch's own
    ``MinHashLSH`` over the same signatures (an independent implementation of the search)."""
    from datasketch import LeanMinHash, MinHashLSH

    from datanet.privacy.evasion import fold_unicode
    from datanet.validators.minhash import exact_jaccard, rank_key

    sig, sets = v.hasher.sketch(fold_unicode(b.column("text_norm")))
    ids = b.column("contribution_id").to_pylist()
    ts = b.column("submitted_at").cast(pa.int64()).to_pylist()
    hashes = b.column("content_hash").to_pylist()
    lsh = MinHashLSH(threshold=v.config.threshold, num_perm=v.config.num_perm,
                     params=(v.hasher.bands, v.hasher.rows))
    out: list[str | None] = [None] * len(ids)
    for i in sorted(range(len(ids)), key=lambda i: rank_key(False, ts[i], ids[i])):
        if np.all(sig[i] == np.uint32(0xFFFFFFFF)):
            continue
        m = LeanMinHash(seed=v.config.seed, hashvalues=sig[i], scheme="affine32")
        cands = [j for j in lsh.query(m) if ids[j] != ids[i] and hashes[j] != hashes[i]]
        if cands:
            exact = exact_jaccard(sets.take(pa.array([i] * len(cands))), sets.take(pa.array(cands)))
            hits = sorted((rank_key(False, ts[j], ids[j]), j) for j, jac in
                          zip(cands, exact, strict=True) if jac >= v.config.threshold)
            out[i] = ids[hits[0][1]] if hits else None
        lsh.insert(i, m, check_duplication=False)
    return out


def test_keyed_search_matches_datasketch_lsh():
    """Bands sharded across keyed-stage shards find what one datasketch MinHashLSH finds."""
    rng = np.random.default_rng(7)
    texts = []
    for i in range(60):
        words = GOOD[i % len(GOOD)].split()
        for _ in range(int(rng.integers(0, 6))):
            words[int(rng.integers(0, len(words)))] = f"w{int(rng.integers(0, 50))}"
        texts.append(" ".join(words))
    b = batch(texts)
    for shards in (1, 9):
        v = NearDuplicateValidator(MinHashConfig(shards=shards), spec())
        v.setup()
        votes = v.validate(b).votes.to_pylist()
        got = [json.loads(x["details"])["matched"] if x["details"] else None for x in votes]
        assert got == _datasketch_reference(v, b)
        assert sum(g is not None for g in got) == 10  # (exact copies are left to exact dedup)


def test_registered_and_on_by_default():
    names = [v.name for v in enabled_validators(spec(), kind="keyed")]
    assert "near_duplicate" in names
    assert issubclass(NearDuplicateValidator, KeyedValidator)
    assert NearDuplicateValidator.history_kind == "index/minhash"


def test_exact_jaccard_rowwise_over_list_columns():
    rng = np.random.default_rng(3)
    left, right = [], []
    for _ in range(50):
        a = np.unique(rng.integers(0, 60, rng.integers(0, 40))).astype(np.uint32)
        b = np.unique(rng.integers(0, 60, rng.integers(0, 40))).astype(np.uint32)
        left.append(a.tolist())
        right.append(b.tolist())
    left[0] = right[0] = []  # two empty sets: 0.0, not a division by zero
    typ = pa.list_(pa.uint32())
    got = exact_jaccard(pa.array(left, typ), pa.chunked_array([pa.array(right, typ)]))
    want = [len(set(a) & set(b)) / len(set(a) | set(b)) if a or b else 0.0
            for a, b in zip(left, right, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    sliced = exact_jaccard(pa.array(left, typ).slice(10, 5), pa.array(right, typ).slice(10, 5))
    np.testing.assert_allclose(sliced, want[10:15], rtol=0, atol=1e-12)


def test_word_hashes_match_the_reference_at_document_edges():
    """Compiled word hashing: words never run across documents; hashes equal the reference."""
    from datanet.validators.minhash import _WORD_RE, _word_hash, _word_tokens

    texts = ["ab", "cd", "", "!x!", "héllo,wörld", "a", "b c", "end.", ".start", "9" * 40]
    arr = pa.array(texts)
    for part in (arr, arr.slice(1), arr.slice(3, 4)):
        tokens, counts = _word_tokens(part)
        words = [re.findall(_WORD_RE, t.encode()) for t in part.to_pylist()]
        assert counts.tolist() == [len(w) for w in words]
        assert tokens.tolist() == [_word_hash(w) for ws in words for w in ws]
