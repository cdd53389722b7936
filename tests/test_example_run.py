"""The bundled example datanet through the real pipeline: exact counts via `datanet sql`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datanet.cli import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cooking-qa"
runner = CliRunner()


def _sql(dn: Path, query: str, *extra: str) -> list[dict]:
    r = runner.invoke(app, ["sql", str(dn), query, "-f", "json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def example_datanet(tmp_path_factory):
    dn = tmp_path_factory.mktemp("example") / "cooking-qa"
    assert runner.invoke(app, ["init", str(dn), "--spec",
                               str(EXAMPLE / "datanet.toml")]).exit_code == 0
    r = runner.invoke(app, ["run", str(dn), str(EXAMPLE / "contributions" / "*"), "--no-anchor"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["run", str(dn), str(EXAMPLE / "more" / "part-4.jsonl"),
                            "--no-anchor"])
    assert r.exit_code == 0, r.output
    return dn


def test_every_example_line_is_accounted_for(example_datanet):
    expected = json.loads((EXAMPLE / "expected.json").read_text())
    row = _sql(example_datanet, "SELECT * FROM batches WHERE seq = 1")[0]
    assert row["input"] == expected["total_lines"] == 2000
    assert row["accepted"] + row["rejected"] + row["quarantine"] + row["deadletter"] == 2000
    # every planted case caught (tests/validators/test_example_planted.py checks each kind)
    assert (row["accepted"], row["rejected"], row["quarantine"], row["deadletter"]) == (
        1708, 275, 0, 17)


def test_example_deadletter_is_exactly_the_malformed_lines(example_datanet):
    expected = json.loads((EXAMPLE / "expected.json").read_text())
    got = _sql(example_datanet, "SELECT source_file, source_line, reason, field FROM deadletter "
                                "WHERE reason <> 'duplicate_submission' ORDER BY ALL")
    want = sorted(
        (str(EXAMPLE / m["file"]), m["line"], m["reason"], m["field"])
        for m in expected["malformed"])
    assert [(r["source_file"], r["source_line"], r["reason"], r["field"]) for r in got] == want
    resub = _sql(example_datanet, "SELECT count(*) AS n FROM deadletter "
                                  "WHERE reason = 'duplicate_submission'")
    assert resub == [{"n": expected["counts"]["duplicate_submission"]}]


def test_example_exact_duplicates_and_history(example_datanet):
    expected = json.loads((EXAMPLE / "expected.json").read_text())
    q = ("SELECT batch, count(*) AS n FROM rejected WHERE list_contains(reasons, "
         "'exact_duplicate') GROUP BY batch")
    by_batch = {r["batch"]: r["n"] for r in _sql(example_datanet, q)}
    batches = _sql(example_datanet, "SELECT seq, batch_id FROM batches ORDER BY seq")
    assert [b["seq"] for b in batches] == [1, 2]
    assert by_batch[batches[0]["batch_id"]] == expected["counts"]["exact_duplicate"]
    assert by_batch[batches[1]["batch_id"]] == expected["more"]["exact_duplicate_of_history"]
    # as of batch 1 the second delivery is invisible
    assert _sql(example_datanet, "SELECT count(*) AS n FROM batches", "--as-of", "1") == [
        {"n": 1}]
    n1 = _sql(example_datanet, "SELECT count(*) AS n FROM accepted", "--as-of", "1")[0]["n"]
    n2 = _sql(example_datanet, "SELECT count(*) AS n FROM accepted")[0]["n"]
    acc2 = _sql(example_datanet, "SELECT accepted FROM batches WHERE seq = 2")[0]["accepted"]
    assert n2 == n1 + acc2


GOLDEN = Path(__file__).resolve().parent / "golden" / "cooking_qa.json"
_GOLDEN_QUERIES = {
    "decisions": "SELECT contribution_id, 'accepted' AS outcome, NULL AS reasons FROM accepted "
                 "UNION ALL SELECT contribution_id, 'rejected', reasons::VARCHAR FROM rejected "
                 "UNION ALL SELECT contribution_id, 'quarantine', reasons::VARCHAR "
                 "FROM quarantine ORDER BY ALL",
    "votes": "SELECT contribution_id, validator, verdict, score, reason, details FROM votes "
             "ORDER BY ALL",
    "deadletter": "SELECT parse_filename(source_file) AS file, source_line, reason, field "
                  "FROM deadletter ORDER BY ALL",
}


def golden_digest(dn: Path) -> dict:
    """What must not change when code is only made faster or moved: every decision, every
    vote (with its score and details), the dead-letter entries, and each batch's root."""
    import hashlib

    out: dict = {"batches": [[b["seq"], b["batch_id"], b["merkle_root"], b["accepted"],
                              b["rejected"], b["quarantine"], b["deadletter"]]
                             for b in _sql(dn, "SELECT * FROM batches ORDER BY seq")]}
    for name, query in _GOLDEN_QUERIES.items():
        rows = _sql(dn, query)
        blob = json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()
        out[name] = {"rows": len(rows), "sha256": hashlib.sha256(blob).hexdigest()}
    return out


def test_example_golden_decisions_votes_and_roots(tmp_path):
    """Byte-for-byte the same outcome as the recorded run (tests/golden/cooking_qa.json).

    Inputs are named relative to the example folder: a dead-letter line's id (and so the
    batch id and the leaves) includes its source path. A change that is meant to alter
    decisions regenerates the file with
    ``DATANET_UPDATE_GOLDEN=1 pytest tests/test_example_run.py -k golden`` and says why.
    """
    import os

    dn = tmp_path / "cooking-qa"
    assert runner.invoke(app, ["init", str(dn), "--spec",
                               str(EXAMPLE / "datanet.toml")]).exit_code == 0
    cwd = os.getcwd()
    os.chdir(EXAMPLE)
    try:
        for inputs in ("contributions/*", "more/part-4.jsonl"):
            r = runner.invoke(app, ["run", str(dn), inputs, "--no-anchor"])
            assert r.exit_code == 0, r.output
    finally:
        os.chdir(cwd)
    got = golden_digest(dn)
    if os.environ.get("DATANET_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    assert got == json.loads(GOLDEN.read_text())
