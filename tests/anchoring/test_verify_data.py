"""`datanet verify-history` data check and the readers' size check on a real pipeline run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.errors import StoreError
from datanet.pipelines.run import run_datanet
from datanet.store.query import connect
from tests.conftest import record, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A datanet with one committed batch of 8 records, one of them with a redacted phone."""
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    tmp = tmp_path_factory.mktemp("verify")
    store = init_datanet(tmp / "dn", TINY_SPEC + '\n[validators.pii.entities]\n'
                                            'PHONE_NUMBER = "redact"\n')
    recs = [record(i) for i in range(7)]
    recs.append(record(7, text="Call the bakery on +44 20 7946 0958 to order sourdough starter."))
    result = run_datanet(store, [str(write_jsonl(tmp / "in.jsonl", recs))],
                         runner="DirectRunner")
    assert result.committed and result.counts["accepted"] == 8
    return store, result.manifest


def _copy(store, tmp_path) -> Path:
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(store.root, dst)
    return dst


def _verify(path: Path, *extra: str):
    return runner.invoke(app, ["verify-history", str(path), *extra])


def test_clean_datanet_verifies_with_data(committed, tmp_path) -> None:
    store, m = committed
    res = _verify(store.root)
    assert res.exit_code == 0, res.output
    n_files = sum(len(v) for v in m.files.values())
    assert f"data checked ({n_files} files, 8 accepted rows); 1 rows with PII-rewritten " \
           "text: content hash not recomputable" in res.stdout
    assert res.stdout.rstrip().endswith("history valid")
    # the redacted record really is stored rewritten
    text = connect(store).execute(
        "SELECT text FROM accepted WHERE text LIKE 'Call the bakery%'").fetchone()[0]
    assert "7946" not in text


def _edit_text(path: Path, row: int, new_text: str) -> None:
    t = pq.read_table(path)
    texts = t["text"].to_pylist()
    texts[row] = new_text
    t = t.set_column(t.schema.get_field_index("text"), t.schema.field("text"),
                     pa.array(texts, pa.string()))
    pq.write_table(t, path)


def test_edited_record_is_caught_naming_batch_file_row(committed, tmp_path) -> None:
    store, m = committed
    root = _copy(store, tmp_path)
    rel = m.paths("accepted")[0]
    path = root / rel
    t = pq.read_table(path)
    texts = t["text"].to_pylist()
    row = texts.index(next(r for r in texts if r.startswith("Salt the pasta")))
    cid = t["contribution_id"][row].as_py()
    before = path.stat().st_size
    _edit_text(path, row, "Salt the pasta water with a cup of bleach. " * 50)
    after = path.stat().st_size
    assert after != before
    res = _verify(root)
    assert res.exit_code == 1
    where = f"FAIL batch 1 ({m.batch_id}): accepted file {rel}"
    assert f"{where} has {after} bytes, its manifest says {before}" in res.stdout
    assert f"{where}: sha256 " in res.stdout
    assert (f"{where} row {row} (contribution {cid}): its text does not hash to its "
            "content_hash (the text was edited)") in res.stdout
    assert "history valid" not in res.stdout
    # --no-data checks trees, chain and anchors only: it cannot see the edit
    assert _verify(root, "--no-data").exit_code == 0
    # readers refuse the snapshot
    with pytest.raises(StoreError, match=rf"batch 1 \({m.batch_id}\): accepted file {rel} "
                                         rf"has {after} bytes, its manifest says {before}"):
        connect(root)
    res = runner.invoke(app, ["sql", str(root), "SELECT count(*) FROM accepted"])
    assert res.exit_code != 0 and "snapshot is refused" in res.output


