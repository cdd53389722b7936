"""Truth tables of the vote policy: quorum, thresholds, vetoes, abstentions, weights, ties."""

from __future__ import annotations

import types

import pyarrow as pa
import pytest

from datanet.errors import SpecError
from datanet.schemas.config import config_from_mapping
from datanet.schemas.contribution import DECISION_SCHEMA
from datanet.schemas.spec import parse_spec
from datanet.validators.policy import PolicyConfig, decide, load_registry, policy_config


def votes(*rows: tuple[str, str, str] | tuple[str, str, str, str | None]) -> pa.Table:
    """Vote table from ``(id, validator, verdict[, reason])`` rows."""
    from datanet.schemas.contribution import VOTE_SCHEMA

    return pa.Table.from_pylist(
        [
            {"contribution_id": r[0], "validator": r[1], "verdict": r[2],
             "score": None, "reason": r[3] if len(r) > 3 else None, "details": None}
            for r in rows
        ],
        schema=VOTE_SCHEMA,
    )


def cfg(**kw) -> PolicyConfig:
    return config_from_mapping(PolicyConfig, kw, prefix="policy")


def outcome(table: pa.Table, config: PolicyConfig, rid: str = "r") -> tuple[str, list[str]]:
    row = decide(pa.array([rid]), table, config).to_pylist()[0]
    return row["outcome"], row["reasons"]


# --- default policy: any reject → rejected --------------------------------------------------

DEFAULT_CASES = [
    # (votes, outcome, reasons)
    ([], "accepted", []),
    ([("r", "limits", "accept")], "accepted", []),
    ([("r", "limits", "abstain")], "accepted", []),
    ([("r", "limits", "accept"), ("r", "quality", "reject", "low_quality")],
     "rejected", ["low_quality"]),
    ([("r", "quality", "reject")], "rejected", ["quality:rejected"]),
    ([("r", "a", "accept"), ("r", "b", "accept"), ("r", "c", "accept"),
      ("r", "d", "reject", "spam")], "rejected", ["spam"]),
    ([("r", "a", "reject", "z_reason"), ("r", "b", "reject", "a_reason"),
      ("r", "c", "reject", "a_reason")], "rejected", ["a_reason", "z_reason"]),
]


@pytest.mark.parametrize(("rows", "expected", "reasons"), DEFAULT_CASES)
def test_default_policy_rejects_on_any_reject(rows, expected, reasons):
    assert outcome(votes(*rows), PolicyConfig()) == (expected, reasons)


def test_default_from_spec_without_policy_table():
    spec = parse_spec({"id": "demo"})
    config = policy_config(spec)
    assert config == PolicyConfig()
    assert outcome(votes(("r", "x", "accept"), ("r", "y", "reject", "nope")), config) == (
        "rejected", ["nope"])


# --- thresholds and review band ---------------------------------------------------------------

THRESHOLD_CASES = [
    # accept_threshold, review_threshold, accept votes, reject votes -> outcome, policy reason
    (0.5, None, 2, 1, "accepted", None),
    (0.5, None, 1, 1, "accepted", None),  # tie exactly on the threshold accepts
    (0.5, None, 1, 2, "rejected", None),
    (0.75, 0.5, 3, 1, "accepted", None),  # 0.75 meets 0.75
    (0.75, 0.5, 2, 1, "needs_review", "below_accept_threshold"),  # 0.667 in the band
    (0.75, 0.5, 1, 1, "needs_review", "below_accept_threshold"),  # 0.5 tie lands in band
    (0.75, 0.5, 1, 2, "rejected", None),  # 0.333 below the band
    (2 / 3, None, 2, 1, "accepted", None),  # float tie: 2/3 meets 2/3
    (1.0, 0.0, 0, 3, "needs_review", "below_accept_threshold"),  # never reject: all to review
    (0.0, None, 0, 3, "accepted", None),  # threshold 0 accepts anything with quorum
]


@pytest.mark.parametrize(("acc", "rev", "n_acc", "n_rej", "expected", "code"), THRESHOLD_CASES)
def test_threshold_truth_table(acc, rev, n_acc, n_rej, expected, code):
    rows = [("r", f"a{i}", "accept") for i in range(n_acc)]
    rows += [("r", f"r{i}", "reject", "bad") for i in range(n_rej)]
    kw = {"accept_threshold": acc}
    if rev is not None:
        kw["review_threshold"] = rev
    got, reasons = outcome(votes(*rows), cfg(**kw))
    assert got == expected
    expected_reasons = (["bad"] if n_rej else []) + ([code] if code else [])
    assert reasons == sorted(expected_reasons)


# --- quorum and abstentions -------------------------------------------------------------------

