"""Reward trees and claim bundles against ``@openzeppelin/merkle-tree`` (npm) run by node."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from datanet.rewards.chain import proof_bundle
from datanet.rewards.epoch import compute_epoch
from tests.rewards.helpers import commit_texts, make_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "oz_verify_bundle.js"
HAVE_OZ = (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir()

pytestmark = pytest.mark.skipif(
    not (HAVE_OZ and shutil.which("node")),
    reason="needs node and node_modules/@openzeppelin/merkle-tree (run `npm ci` at the repo root)",
)


def _run_js(payload: dict) -> list[dict]:
    out = subprocess.run(["node", str(SCRIPT)], input=json.dumps(payload), capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bundles_verify_in_openzeppelin_js(tmp_path):
    rng = random.Random(5)
    store = make_store(tmp_path)
    people = [f"0x{rng.getrandbits(160):040x}" for _ in range(37)]
    commit_texts(store, "b1", [(p, " ".join(f"w{j}" for j in range(rng.randint(1, 40))))
                               for p in people])
    compute_epoch(store, 1, 10**21 + 7)
    commit_texts(store, "b2", [(people[3], "more words here"), (people[30], "and here")])
    compute_epoch(store, 2, 2**200 + 3)
    cases, expected = [], []
    for epoch in (1, 2):
        dump = json.loads(Path(store.abs(f"rewards/{epoch}.json")).read_text())
        bundles = [proof_bundle(store, epoch, p) for p in people]
        cases.append({"dump": dump, "bundles": bundles})
        expected.append(bundles)
    js = _run_js({"cases": cases})
    for bundles, got in zip(expected, js, strict=True):
        assert got["loadedRoot"] == got["rebuiltRoot"] == bundles[0]["root"]
        assert got["verified"] == [True] * len(bundles)
        assert got["proofs"] == [b["proof"] for b in bundles]
    # a tampered amount does not verify
    bad = {**expected[1][0], "value": [*expected[1][0]["value"][:3], "1"]}
    js = _run_js({"cases": [{"dump": cases[1]["dump"], "bundles": [bad]}]})
    assert js[0]["verified"] == [False] and js[0]["proofs"] == [None]
