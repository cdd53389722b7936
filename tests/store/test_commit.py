"""Atomic commits: torn / missing manifests, concurrent commits, a SIGKILLed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datanet.errors import CommitConflict
from datanet.pipelines.run import run_datanet
from datanet.schemas.manifest import FileEntry
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from tests.conftest import TINY_SPEC, record, write_jsonl


def _small_run(store, tmp_path, n=6, name="a.jsonl"):
    path = write_jsonl(tmp_path / name, [record(i, text=f"{record(i)['text']} ({name})")
                                         for i in range(n)])
    return run_datanet(store, [str(path)], runner="DirectRunner")


def test_torn_manifest_is_ignored_and_reported(tiny_store, tmp_path):
    first = _small_run(tiny_store, tmp_path)
    torn = tiny_store.root / "batches" / f"00000002-{'0x' + 'ab' * 32}.json"
    torn.write_text(first.manifest.to_json()[:120])
    assert [m.seq for m in tiny_store.manifests()] == [1]
    assert any("unreadable manifest" in p for p in tiny_store.problems)
    assert connect(tiny_store).execute("SELECT count(*) FROM batches").fetchone()[0] == 1


def test_files_without_a_manifest_are_invisible(tiny_store, tmp_path):
    first = _small_run(tiny_store, tmp_path)
    manifest_file = next((tiny_store.root / "batches").glob("*.json"))
    manifest_file.unlink()
    con = connect(tiny_store)
    assert con.execute("SELECT count(*) FROM accepted").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
    # the data files are still on disk, just not visible
    assert all(Path(tiny_store.abs(f.path)).exists() for f in first.manifest.files["accepted"])


def test_manifest_out_of_chain_is_ignored(tiny_store, tmp_path):
    first = _small_run(tiny_store, tmp_path)
    data = json.loads(first.manifest.to_json())
    data["seq"], data["batch_id"], data["prev_batch"] = 3, "0x" + "cd" * 32, "0x" + "ee" * 32
    (tiny_store.root / "batches" / f"00000003-{data['batch_id']}.json").write_text(
        json.dumps(data))
    assert [m.seq for m in tiny_store.manifests()] == [1]
    assert any("breaks the batch chain" in p for p in tiny_store.problems)


def test_concurrent_commits_one_wins(tiny_store):
    results: list[object] = []

    def commit(batch: str) -> None:
        try:
            results.append(tiny_store.commit(
                batch_id=batch, files={"accepted": []}, counts={"input": 0}, history_seq=0,
                sources=[], report={}, tree=None))
        except CommitConflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=commit, args=("0x" + f"{i:02x}" * 32,))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = [r for r in results if not isinstance(r, Exception)]
    conflicts = [r for r in results if isinstance(r, CommitConflict)]
    assert len(committed) == 1 and len(conflicts) == 3
    assert "re-run" in str(conflicts[0])
    assert [m.seq for m in tiny_store.manifests()] == [1]


def test_same_batch_committed_twice_is_a_noop(tiny_store):
    kwargs = dict(batch_id="0x" + "11" * 32, files={}, counts={"input": 1}, history_seq=0,
                  sources=[], report={}, tree=None)
    assert tiny_store.commit(**kwargs) is not None
    assert tiny_store.commit(**{**kwargs, "history_seq": 1}) is None
    assert len(tiny_store.manifests()) == 1


def test_commit_refuses_missing_files(tiny_store):
    from datanet.errors import StoreError

    with pytest.raises(StoreError, match="missing or has the wrong size"):
        tiny_store.commit(batch_id="0x" + "22" * 32,
                          files={"accepted": [FileEntry("accepted/batch=x/p.parquet", "0", 1, 9)]},
                          counts={}, history_seq=0, sources=[], report={}, tree=None)
    assert tiny_store.manifests() == []


_RUNNER = """
import sys
from datanet.store.layout import DatanetStore
from datanet.pipelines.run import run_datanet
r = run_datanet(DatanetStore(sys.argv[1]), [sys.argv[2]], runner="DirectRunner")
print(r.message)
"""


def _write_many(path: Path, n: int) -> None:
    write_jsonl(path, [record(i, text=f"Cooking tip number {i}: " + "stir gently. " * (i % 7 + 2))
                       for i in range(n)])


@pytest.mark.slow
def test_sigkill_mid_write_then_rerun_gives_one_clean_batch(tmp_path):
    spec = TINY_SPEC + '\n[pipeline]\nbatch_rows = 200\n'
    spec = spec.replace("max_chars = 400", "max_chars = 4000")
    data = tmp_path / "big.jsonl"
    _write_many(data, 20000)
    killed = init_datanet(tmp_path / "killed", spec)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(killed.root), str(data)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # mid-write: chunks spilled to the run's scratch, or a record file being written
        # (outputs are coalesced into one file per kind at the end of the run)
        written = [p for d in ("_runs", "accepted") if (killed.root / d).exists()
                   for p in (killed.root / d).rglob("*") if p.is_file()
                   and not p.name.endswith(".lock")]
        if len(written) >= 3 or any(p.parts[-3] == "accepted" for p in written
                                    if len(p.parts) >= 3):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the run never started writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed.manifests() == []
    assert connect(killed).execute("SELECT count(*) FROM accepted").fetchone()[0] == 0

    again = run_datanet(killed, [str(data)], runner="DirectRunner")
    clean = run_datanet(init_datanet(tmp_path / "clean", spec), [str(data)],
                        runner="DirectRunner")
    assert again.committed and clean.committed
    assert again.batch_id == clean.batch_id
    assert again.counts == clean.counts and again.counts["input"] == 20000
    assert again.manifest.merkle_root == clean.manifest.merkle_root
    q = "SELECT * EXCLUDE (source_file) FROM {} ORDER BY ALL"
    for kind in ("accepted", "rejected", "votes"):
        a = connect(killed).execute(q.format(kind) if kind != "votes" else
                                    "SELECT * FROM votes ORDER BY ALL").fetchall()
        b = connect(tmp_path / "clean").execute(q.format(kind) if kind != "votes" else
                                                "SELECT * FROM votes ORDER BY ALL").fetchall()
        assert a == b, kind


def _tree(store, batch: str):
    import pyarrow as pa

    from datanet.anchoring.merkle import batch_tree

    table = pa.table({"contribution_id": ["0x" + f"{i:02x}" * 32 for i in range(3)],
                      "contributor": ["0x" + "ab" * 20] * 3,
                      "content_hash": ["0x" + f"{i + 9:02x}" * 32 for i in range(3)]})
    return batch_tree(store.spec.id, batch, table)


def test_the_tree_dump_is_staged_then_placed_or_dropped(tiny_store):
    """The tree's dump is written before the lock and renamed in it: a commit that finds its
    batch committed, or conflicts, leaves no dump and no temporary file behind."""
    batch = "0x" + "33" * 32
    tree = _tree(tiny_store, batch)
    kwargs = dict(batch_id=batch, files={}, counts={"input": 3}, sources=[], report={})
    first = tiny_store.commit(**kwargs, history_seq=0, tree=lambda: tree)
    assert first is not None and first.merkle_root == tree.root and first.leaf_count == 3
    trees = tiny_store.root / "trees"
    assert [p.name for p in trees.iterdir()] == [f"{batch}.json"]
    assert (trees / f"{batch}.json").read_text() == tree.dumps()
    assert tiny_store.commit(**kwargs, history_seq=1, tree=_tree(tiny_store, batch)) is None
    other = "0x" + "44" * 32
    with pytest.raises(CommitConflict):
        tiny_store.commit(**{**kwargs, "batch_id": other}, history_seq=0,
                          tree=_tree(tiny_store, other))
    assert [p.name for p in trees.iterdir()] == [f"{batch}.json"]
    assert [m.seq for m in tiny_store.manifests()] == [1]


def test_staged_write_places_or_discards(tmp_path):
    from datanet.store.atomic import StagedWrite

    target = tmp_path / "d" / "f.json"
    staged = StagedWrite(target, ["ab", b"cd"])
    assert not target.exists() and len(list(target.parent.iterdir())) == 1
    staged.place()
    assert target.read_bytes() == b"abcd"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]
    staged.discard()  # placed: nothing to drop
    assert target.read_bytes() == b"abcd"
    dropped = StagedWrite(target, "new")
    dropped.discard()
    assert target.read_bytes() == b"abcd" and len(list(target.parent.iterdir())) == 1
    with pytest.raises(RuntimeError, match="already placed or discarded"):
        dropped.place()