QUORUM_CASES = [
    # quorum, votes -> outcome
    (2.0, [("r", "a", "accept")], "needs_review"),
    (2.0, [("r", "a", "accept"), ("r", "b", "accept")], "accepted"),
    (2.0, [("r", "a", "accept"), ("r", "b", "abstain"), ("r", "c", "abstain")], "needs_review"),
    (2.0, [], "needs_review"),
    (2.0, [("r", "a", "accept"), ("r", "b", "reject", "x")], "rejected"),
    (3.0, [("r", "a", "reject", "x")], "needs_review"),
]


@pytest.mark.parametrize(("quorum", "rows", "expected"), QUORUM_CASES)
def test_quorum_counts_cast_weight_only(quorum, rows, expected):
    got, reasons = outcome(votes(*rows), cfg(quorum=quorum))
    assert got == expected
    if expected == "needs_review":
        assert "quorum_not_met" in reasons


def test_abstentions_are_excluded_from_the_share():
    # 1 accept + 5 abstains + 1 reject at 0.5: share is 1/2, not 1/7.
    rows = [("r", "a", "accept"), ("r", "z", "reject", "x")]
    rows += [("r", f"ab{i}", "abstain", "model_unavailable") for i in range(5)]
    row = decide(pa.array(["r"]), votes(*rows), cfg(accept_threshold=0.5)).to_pylist()[0]
    assert row["outcome"] == "accepted"
    assert row["reasons"] == ["x"]  # abstain reasons are not reasons of the decision
    assert row["tally"] == {"accept": 1.0, "reject": 1.0, "abstain": 5.0, "cast": 2.0,
                            "share": 0.5, "votes": 7, "decided_by": "threshold"}


# --- weights -----------------------------------------------------------------------------------

def test_weights_decide_and_ties_on_weight():
    config = cfg(accept_threshold=0.5, review_threshold=0.4,
                 weights={"heavy": 3.0, "light": 1.0, "mute": 0.0})
    # 3 vs 1+1 -> 0.6 accepted
    assert outcome(votes(("r", "heavy", "accept"), ("r", "light", "reject", "x"),
                         ("r", "other", "reject", "y")), config)[0] == "accepted"
    # weight tie 3 vs 1+1+1 -> 0.5 meets 0.5
    assert outcome(votes(("r", "heavy", "reject", "x"), ("r", "light", "accept"),
                         ("r", "o1", "accept"), ("r", "o2", "accept")), config)[0] == "accepted"
    # 1 vs 3 -> 0.25 rejected
    assert outcome(votes(("r", "heavy", "reject", "x"), ("r", "light", "accept")),
                   config)[0] == "rejected"
    # a weight-0 reject changes nothing but is still listed as a reason
    assert outcome(votes(("r", "light", "accept"), ("r", "mute", "reject", "meh")),
                   config) == ("accepted", ["meh"])


def test_registry_weights_apply_to_external_addresses():
    addr = "0x" + "ab" * 20
    config = cfg(accept_threshold=0.5, registry={"0x" + "AB" * 20: 10.0})
    assert config.weight_of(addr) == 10.0
    row = decide(pa.array(["r"]), votes(("r", addr, "accept"), ("r", "a", "reject", "x"),
                                        ("r", "b", "reject", "y")), config).to_pylist()[0]
    assert (row["outcome"], row["accept_weight"], row["reject_weight"]) == ("accepted", 10.0, 2.0)


# --- vetoes ------------------------------------------------------------------------------------

VETO_CASES = [
    # veto list, rows -> outcome, decided_by
    (("pii",), [("r", "pii", "reject", "pii_email")] + [("r", f"a{i}", "accept")
                                                        for i in range(9)],
     "rejected", "veto"),
    (("pii",), [("r", "pii", "accept"), ("r", "q", "reject", "x"), ("r", "b", "accept")],
     "accepted", "threshold"),
    ((), [("r", "pii", "reject", "pii_email")] + [("r", f"a{i}", "accept") for i in range(9)],
     "accepted", "threshold"),
    (("pii",), [("r", "pii", "reject", "pii_email")], "rejected", "veto"),  # beats quorum
]


@pytest.mark.parametrize(("veto", "rows", "expected", "by"), VETO_CASES)
def test_veto_truth_table(veto, rows, expected, by):
    config = cfg(accept_threshold=0.5, quorum=2.0, veto=list(veto))
    row = decide(pa.array(["r"]), votes(*rows), config).to_pylist()[0]
    assert (row["outcome"], row["tally"]["decided_by"]) == (expected, by)


def test_default_veto_overrules_a_weighted_majority():
    config = cfg(accept_threshold=0.5, weights={"community": 100.0})
    for vetoer, reason in [("signature", "bad_signature"), ("exact_duplicate", "exact_duplicate"),
                           ("limits", "too_short"), ("pii", "pii_email")]:
        rows = votes(("r", "community", "accept"), ("r", vetoer, "reject", reason))
        assert outcome(rows, config) == ("rejected", [reason])


# --- batch behaviour ---------------------------------------------------------------------------

