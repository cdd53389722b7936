"""`datanet anchor / proof / verify / verify-history` end to end on the embedded chain."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from datanet.cli import app
from tests.anchoring.helpers import commit_batch, make_store

runner = CliRunner()


def test_anchor_proof_verify_cli(tmp_path) -> None:
    store = make_store(tmp_path)
    commit_batch(store, "c1", 3)
    commit_batch(store, "c2", 0)
    bid, table = commit_batch(store, "c3", 5)
    res = runner.invoke(app, ["anchor", str(store.root)])
    assert res.exit_code == 0, res.output
    assert res.stdout.count(": FINAL root") == 2
    cid = table["contribution_id"][2].as_py()
    out = tmp_path / "proof.json"
    res = runner.invoke(app, ["proof", str(store.root), cid, "-o", str(out)])
    assert res.exit_code == 0, res.output
    bundle = json.loads(out.read_text())
    assert bundle["batch_id"] == bid and bundle["anchor"]["status"] == "FINAL"
    res = runner.invoke(app, ["verify", str(out), "--datanet", str(store.root)])
    assert res.exit_code == 0, res.output
    assert "off-chain: valid; on-chain: valid" in res.stdout
    bundle["leaf"]["content_hash"] = "0x" + "77" * 32
    out.write_text(json.dumps(bundle))
    res = runner.invoke(app, ["verify", str(out), "--datanet", str(store.root)])
    assert res.exit_code == 1
    assert "off-chain: INVALID; on-chain: INVALID" in res.stdout
    res = runner.invoke(app, ["verify-history", str(store.root)])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("anchored (on-chain seq") == 2 and "history valid" in res.stdout


def test_verify_history_detects_tampered_tree(tmp_path) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "t1", 4)
    runner.invoke(app, ["anchor", str(store.root)])
    tree_path = store.root / "trees" / f"{bid}.json"
    dump = json.loads(tree_path.read_text())
    dump["values"][0]["value"][4] = "0x" + "00" * 32
    tree_path.write_text(json.dumps(dump))
    res = runner.invoke(app, ["verify-history", str(store.root)])
    assert res.exit_code == 1
    assert "tree file is invalid: Merkle tree does not contain the expected value" in res.stdout
