"""Through the real pipeline: a copycat who resubmits accepted texts (verbatim or with a
cosmetic edit) under a new address is rejected by dedup and earns nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.rewards.epoch import compute_epoch
from datanet.store.layout import DatanetStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cooking-qa"
COPYCAT = "0x" + "c0" * 20
runner = CliRunner()


def _run(dn: Path, src: Path) -> None:
    r = runner.invoke(app, ["run", str(dn), str(src), "--no-anchor"])
    assert r.exit_code == 0, r.output


@pytest.mark.slow  # two pipeline runs (~30-60 s on a shared machine)
def test_copycat_gets_nothing(tmp_path):
    dn = tmp_path / "cooking-qa"
    assert runner.invoke(app, ["init", str(dn), "--spec",
                               str(EXAMPLE / "datanet.toml")]).exit_code == 0
    raw = (EXAMPLE / "contributions" / "part-1.jsonl").read_bytes().splitlines()[:12]
    lines = [x.decode("utf-8") for x in raw]
    originals = [json.loads(x) for x in lines]
    (tmp_path / "orig.jsonl").write_text("\n".join(lines) + "\n")
    _run(dn, tmp_path / "orig.jsonl")
    store = DatanetStore(dn)
    copies = []
    for i, rec in enumerate(originals):
        text = rec["text"] if i % 2 else rec["text"].replace(" ", "  ").upper()
        copies.append(json.dumps({**rec, "contributor": COPYCAT, "text": text,
                                  "submitted_at": "2026-12-01T00:00:00Z"}))
    (tmp_path / "copy.jsonl").write_text("\n".join(copies) + "\n")
    _run(dn, tmp_path / "copy.jsonl")
    m1, m2 = store.manifests()
    assert m2.counts.get("accepted", 0) == 0
    settlement, _ = compute_epoch(store, 1, 10**21 + 7)
    paid = {a[0]: a[3] for a in settlement.allocations}
    assert COPYCAT not in paid
    assert sum(paid.values()) == 10**21 + 7
    first = pa.concat_tables(pq.read_table(store.abs(p)) for p in m1.paths("accepted"))
    assert m1.counts["accepted"] >= 6
    assert set(paid) == {c.lower() for c in first["contributor"].to_pylist()}
    assert m2.counts.get("rejected", 0) + m2.counts.get("deadletter", 0) == len(copies)
