"""Cross-check against ``@openzeppelin/merkle-tree`` (npm, pinned in package.json) run by node."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from datanet.anchoring.merkle import LEAF_ENCODING, StandardMerkleTree

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "oz_crosscheck.js"
HAVE_OZ = (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir()

pytestmark = pytest.mark.skipif(
    not (HAVE_OZ and shutil.which("node")),
    reason="needs node and node_modules/@openzeppelin/merkle-tree (run `npm ci` at the repo root)",
)


def _run_js(payload: dict) -> dict:
    out = subprocess.run(
        ["node", str(SCRIPT)], input=json.dumps(payload), capture_output=True, text=True,
        cwd=ROOT, check=True, timeout=120,
    )
    return json.loads(out.stdout)


def _hex(rng: random.Random, n: int) -> str:
    return "0x" + rng.randbytes(n).hex()


def _random_cases(seed: int) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    for size in (1, 2, 3, 5, 8, 13, 64, 100):
        batch = [[_hex(rng, 32), _hex(rng, 32), _hex(rng, 32), _hex(rng, 20), _hex(rng, 32)]
                 for _ in range(size)]
        mixed = [[_hex(rng, 20), str(rng.getrandbits(256)), rng.choice([True, False]),
                  "".join(rng.choice("aé€💡\\\"' ") for _ in range(rng.randint(0, 9))),
                  _hex(rng, rng.randint(0, 40)), [str(rng.getrandbits(8))
                                                  for _ in range(rng.randint(0, 3))]]
                 for _ in range(size)]
        multi = [sorted(rng.sample(range(size), k)) for k in {0, 1, min(3, size), size}]
        cases.append({"leafEncoding": list(LEAF_ENCODING), "values": batch,
                      "sortLeaves": True, "multi": multi})
        cases.append({"leafEncoding": ["address", "uint256", "bool", "string", "bytes",
                                       "uint8[]"],
                      "values": mixed, "sortLeaves": size % 2 == 0, "multi": multi})
    return cases


def test_random_trees_match_openzeppelin_js() -> None:
    cases = _random_cases(7)
    js = _run_js({"cases": cases})
    for case, out in zip(cases, js["cases"], strict=True):
        tree = StandardMerkleTree.of(case["values"], case["leafEncoding"],
                                     sort_leaves=case["sortLeaves"])
        assert tree.root == out["root"]
        assert tree.all_proofs() == out["proofs"]
        assert tree.dump() == out["dump"]
        for ix, mp in zip(case["multi"], out["multi"], strict=True):
            ours = tree.get_multi_proof(ix).to_json()
            assert ours == mp


def test_python_dumps_load_and_verify_in_js() -> None:
    rng = random.Random(11)
    dumps = []
    for size in (1, 6, 33):
        values = [[_hex(rng, 32), _hex(rng, 32), _hex(rng, 32), _hex(rng, 20), _hex(rng, 32)]
                  for _ in range(size)]
        dumps.append(StandardMerkleTree.of(values, LEAF_ENCODING).dump())
    js = _run_js({"cases": [], "load": dumps})
    for dump, out in zip(dumps, js["loaded"], strict=True):
        tree = StandardMerkleTree.load(dump)
        assert out["root"] == tree.root
        assert out["verified"] is True
        assert out["proofs"] == tree.all_proofs()
