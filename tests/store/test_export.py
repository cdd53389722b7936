"""`datanet export`: Parquet / JSON lines / HF folder, metadata, as-of, loaders."""

from __future__ import annotations

import json

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.errors import StoreError
from datanet.store.export import METADATA_KEY, export_snapshot
from tests.conftest import TINY_SPEC, record, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def dn(tmp_path_factory):
    """Two batches: 5 then 3 accepted records."""
    tmp = tmp_path_factory.mktemp("export")
    (tmp / "spec.toml").write_text(TINY_SPEC)
    path = tmp / "dn"
    assert runner.invoke(app, ["init", str(path), "--spec", str(tmp / "spec.toml")]).exit_code == 0
    a = write_jsonl(tmp / "a.jsonl", [record(i) for i in range(5)])
    b = write_jsonl(tmp / "b.jsonl", [record(i, text=f"Another long tip number {i}, friends.")
                                      for i in range(3)])
    for f in (a, b):
        assert runner.invoke(app, ["run", str(path), str(f), "--no-anchor"]).exit_code == 0
    return path


def _batches(dn):
    r = runner.invoke(app, ["sql", str(dn), "SELECT seq, batch_id, merkle_root, leaf_count "
                                            "FROM batches ORDER BY seq", "-f", "json"])
    return json.loads(r.stdout)


def _accepted_ids(dn, as_of=None):
    extra = ["--as-of", str(as_of)] if as_of else []
    r = runner.invoke(app, ["sql", str(dn), "SELECT a.contribution_id FROM accepted a JOIN "
                            "batches b ON a.batch = b.batch_id ORDER BY b.seq, 1", "-f", "json",
                            *extra])
    return [x["contribution_id"] for x in json.loads(r.stdout)]


def test_parquet_export_carries_licence_roots_and_rows(dn, tmp_path):
    dest = tmp_path / "snap.parquet"
    r = runner.invoke(app, ["export", str(dn), str(dest)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(dest)
    meta = json.loads(pq.read_schema(dest).metadata[METADATA_KEY])
    assert meta["license"] == "CC-BY-4.0" and meta["datanet"] == "tiny"
    assert meta["as_of"] == 2 and meta["records"] == 8
    assert [(b["seq"], b["batch_id"], b["merkle_root"], b["leaf_count"])
            for b in meta["batches"]] == [
        (b["seq"], b["batch_id"], b["merkle_root"], b["leaf_count"]) for b in _batches(dn)]
    assert all(b["anchor"] is None for b in meta["batches"])  # anchoring off in this spec
    df = pl.read_parquet(dest)
    assert df["contribution_id"].to_list() == _accepted_ids(dn)
    assert "text_norm" not in df.columns and "batch" in df.columns
    assert pd.read_parquet(dest).shape == (8, df.width)


def test_as_of_and_jsonl(dn, tmp_path):
    dest = tmp_path / "snap.jsonl"
    res = export_snapshot(dn, dest, as_of=1, format="jsonl")
    assert res.rows == 5 and res.files == (dest, tmp_path / "snap.jsonl.datanet.json")
    df = pd.read_json(dest, lines=True)
    assert df["contribution_id"].tolist() == _accepted_ids(dn, as_of=1)
    first = json.loads(dest.read_text().splitlines()[0])
    assert first["submitted_at"].endswith("Z") and "T12:00:00" in first["submitted_at"]
    side = json.loads((tmp_path / "snap.jsonl.datanet.json").read_text())
    assert side["as_of"] == 1 and len(side["batches"]) == 1
    assert pl.read_ndjson(dest).height == 5


def test_existing_destination_is_refused(dn, tmp_path):
    dest = tmp_path / "x.parquet"
    dest.write_bytes(b"keep me")
    with pytest.raises(StoreError, match="already exists"):
        export_snapshot(dn, dest)
    assert dest.read_bytes() == b"keep me"
    assert export_snapshot(dn, dest, overwrite=True).rows == 8
    r = runner.invoke(app, ["export", str(dn), str(tmp_path / "y"), "--as-of", "3"])
    assert r.exit_code == 1 and "no such batch" in r.output


def test_hf_folder_loads_offline_with_datasets(dn, tmp_path, monkeypatch):
    # offline before the import: huggingface_hub and datasets read these at import time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    dest = tmp_path / "hf"
    r = runner.invoke(app, ["export", str(dn), str(dest), "--format", "hf"])
    assert r.exit_code == 0, r.output
    card = (dest / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-4.0\npretty_name: \"Tiny\"\n")
    for b in _batches(dn):
        assert f"| {b['seq']} | `{b['batch_id']}` | `{b['merkle_root']}` |" in card
    assert "datanet proof PATH CONTRIBUTION_ID" in card
    assert json.loads((dest / "datanet.json").read_text())["records"] == 8
    ds = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 8 and ds["contribution_id"] == _accepted_ids(dn)
