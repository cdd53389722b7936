"""The reward rule as pure functions: exact sums, proportional shares, mix, ties, words."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import pyarrow as pa
import pytest

from datanet.errors import RewardsError
from datanet.rewards.split import allocate, count_words, tie_key, usage_weights

KEY = bytes(range(32))
ONE = (Fraction(1), Fraction(1))


def _addr(i: int) -> str:
    return f"0x{i:040x}"


def _amounts(allocs) -> dict[str, int]:
    return {a.account: a.amount for a in allocs}


@pytest.mark.parametrize("pool", [10**21 + 7, 1, 0, 999_999_999_999_999_999, 2**256 - 1])
def test_amounts_sum_exactly_and_stay_within_one_unit_of_the_quota(pool):
    rng = random.Random(pool % 1000)
    words = {_addr(i): rng.randint(1, 10**6) for i in range(1, 300)}
    usage = {_addr(i): Fraction(str(rng.random())) for i in range(150, 400)}
    allocs = allocate(pool, words, usage, (Fraction(2), Fraction(1)), datanet_key=KEY, epoch=3)
    assert sum(a.amount for a in allocs) == pool
    tw, tu = sum(words.values()), sum(usage.values())
    for a in allocs:
        quota = pool * (2 * Fraction(words.get(a.account, 0), tw)
                        + usage.get(a.account, Fraction(0)) / tu) / 3
        assert quota - 1 < a.amount < quota + 1


def test_shares_are_exactly_proportional_to_words():
    got = _amounts(allocate(6 * 10**18, {_addr(1): 10, _addr(2): 20, _addr(3): 30}, {}, ONE,
                            datanet_key=KEY, epoch=1))
    assert got == {_addr(1): 10**18, _addr(2): 2 * 10**18, _addr(3): 3 * 10**18}


def test_data_and_usage_weights_mix_and_missing_component_drops_out():
    words = {_addr(1): 7}
    usage = {_addr(2): Fraction(1, 3)}
    assert _amounts(allocate(400, words, usage, ONE, datanet_key=KEY, epoch=1)) == {
        _addr(1): 200, _addr(2): 200}
    assert _amounts(allocate(400, words, usage, (Fraction(3), Fraction(1)),
                             datanet_key=KEY, epoch=1)) == {_addr(1): 300, _addr(2): 100}
    # no usage at all: the data share takes the whole pool whatever the weights
    assert _amounts(allocate(400, words, {}, (Fraction(1, 10), Fraction(9)),
                             datanet_key=KEY, epoch=1)) == {_addr(1): 400}
    with pytest.raises(RewardsError, match="nothing to pay for"):
        allocate(400, {}, {}, ONE, datanet_key=KEY, epoch=1)


def test_ties_go_to_the_smallest_tie_key_whatever_the_input_order():
    accounts = [_addr(i) for i in (5, 1, 9)]
    pool = 10**21 + 7  # 3 equal shares, each quota ends in 2/3: 2 units go by tie key
    expected_floor = pool // 3
    left = pool - 3 * expected_floor
    ranked = sorted(accounts, key=lambda a: tie_key(KEY, 4, a))
    for order in (accounts, accounts[::-1]):
        got = _amounts(allocate(pool, {a: 5 for a in order}, {}, ONE, datanet_key=KEY,
                                epoch=4))
        assert got == {a: expected_floor + (1 if a in ranked[:left] else 0) for a in accounts}
    # another epoch reshuffles who wins the tie (the key includes the epoch)
    assert [sorted(accounts, key=lambda a: tie_key(KEY, e, a))[0] for e in range(1, 8)] != [
        ranked[0]] * 7


def test_sybil_split_gains_nothing():
    """One identity's words split over k addresses: the exact quota is the same, and rounding
    can move at most k-1 smallest units (largest remainder gives each part floor or ceil)."""
    others = {_addr(100 + i): 1000 + 37 * i for i in range(20)}
    pool = 10**21 + 7
    whole = allocate(pool, {**others, _addr(1): 9000}, {}, ONE, datanet_key=KEY, epoch=1)
    parts = {_addr(1 + i): 1500 for i in range(6)}
    split = allocate(pool, {**others, **parts}, {}, ONE, datanet_key=KEY, epoch=1)
    single = _amounts(whole)[_addr(1)]
    sybil = sum(a.amount for a in split if a.account in parts)
    assert abs(sybil - single) <= len(parts) - 1
    total = sum(others.values()) + 9000
    assert Fraction(pool * 9000, total) - 1 < single <= Fraction(pool * 9000, total) + 1


def test_usage_weights_are_exact_rationals_of_the_json_floats():
    receipts = [
        {"id": "r1", "attributions": [
            {"contributor": _addr(1).upper().replace("0X", "0x"), "weight": 0.1},
            {"contributor": _addr(2), "weight": 0.2}]},
        {"id": "r2", "attributions": [{"contributor": _addr(1), "weight": 0.2},
                                      {"contributor": _addr(3), "weight": 0}]},
    ]
    assert usage_weights(receipts) == {_addr(1): Fraction(3, 10), _addr(2): Fraction(1, 5)}
    for bad, msg in ((-0.5, "must be >= 0"), (float("nan"), "not a finite"), ("x", "not a"),
                     (True, "must be a number")):
        with pytest.raises(RewardsError, match=msg):
            usage_weights([{"id": "r", "attributions": [{"contributor": _addr(1),
                                                         "weight": bad}]}])
    with pytest.raises(RewardsError, match="not an address"):
        usage_weights([{"id": "r", "attributions": [{"contributor": "bob", "weight": 1}]}])


def test_word_count_is_python_unicode_w_plus():
    texts = ["hello world_1 x", "héllo wörld ß", "", "a-b c", "日本語 テキスト",
             "١٢٣ arabic digits", "x²+y² = z²", "emoji 🍰 cake", "tab\tsep", "ǅungla café"]
    assert count_words(pa.array(texts)).tolist() == [len(re.findall(r"\w+", t)) for t in texts]