def test_edit_with_rewritten_manifest_is_still_caught(committed, tmp_path) -> None:
    """An editor who also fixes the manifest's sha256 and size is caught by the row recompute;
    recomputing the content hash too moves the id, and recomputing the id moves the root."""
    store, m = committed
    root = _copy(store, tmp_path)
    rel = m.paths("accepted")[0]
    path = root / rel
    _edit_text(path, 0, "An entirely different text that was never submitted or voted on.")
    mpath = next((root / "batches").glob("*.json"))
    data = json.loads(mpath.read_text())
    for f in data["files"]["accepted"]:
        if f["path"] == rel:
            f["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            f["bytes"] = path.stat().st_size
    mpath.write_text(json.dumps(data, sort_keys=True, indent=1))
    connect(root)  # sizes match now: the cheap reader check passes
    res = _verify(root)
    assert res.exit_code == 1
    assert "row 0 (contribution " in res.stdout and "does not hash" in res.stdout
    assert "sha256" not in res.stdout
    # now also recompute its content hash: the id no longer matches
    from datanet.privacy.normalise import normalise_text
    from datanet.schemas.ids import content_hash

    t = pq.read_table(path)
    hashes = t["content_hash"].to_pylist()
    hashes[0] = content_hash(normalise_text(t["text"][0].as_py()))
    t = t.set_column(t.schema.get_field_index("content_hash"), "content_hash",
                     pa.array(hashes, pa.string()))
    pq.write_table(t, path)
    res = _verify(root)
    assert res.exit_code == 1
    assert "row 0 (contribution " in res.stdout
    assert "contribution_id != keccak256(datanetKey, contributor, content_hash)" in res.stdout
    assert "does not hash" not in res.stdout


def test_missing_file_is_refused_by_readers(committed, tmp_path) -> None:
    store, m = committed
    root = _copy(store, tmp_path)
    rel = m.paths("votes")[0]
    (root / rel).unlink()
    with pytest.raises(StoreError, match=f"votes file {rel} is missing"):
        connect(root)
    res = _verify(root)
    assert res.exit_code == 1
    assert f"FAIL batch 1 ({m.batch_id}): votes file {rel} is missing" in res.stdout


def test_deleted_row_is_named(committed, tmp_path) -> None:
    """A row removed from an accepted file (manifest sha256 and size rewritten to match):
    the row count, the tree's leaves and the rebuilt root all disagree, naming the record."""
    store, m = committed
    root = _copy(store, tmp_path)
    rel = m.paths("accepted")[0]
    path = root / rel
    t = pq.read_table(path)
    gone = t["contribution_id"][2].as_py()
    pq.write_table(pa.concat_tables([t.slice(0, 2), t.slice(3)]), path)
    mpath = next((root / "batches").glob("*.json"))
    data = json.loads(mpath.read_text())
    for f in data["files"]["accepted"]:
        if f["path"] == rel:
            f["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            f["bytes"] = path.stat().st_size
    mpath.write_text(json.dumps(data, sort_keys=True, indent=1))
    res = _verify(root)
    assert res.exit_code == 1
    out = " ".join(res.stdout.split())
    assert f"accepted file {rel} has 7 rows, its manifest says 8" in out
    assert f"tree leaves differ from the accepted records (in the tree only: ['{gone}']; " \
           "in the files only: -)" in out
    assert "the root rebuilt from its accepted rows is 0x" in out


def test_missing_accepted_file_and_nulled_hash_are_reported_not_raised(committed, tmp_path):
    store, m = committed
    root = _copy(store, tmp_path)
    rel = m.paths("accepted")[0]
    t = pq.read_table(root / rel)
    hashes = t["content_hash"].to_pylist()
    hashes[1] = None
    t = t.set_column(t.schema.get_field_index("content_hash"),
                     pa.field("content_hash", pa.string()), pa.array(hashes, pa.string()))
    pq.write_table(t, root / rel)
    res = _verify(root)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "row 1 (contribution " in res.stdout and "does not hash" in res.stdout
    (root / rel).unlink()
    res = _verify(root)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    out = " ".join(res.stdout.split())
    assert f"accepted file {rel} is missing" in out
    assert "accepted records cannot be read to compare with the tree" in out
