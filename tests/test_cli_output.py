"""What users see: sql / status at 80 columns, JSON output, nested columns, any-case
addresses, `proof` on a rejected record, --version, quiet/debug."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.cli._common import out
from datanet.cli._output import cell_text, describe
from tests.conftest import ADDRS, TINY_SPEC, record, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def dn(tmp_path_factory):
    """A tiny datanet with one batch: 6 accepted, a cross-contributor duplicate, a PII record,
    a malformed line."""
    tmp = tmp_path_factory.mktemp("out")
    (tmp / "spec.toml").write_text(TINY_SPEC)
    path = tmp / "dn"
    assert runner.invoke(app, ["init", str(path), "--spec", str(tmp / "spec.toml")]).exit_code == 0
    recs = [record(i) for i in range(6)]
    recs.append(record(1, contributor=ADDRS[7]))  # same text as record 1, other contributor
    recs.append(record(2, text="Write to me at jane.doe@example.com for the full recipe card."))
    recs.append(b"{not json")
    inp = write_jsonl(tmp / "in.jsonl", recs)
    r = runner.invoke(app, ["run", str(path), str(inp), "--no-anchor", "-f", "json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["counts"] == {"input": 9, "accepted": 6, "rejected": 2, "quarantine": 0,
                                 "deadletter": 1}
    assert summary["committed"] and summary["seq"] == 1 and summary["anchors"] is None
    assert summary["merkle_root"].startswith("0x") and len(summary["merkle_root"]) == 66
    return path


@pytest.fixture
def width80():
    old = out.width
    out.width = 80
    yield
    out.width = old


def _sql(dn, query, *extra):
    r = runner.invoke(app, ["sql", str(dn), query, *extra])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_sql_table_is_bounded_like_duckdb(dn, width80):
    text = _sql(dn, "SELECT range AS n FROM range(100)")
    lines = text.splitlines()
    assert lines[0].strip() == "n" and set(lines[1]) == {"─"}
    assert [int(x) for x in lines[2:42]] == list(range(40))
    assert lines[42] == ("100 rows; 40 shown (… 60 more rows); --max-rows / --max-width, or "
                         "--format csv|json for everything")
    assert len(lines) == 43
    text = _sql(dn, "SELECT range AS n FROM range(3)", "--max-rows", "5")
    assert text.splitlines()[2:] == ["0", "1", "2", "3 rows"]


def test_sql_table_fits_80_columns(dn, width80):
    text = _sql(dn, "SELECT * FROM rejected")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines[:-1]), lines
    assert lines[-1].startswith("2 rows; 17 columns, 7 shown (signature, source_file, ")
    assert lines[0].split() == ["contributio…", "datanet", "contributor", "submitted_at",
                                "text", "content_hash", "metadata"]
    # no wrapped rows: header, rule, two rows, footer
    assert len(lines) == 5
    # long values are cut with an ellipsis, never wrapped
    assert cell_text("x" * 50, 10) == "x" * 9 + "…"
    assert cell_text({"a": [1, None]}, 40) == '{"a": [1, null]}'
    assert cell_text("two\nlines", 40) == "two↵lines"


def test_sql_csv_and_json_write_nested_columns_as_json(dn):
    rows = list(csv.DictReader(io.StringIO(_sql(
        dn, "SELECT reasons, tally, submitted_at FROM rejected ORDER BY reasons", "-f", "csv"))))
    assert [json.loads(r["reasons"]) for r in rows] == [["exact_duplicate"],
                                                        ["pii:EMAIL_ADDRESS"]]
    assert json.loads(rows[0]["tally"]) == {"accept": 2.0, "reject": 1.0, "abstain": 1.0,
                                            "cast": 3.0, "share": 2 / 3, "votes": 4,
                                            "decided_by": "veto"}
    assert rows[0]["submitted_at"].endswith("+00:00") and "T12:00:00" in rows[0]["submitted_at"]
    got = json.loads(_sql(dn, "SELECT reasons, tally FROM rejected ORDER BY reasons", "-f", "json"))
    assert got[0]["reasons"] == ["exact_duplicate"] and isinstance(got[0]["tally"], dict)
    assert json.loads(_sql(dn, "SELECT 1 AS a WHERE false", "-f", "json")) == []


def test_contributor_matches_in_any_case(dn):
    addr = ADDRS[1]
    assert addr != addr.lower()
    counts = [json.loads(_sql(dn, f"SELECT count(*) AS n FROM accepted WHERE contributor = "
                                  f"'{a}'", "-f", "json"))[0]["n"]
              for a in (addr, addr.lower(), "0x" + addr[2:].upper())]
    assert counts == [1, 1, 1]
    # the stored value keeps its checksum case
    got = json.loads(_sql(dn, f"SELECT contributor FROM accepted WHERE contributor = "
                              f"'{addr.lower()}'", "-f", "json"))
    assert got == [{"contributor": addr}]


def test_status_fits_80_columns_with_full_ids(dn, width80):
    r = runner.invoke(app, ["status", str(dn)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    header = lines[1].split()
    assert header == ["seq", "created", "(UTC)", "input", "accepted", "rejected", "review",
                      "dead-letter", "anchor"]
    assert lines[3].split()[0] == "1" and lines[3].split()[3:8] == ["9", "6", "2", "0", "1"]
    rows = json.loads(runner.invoke(app, ["status", str(dn), "-f", "json"]).stdout)
    assert len(rows) == 1 and rows[0]["accepted"] == 6 and rows[0]["anchor_status"] is None
    assert f"   1 batch {rows[0]['batch_id']}" in lines
    assert f"     root  {rows[0]['merkle_root']}" in lines


def test_proof_of_a_rejected_record_says_why(dn):
    dup = json.loads(_sql(dn, "SELECT contribution_id, source_file, source_line FROM rejected "
                              "WHERE list_contains(reasons, 'exact_duplicate')", "-f", "json"))
    assert len(dup) == 1
    cid = dup[0]["contribution_id"]
    matched = json.loads(_sql(dn, f"SELECT contribution_id FROM accepted WHERE contributor = "
                                  f"'{ADDRS[1]}'", "-f", "json"))[0]["contribution_id"]
    r = runner.invoke(app, ["proof", str(dn), cid.upper().replace("0X", "0x")])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "is not among the accepted records" in text
    assert (f"it was rejected in batch 1 ({dup[0]['source_file']}:{dup[0]['source_line']}): "
            "reasons exact_duplicate") in text
    assert f'exact_duplicate: reject exact_duplicate details {{"matched": "{matched}"}}' in text
    # an unknown id: just the error
    r = runner.invoke(app, ["proof", str(dn), "0x" + "ab" * 32])
    assert r.exit_code == 1 and "it was" not in r.output


def test_verify_history_json(dn):
    r = runner.invoke(app, ["verify-history", str(dn), "-f", "json"])
    got = json.loads(r.stdout)
    assert got["ok"] is (r.exit_code == 0)
    data, root = got["checked"]
    assert data.startswith("batch 1 0x")
    assert data.endswith("data checked (5 files, 6 accepted rows)")
    assert root.startswith("batch 1 0x") and root.endswith("(6 leaves) not anchored")


def test_reports_print_as_text_not_repr():
    rep = {"entities": {"CREDIT_CARD": "reject", "EMAIL_ADDRESS": "reject", "URL": "allow",
                        "US_SSN": "reject"}, "ner": "disabled", "score_threshold": 0.3,
           "spec_recognizers": []}
    assert describe(rep) == ("entities (reject: CREDIT_CARD, EMAIL_ADDRESS, US_SSN; allow: URL)"
                             " · ner disabled · score_threshold 0.3 · spec_recognizers none")
    assert describe({"on": True, "n": 3}) == "on yes · n 3"


def test_version_and_unexpected_errors(tmp_path):
    from datanet import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout == f"datanet {__version__}\n"
    # a crash prints one error line and no traceback unless --debug (through the real entry)
    code = ("import sys; from datanet.cli import app; import datanet.store.query as q; "
            "q.connect = lambda *a, **k: 1 / 0; sys.argv = ['datanet', *sys.argv[1:]]; app()")
    bad = tmp_path / "dn"
    p = subprocess.run([sys.executable, "-c", code, "status", str(bad)], capture_output=True,
                       text=True)
    assert p.returncode == 1, p.stderr
    assert p.stderr == ("error: ZeroDivisionError: division by zero (run with --debug for "
                        "the traceback)\n")
    p = subprocess.run([sys.executable, "-c", code, "--debug", "status", str(bad)],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" in p.stderr


def test_connect_does_not_import_the_validator_stack(dn):
    code = ("import sys; from datanet.store.query import connect; "
            f"con = connect({str(dn)!r}); con.sql('select count(*) from accepted').fetchall(); "
            "print(sorted(m for m in ('pandas', 'apache_beam', 'presidio_analyzer', "
            "'great_expectations', 'web3', 'numba', 'eth_abi', 'datanet.pipelines.run', "
            "'datanet.attribution.match') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"


def test_sql_json_keeps_repeated_names_and_runs_scripts_once(dn):
    assert json.loads(_sql(dn, "SELECT 1 AS a, 2 AS a, 3 AS a_2", "-f", "json")) == [
        {"a": 1, "a_3": 2, "a_2": 3}]
    # a script's DDL runs once (it used to run again for the rows: "already exists")
    for fmt in ("json", "csv", "table"):
        text = _sql(dn, "CREATE TABLE t AS SELECT 7 AS z; SELECT z FROM t", "-f", fmt)
        assert "7" in text
    assert json.loads(_sql(dn, "SELECT [1, 2] AS l, {'k': NULL} AS s, DATE '2026-01-02' AS d, "
                               "1.50::DECIMAL(4, 2) AS x", "-f", "json")) == [
        {"l": [1, 2], "s": {"k": None}, "d": "2026-01-02", "x": "1.50"}]
