"""The CLI end to end on a tiny datanet: init, run, re-run, status, sql formats, errors."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from datanet.cli import app
from tests.conftest import TINY_SPEC, record, write_jsonl

runner = CliRunner()


def test_cli_round_trip(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC)
    dn = tmp_path / "dn"
    r = runner.invoke(app, ["init", str(dn), "--spec", str(spec)])
    assert r.exit_code == 0, r.output
    assert "created datanet tiny" in r.output
    r = runner.invoke(app, ["init", str(dn)])
    assert r.exit_code == 1 and "already exists" in r.output

    inp = write_jsonl(tmp_path / "a.jsonl", [record(i) for i in range(5)] + [b"{bad"])
    r = runner.invoke(app, ["run", str(dn), str(inp), "--no-anchor"])
    assert r.exit_code == 0, r.output
    assert "6 records → 5 accepted, 0 rejected, 0 needs review, 1 dead-letter" in r.output
    # reports print as text: "[validators.pii]" is not taken for console markup
    assert "no spaCy model named in [validators.pii].ner_model" in r.output.replace("\n", " ")
    r = runner.invoke(app, ["run", str(dn), str(inp), "--no-anchor"])
    assert r.exit_code == 0 and "nothing new" in r.output

    more = write_jsonl(tmp_path / "b.jsonl", [record(i, text=f"Another long tip number {i}.")
                                              for i in range(3)])
    assert runner.invoke(app, ["run", str(dn), str(more), "--no-anchor"]).exit_code == 0

    r = runner.invoke(app, ["sql", str(dn), "SELECT seq, accepted FROM batches ORDER BY seq",
                            "--format", "csv"])
    assert r.exit_code == 0
    assert list(csv.reader(io.StringIO(r.stdout))) == [["seq", "accepted"], ["1", "5"],
                                                       ["2", "3"]]
    r = runner.invoke(app, ["sql", str(dn), "SELECT count(*) AS n FROM accepted", "-f", "json"])
    assert json.loads(r.stdout) == [{"n": 8}]
    r = runner.invoke(app, ["sql", str(dn), "SELECT count(*) AS n FROM accepted", "-f", "json",
                            "--as-of", "1"])
    assert json.loads(r.stdout) == [{"n": 5}]
    r = runner.invoke(app, ["sql", str(dn), "SELECT reason, source_line FROM deadletter",
                            "-f", "json"])
    assert json.loads(r.stdout) == [{"reason": "invalid_json", "source_line": 6}]
    r = runner.invoke(app, ["status", str(dn)])
    assert r.exit_code == 0
    rows = [line.split() for line in r.stdout.splitlines()[3:5]]
    assert [(x[0], x[3:8]) for x in rows] == [("1", ["6", "5", "0", "0", "1"]),
                                              ("2", ["3", "3", "0", "0", "0"])]


def test_cli_errors_exit_nonzero(tmp_path):
    r = runner.invoke(app, ["run", str(tmp_path / "none"), "x.jsonl", "--no-anchor"])
    assert r.exit_code == 1 and "not a datanet" in r.output
    dn = tmp_path / "dn"
    (tmp_path / "spec.toml").write_text(TINY_SPEC)
    runner.invoke(app, ["init", str(dn), "--spec", str(tmp_path / "spec.toml")])
    r = runner.invoke(app, ["sql", str(dn), "SELECT nope FROM accepted"])
    assert r.exit_code == 1 and "nope" in r.output
    r = runner.invoke(app, ["sql", str(dn), "SELECT 1", "--as-of", "4"])
    assert r.exit_code == 1 and "no such batch" in r.output
    r = runner.invoke(app, ["run", str(dn), str(tmp_path / "missing*.jsonl"), "--no-anchor"])
    assert r.exit_code == 1 and "no input file matches" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\n[limits]\nmin_chars = -3\n')
    r = runner.invoke(app, ["init", str(tmp_path / "dn2"), "--spec", str(bad)])
    assert r.exit_code == 1 and "limits.min_chars=-3 must be >= 0" in r.output


def test_init_default_spec_lists_every_validator(tmp_path):
    from datanet.store.layout import DatanetStore
    from datanet.validators.registry import BATCH_VALIDATORS, KEYED_VALIDATORS

    r = runner.invoke(app, ["init", str(tmp_path / "My Datanet")])
    assert r.exit_code == 0, r.output
    store = DatanetStore(tmp_path / "My Datanet")
    assert store.spec.id == "my-datanet"
    assert set(store.spec.validators) == set(BATCH_VALIDATORS) | set(KEYED_VALIDATORS)
