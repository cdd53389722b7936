"""The committed artifacts are exactly what the pinned solc compiles from contracts/ (CI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not ((ROOT / "node_modules" / "solc").is_dir() and shutil.which("node")),
                    reason="needs node and node_modules/solc (run `npm ci` at the repo root)")
def test_artifact_is_up_to_date() -> None:
    res = subprocess.run(["node", "contracts/build.js", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "matches contracts/DatanetAnchor.sol (0.8.37+" in res.stdout
    assert "matches contracts/DatanetRewards.sol (0.8.37+" in res.stdout
    assert "matches contracts/test/RewardTestToken.sol (0.8.37+" in res.stdout