def test_batch_keeps_id_order_ignores_foreign_votes_and_matches_schema():
    ids = pa.chunked_array([["c", "a"], ["b"]])
    table = votes(("a", "x", "reject", "r1"), ("b", "x", "accept"), ("zzz", "x", "reject", "r9"),
                  ("c", "x", "abstain"), ("a", "y", "reject", "r0"))
    out = decide(ids, table, PolicyConfig())
    assert out.schema == DECISION_SCHEMA
    assert out.to_pydict()["contribution_id"] == ["c", "a", "b"]
    assert out.column("outcome").to_pylist() == ["accepted", "rejected", "accepted"]
    assert out.column("reasons").to_pylist() == [[], ["r0", "r1"], []]
    assert out.column("reject_weight").to_pylist() == [0.0, 2.0, 0.0]


def test_empty_batch():
    out = decide(pa.array([], pa.string()), votes(), PolicyConfig())
    assert out.num_rows == 0 and out.schema == DECISION_SCHEMA


def test_large_batch_is_vectorised_and_exact():
    n = 20_000
    ids = [f"id{i}" for i in range(n)]
    rows = []
    for i, rid in enumerate(ids):
        rows.append((rid, "a", "accept"))
        rows.append((rid, "b", "reject" if i % 3 == 0 else "accept", "r"))
        rows.append((rid, "c", "abstain"))
    out = decide(pa.array(ids), votes(*rows), cfg(accept_threshold=0.6, review_threshold=0.5))
    counts = out.group_by("outcome").aggregate([("contribution_id", "count")]).to_pydict()
    got = dict(zip(counts["outcome"], counts["contribution_id_count"], strict=True))
    assert got == {"needs_review": 6667, "accepted": 13333}


# --- config validation -------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "key"), [
    ({"accept_threshold": 1.5}, "policy.accept_threshold"),
    ({"accept_threshold": 0.5, "review_threshold": 0.6}, "policy.review_threshold"),
    ({"quorum": -1}, "policy.quorum"),
    ({"weights": {"pii": -2}}, "policy.weights.pii"),
    ({"signatures": "maybe"}, "policy.signatures"),
    ({"registry": {"alice": 1.0}}, "policy.registry.alice"),
    ({"mode": "any_reject"}, "policy.mode"),
])
def test_bad_policy_tables_fail_with_the_key(table, key):
    with pytest.raises(SpecError) as info:
        parse_spec({"id": "demo", "policy": table})
    assert info.value.key == key


def test_registry_file_is_merged_relative_to_the_spec(tmp_path):
    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    (tmp_path / "validators.toml").write_text(f'"{a}" = 5\n"{b}" = 1.5\n')
    spec_path = tmp_path / "datanet.toml"
    spec_path.write_text(
        f'id = "demo"\n[policy]\nregistry_file = "validators.toml"\n'
        f'[policy.registry]\n"{b}" = 7\n'
    )
    from datanet.schemas.spec import load_spec

    config = policy_config(load_spec(spec_path))
    assert dict(config.registry) == {a: 5.0, b: 7.0}
    (tmp_path / "bad.json").write_text('{"0x12": 1}')
    with pytest.raises(SpecError) as info:
        load_registry(tmp_path / "bad.json")
    assert info.value.key == "policy.registry_file[0x12]"
    assert isinstance(config.registry, types.MappingProxyType)


def test_route_splits_rows_appends_decisions_and_drops_pii_text():
    from datanet.validators.policy import DECISION_COLUMNS, route

    rows = pa.table({"contribution_id": ["a", "b", "c", "d"],
                     "text": ["fine", "call 555", "spammy", "unsure"]})
    config = cfg(quorum=2.0)
    table = votes(("a", "x", "accept"), ("a", "y", "accept"),
                  ("b", "x", "reject", "pii:PHONE_NUMBER"), ("b", "y", "accept"),
                  ("c", "x", "reject", "spam"), ("c", "y", "accept"),
                  ("d", "x", "accept"))
    out = route(rows, decide(rows.column("contribution_id"), table, config))
    assert sorted(out) == ["accepted", "quarantine", "rejected"]
    assert out["accepted"].to_pylist() == [{"contribution_id": "a", "text": "fine"}]
    assert out["rejected"].column_names == ["contribution_id", "text", *DECISION_COLUMNS]
    assert out["rejected"].select(["contribution_id", "text", "reasons"]).to_pylist() == [
        {"contribution_id": "b", "text": None, "reasons": ["pii:PHONE_NUMBER"]},
        {"contribution_id": "c", "text": "spammy", "reasons": ["spam"]}]
    assert out["quarantine"].select(["contribution_id", "text", "reasons"]).to_pylist() == [
        {"contribution_id": "d", "text": "unsure", "reasons": ["quorum_not_met"]}]
    assert out["quarantine"].column("tally").to_pylist()[0]["cast"] == 1.0
