"""`datanet attribute` / `index` / `receipt-proof`, receipts (committed, anchored, proven),
and the shard built by a real pipeline run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datanet.anchoring.client import open_client
from datanet.anchoring.history import verify_history
from datanet.attribution.receipts import (
    load_receipts,
    receipt_id,
    receipt_manifests,
    receipt_proof,
    verify_receipt_proof,
)
from datanet.cli import app
from datanet.pipelines.run import run_datanet
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from tests.attribution.helpers import commit_texts
from tests.attribution.test_attribution import GREEK, OTHER
from tests.conftest import TINY_SPEC, record, write_jsonl

runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    s = init_datanet(tmp_path / "dn", TINY_SPEC)
    commit_texts(s, [GREEK, OTHER])
    return s


def _outputs(tmp_path, rows, name="out.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_attribute_json_lines_in_input_order(store, tmp_path):
    out = _outputs(tmp_path, [{"id": "o1", "text": f"Quote: {GREEK}!", "model": "m"},
                              {"id": "o2", "text": "nothing to see here"}])
    r = runner.invoke(app, ["attribute", str(store.root), str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    first, second = (json.loads(x) for x in r.stdout.splitlines())
    assert list(first) == ["id", "output_hash", "snapshot", "attributions", "unattributed"]
    assert first["id"] == "o1" and first["snapshot"]["seq"] == 1
    (a,) = first["attributions"]
    assert set(a) == {"contribution_id", "contributor", "batch_id", "weight", "spans"}
    assert a["spans"] == [[7, 7 + len(GREEK)]] and a["weight"] == round(10 / 11, 12)
    assert a["weight"] + first["unattributed"] == pytest.approx(1.0, abs=1e-12)
    assert second["attributions"] == [] and second["unattributed"] == 1.0


def test_attribute_stdin_table_and_output_file(store, tmp_path):
    line = json.dumps({"id": "s", "text": GREEK.upper()}) + "\n"
    r = runner.invoke(app, ["attribute", str(store.root), "-", "-o", str(tmp_path / "r.jsonl")],
                      input=line)
    assert r.exit_code == 0, r.output
    assert "100.0% attributed" in r.stdout and "IOTA KAPPA" in r.stdout
    assert json.loads((tmp_path / "r.jsonl").read_text())["attributions"][0]["weight"] == 1.0


def test_attribute_bad_inputs_fail_with_a_reason(store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "ok"}\n{"id": 2}\n')
    r = runner.invoke(app, ["attribute", str(store.root), str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:2: expected" in r.output.replace("\n", "")
    r = runner.invoke(app, ["attribute", str(store.root), str(bad), "--as-of", "9"])
    assert r.exit_code == 1 and "--as-of 9: no such batch" in r.output
    r = runner.invoke(app, ["attribute", str(store.root), "-", "--min-span", "3"],
                      input='{"text": "a"}\n')
    assert r.exit_code == 1 and "min_span=3" in r.output


def test_record_commits_anchors_and_proves_receipts(store, tmp_path):
    out = _outputs(tmp_path, [{"id": "o1", "text": GREEK, "model": "m1"},
                              {"id": "o2", "text": f"{OTHER} ok", "model": "m1"}])
    r = runner.invoke(app, ["attribute", str(store.root), str(out), "--format", "json",
                            "--record"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert "committed receipts batch 1" in r.stderr and "FINAL" in r.stderr
    # the same outputs against the same snapshot: no new receipts batch
    r = runner.invoke(app, ["attribute", str(store.root), str(out), "--record", "--no-anchor"])
    assert "nothing new" in r.stderr
    more = _outputs(tmp_path, [{"id": "o3", "text": GREEK}], "more.jsonl")
    assert runner.invoke(app, ["attribute", str(store.root), str(more), "--record"]
                         ).exit_code == 0
    assert [m.seq for m in receipt_manifests(store)] == [1, 2]

    loaded = load_receipts(store)
    assert [(x["id"], x["receipt_seq"]) for x in loaded] == [("o1", 1), ("o2", 1), ("o3", 2)]
    for got, want in zip(loaded, lines, strict=False):
        assert {k: got[k] for k in want} == want and got["model"] == "m1"
        assert receipt_id({k: v for k, v in got.items()
                           if k not in ("receipt_seq", "receipt_id")}
                          | {"datanet": "tiny"}) == got["receipt_id"]
    assert [x["id"] for x in load_receipts(store, after_seq=1)] == ["o3"]
    assert [x["id"] for x in load_receipts(store, up_to_seq=1)] == ["o1", "o2"]

    con = connect(store)
    assert con.execute("SELECT output_id, snapshot_seq, len(attributions) FROM attributions "
                       "ORDER BY output_id").fetchall() == [("o1", 1, 1), ("o2", 1, 1),
                                                            ("o3", 1, 1)]

    rid = loaded[1]["receipt_id"]
    r = runner.invoke(app, ["receipt-proof", str(store.root), rid])
    assert r.exit_code == 0, r.output
    bundle = json.loads(r.stdout)
    assert bundle == receipt_proof(store, rid)
    r = runner.invoke(app, ["proof", str(store.root), "--receipt", rid])
    assert r.exit_code == 0 and json.loads(r.stdout) == bundle
    r = runner.invoke(app, ["proof", str(store.root)])
    assert r.exit_code == 2 and "give a contribution id, or --receipt ID" in r.output
    assert bundle["anchor"]["status"] == "FINAL" and bundle["namespace"] == "tiny/attributions"
    checks = verify_receipt_proof(bundle, client=open_client(store, read_only=True))
    assert checks == [(n, True) for n in ("receipt_id", "output_hash", "namespace", "batch_id",
                                          "merkle_proof", "leaf_hash", "contract_verify_leaf")]
    forged = json.loads(json.dumps(bundle))
    forged["receipt"]["attributions"][0]["weight"] = 1.0
    assert dict(verify_receipt_proof(forged))["receipt_id"] is False
    # the data batches' chain is untouched: verify-history still holds
    problems, _ = verify_history(store)
    assert problems == []


def test_pipeline_commit_names_the_shard(tmp_path):
    s = init_datanet(tmp_path / "dn", TINY_SPEC)
    inp = write_jsonl(tmp_path / "a.jsonl", [record(i) for i in range(6)])
    res = run_datanet(s, [str(inp)], runner="DirectRunner")
    (entry,) = res.manifest.files["attribution"]
    assert entry.path.startswith(f"attribution/batch={res.batch_id}/shard-")
    text = record(2)["text"]
    (r,) = __import__("datanet.attribution", fromlist=["attribute"]).attribute(
        s, [f"As they say: {text}"])
    assert len(r.attributions) == 1 and r.attributions[0].contributor == record(2)["contributor"]
    r = runner.invoke(app, ["index", str(s.root)])
    assert r.exit_code == 0 and "every batch has its shard" in r.output


ROOT = Path(__file__).resolve().parents[2]
# the repo's node_modules (npm ci), or a NODE_PATH holding @openzeppelin/merkle-tree
_OZ = [p for p in (ROOT / "node_modules", Path(os.environ.get("NODE_PATH") or "/nonexistent"))
       if (p / "@openzeppelin" / "merkle-tree").is_dir()]


@pytest.mark.skipif(not (_OZ and shutil.which("node")),
                    reason="needs node and node_modules/@openzeppelin/merkle-tree (npm ci)")
def test_receipt_proof_verifies_with_openzeppelin_js(store, tmp_path):
    from datanet.attribution import attribute
    from datanet.attribution.receipts import record_receipts

    done = record_receipts(store, attribute(store, [GREEK, OTHER, "unrelated words only"]))
    bundles = [receipt_proof(store, rid) for rid in done.receipt_ids]
    script = (
        "const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');"
        "const bs = JSON.parse(require('fs').readFileSync(0, 'utf-8'));"
        "process.stdout.write(JSON.stringify(bs.map(b => StandardMerkleTree.verify("
        "b.root, b.leaf_encoding, b.value, b.proof))));")
    r = subprocess.run(["node", "-e", script], input=json.dumps(bundles), capture_output=True,
                       text=True, env={**os.environ, "NODE_PATH": str(_OZ[0])},
                       check=True)
    assert json.loads(r.stdout) == [True, True, True]
    bad = json.loads(json.dumps(bundles[0]))
    bad["value"][2] = bundles[1]["value"][2]
    r = subprocess.run(["node", "-e", script], input=json.dumps([bad]), capture_output=True,
                       text=True, env={**os.environ, "NODE_PATH": str(_OZ[0])},
                       check=True)
    assert json.loads(r.stdout) == [False]
