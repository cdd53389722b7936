"""Datanets on an object store: a real S3 server (moto, tests/store/conftest.py) reached
through the ordinary clients, configured by the environment only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.errors import CommitConflict, StoreError
from datanet.store.fs import ObjectPath, normalise_uri, open_root, url_to_fs
from datanet.store.layout import CLAIMS, DatanetStore, init_datanet
from tests.conftest import TEXTS, TINY_SPEC, record, write_jsonl
from tests.store.conftest import KEY_ID, SECRET, _forget_clients, s3_environment

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    text = r.output
    assert SECRET not in text and KEY_ID not in text, text
    return r.exit_code, text


def _json(*args: str):
    code, text = _cli(*args, "-f", "json")
    assert code == 0, text
    return json.loads(text)


def test_uri_survives_pathlib_and_unknown_schemes_are_refused(tmp_path, monkeypatch):
    assert normalise_uri(Path("s3://b/p")) == "s3://b/p"
    assert normalise_uri("C:/x") == "C:/x"  # a drive letter is not a scheme
    assert open_root(tmp_path / "a") == (tmp_path / "a").resolve()
    monkeypatch.chdir(tmp_path)
    code, text = _cli("init", "nosuchfs://bucket/dn")
    assert code == 1
    assert "nosuchfs://bucket/dn: the nosuchfs:// filesystem is not available" in text
    assert list(tmp_path.iterdir()) == []  # no ./nosuchfs:/bucket/dn folder


def test_init_on_s3_creates_no_local_folder_and_refuses_a_missing_bucket(s3, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, text = _cli("init", s3.uri("dn", "qa"))
    assert code == 0 and f"created datanet qa at {s3.uri('dn', 'qa')}" in text
    assert list(tmp_path.iterdir()) == []
    fs, _ = url_to_fs(s3.uri())
    assert fs.ls(f"{s3.bucket}/dn/qa", detail=False) == [f"{s3.bucket}/dn/qa/datanet.toml"]
    code, text = _cli("init", s3.uri("dn", "qa"))
    assert code == 1 and "a datanet already exists here" in text
    code, text = _cli("init", "s3://datanet-no-such-bucket/dn")
    assert code == 1
    assert "bucket 'datanet-no-such-bucket' does not exist or is not accessible" in text
    assert not fs.exists("datanet-no-such-bucket")  # never created by accident


@pytest.mark.slow
def test_s3_datanet_gives_the_same_batch_as_a_local_one(s3, tmp_path):
    """init, run, re-run, status, sql, verify-history, proof on s3:// — the same batch id,
    Merkle root, counts and rows as the same input on a local root."""
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC)
    inp = write_jsonl(tmp_path / "a.jsonl",
                      [record(i) for i in range(6)] + [record(1), b"{bad"])
    more = write_jsonl(tmp_path / "b.jsonl", [
        record(i + 10, text=TEXTS[i] + f" Tip {i}.") for i in range(2)]  # dup of batch 1
        + [record(i, text=f"A brand new long tip number {i} for batch two.") for i in (2, 3)])
    local, remote = str(tmp_path / "dn"), s3.uri("dn")
    for root in (local, remote):
        assert _cli("init", root, "--spec", str(spec))[0] == 0
        code, text = _cli("run", root, str(inp), "--no-anchor")
        assert code == 0, text
        assert "8 records → 6 accepted, 0 rejected, 0 needs review, 2 dead-letter" in text
        code, text = _cli("run", root, str(inp), "--no-anchor")
        assert code == 0 and "nothing new" in text
        # a second batch: dedup reads the first one's history from the store
        code, text = _cli("run", root, str(more), "--no-anchor")
        assert code == 0, text
        assert "4 records → 2 accepted, 2 rejected, 0 needs review, 0 dead-letter" in text
    q = ("SELECT seq, batch_id, merkle_root, prev_root, leaf_count, accepted, rejected, "
         "deadletter FROM batches")
    want = _json("sql", local, q)
    assert _json("sql", remote, q) == want and len(want) == 2
    assert want[1]["prev_root"] == want[0]["merkle_root"]
    rows = ("SELECT contribution_id, contributor, content_hash, text, batch FROM accepted "
            "ORDER BY contribution_id")
    assert _json("sql", remote, rows) == _json("sql", local, rows)
    dead = "SELECT reason, source_line FROM deadletter ORDER BY source_line"
    assert _json("sql", remote, dead) == _json("sql", local, dead) == [
        {"reason": "duplicate_submission", "source_line": 7},
        {"reason": "invalid_json", "source_line": 8}]
    code, text = _cli("status", remote)
    assert code == 0 and f"datanet {remote}" in text
    code, text = _cli("verify-history", remote)
    assert code == 0 and "history valid" in text, text
    cid = _json("sql", remote, "SELECT min(contribution_id) AS c FROM accepted")[0]["c"]
    code, bundle = _cli("proof", remote, cid)
    assert code == 0, bundle
    code, local_bundle = _cli("proof", local, cid)
    assert json.loads(bundle)["proof"] == json.loads(local_bundle)["proof"]
    assert (json.loads(bundle)["root"] == json.loads(local_bundle)["root"]
            in {w["merkle_root"] for w in want})
    assert (_json("sql", remote, "SELECT reasons FROM rejected ORDER BY contribution_id")
            == _json("sql", local, "SELECT reasons FROM rejected ORDER BY contribution_id"))
    # attribution receipts and a reward epoch: committed on the store, the same roots
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text(json.dumps({"output_id": "o1", "text": TEXTS[2] + " Tip 2."}) + "\n")
    receipts, epochs = [], []
    for root in (local, remote):
        code, text = _cli("attribute", root, str(outputs), "--record")
        assert code == 0 and "committed receipts batch 1" in text, text
        receipts.append(_json("sql", root, "SELECT receipt_id, batch FROM attributions"))
        code, text = _cli("rewards", "compute", root, "--epoch", "1", "--pool", "1000000")
        assert code == 0, text
        epochs.append(next(line for line in text.splitlines() if line.startswith("epoch 1 ")))
    assert receipts[0] == receipts[1] and len(receipts[0]) == 1
    assert epochs[0] == epochs[1] and epochs[0].startswith("epoch 1 committed: root 0x")
    code, text = _cli("verify-history", remote)
    assert code == 0 and "history valid" in text, text
    # every file of the datanet is on the server; the local layout names the same files
    fs, _ = url_to_fs(remote)
    remote_files = {p.split("/dn/", 1)[1] for p in fs.find(f"{s3.bucket}/dn")}
    local_files = {str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file()}
    assert remote_files - local_files == {f"{CLAIMS}/00000001.json", f"{CLAIMS}/00000002.json"}
    assert local_files - remote_files == {".commit.lock"}


def _no_pipeline(*args, **kwargs):
    raise AssertionError("the pipeline ran")


def test_inputs_on_s3_globs_and_reason_codes(s3, tmp_path, monkeypatch):
    fs, _ = url_to_fs(s3.uri())
    a = write_jsonl(tmp_path / "a.jsonl", [record(i) for i in range(3)] + [b"{bad"])
    b = write_jsonl(tmp_path / "b.jsonl", [record(i, text="x" * 5000) for i in range(4, 6)])
    fs.put_file(str(a), f"{s3.bucket}/in/a.jsonl")
    fs.put_file(str(b), f"{s3.bucket}/in/sub/b.jsonl")
    fs.pipe_file(f"{s3.bucket}/in/notes.txt", b"not an input")
    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    code, text = _cli("run", str(store.root), s3.uri("in", "*.txt"), "--no-anchor")
    assert code == 1 and "notes.txt" in text
    code, text = _cli("run", str(store.root), s3.uri("in", "nothing-*.jsonl"), "--no-anchor")
    assert code == 1 and f"{s3.uri('in', 'nothing-*.jsonl')}: no input file matches" in text
    code, text = _cli("run", str(store.root), s3.uri("in", "**", "*.jsonl"), "--no-anchor")
    assert code == 0, text
    assert "6 records → 3 accepted, 0 rejected, 0 needs review, 3 dead-letter" in text
    # a re-run of the same objects is recognised by their source fingerprint, before Beam
    import datanet.pipelines.run as run_module

    (manifest,) = DatanetStore(str(store.root)).manifests()
    assert manifest.source_fingerprint is not None
    with monkeypatch.context() as m:
        m.setattr(run_module, "build_pipeline", _no_pipeline)
        again = run_module.run_datanet(DatanetStore(str(store.root)),
                                       [s3.uri("in", "**", "*.jsonl")])
    assert (again.committed, again.batch_id) == (False, manifest.batch_id)
    assert again.message.startswith("nothing new: this input is batch 1")
    dead = _json("sql", str(store.root), "SELECT reason, source_file, source_line FROM "
                 "deadletter ORDER BY source_file, source_line")
    assert dead == [
        {"reason": "invalid_json", "source_file": s3.uri("in", "a.jsonl"), "source_line": 4},
        {"reason": "too_large", "source_file": s3.uri("in", "sub", "b.jsonl"),
         "source_line": 1},
        {"reason": "too_large", "source_file": s3.uri("in", "sub", "b.jsonl"),
         "source_line": 2}]
    # the same files read locally give the same reason codes and lines
    local = init_datanet(tmp_path / "local", TINY_SPEC)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    a.rename(tmp_path / "in" / "a.jsonl")
    b.rename(tmp_path / "in" / "sub" / "b.jsonl")
    code, text = _cli("run", str(local.root), str(tmp_path / "in" / "*.jsonl"),
                      str(tmp_path / "in" / "sub" / "*.jsonl"), "--no-anchor")
    assert code == 0, text
    q = "SELECT reason, source_line FROM deadletter ORDER BY source_line, reason"
    assert _json("sql", str(local.root), q) == _json("sql", str(store.root), q)
    # a committed object lost on the server: the snapshot is refused, naming the file
    accepted = [p for p in fs.find(f"{s3.bucket}/dn/accepted") if "/batch=" in p]
    fs.rm_file(accepted[0])
    code, text = _cli("sql", str(store.root), "SELECT 1")
    assert code == 1 and f"{accepted[0].split('/dn/', 1)[1]} is missing" in text


def test_create_exclusive_has_exactly_one_winner(s3):
    """Eight threads put the same key with If-None-Match: * — the server lets one win."""
    fs, _ = url_to_fs(s3.uri())
    target = ObjectPath(fs, f"{s3.bucket}/claims/00000001.json")
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def put(i: int) -> None:
        barrier.wait()
        results.append(target.create_exclusive(f"writer {i}".encode()))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert target.read_text().startswith("writer ")


_COMMITTER = textwrap.dedent("""
    import json, sys, time
    from datanet.errors import CommitConflict
    from datanet.store.layout import DatanetStore
    root, name, start, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    store = DatanetStore(root)
    for r in range(rounds):
        time.sleep(max(0.0, start + 0.4 * r - time.time()))
        try:
            m = store.commit(batch_id=f"0x{name}{r:02d}", files={}, counts={"input": 0},
                             history_seq=r, sources=[], report={}, tree=None)
            print(json.dumps([r, "won", m.seq]), flush=True)
        except CommitConflict as exc:
            print(json.dumps([r, "lost", str(exc)]), flush=True)
""")


@pytest.mark.slow
def test_two_concurrent_committer_processes_one_wins_each_sequence(s3):
    """Two processes commit a different batch on the same history at the same instant, ten
    times: each sequence number has exactly one winner and the chain stays whole."""
    import time

    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    env = {**os.environ, **s3_environment(s3.endpoint), "PYTHONPATH": os.getcwd()}
    start, rounds = time.time() + 6.0, 10
    procs = [subprocess.Popen([sys.executable, "-c", _COMMITTER, str(store.root), name,
                               str(start), str(rounds)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("aa", "bb")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [[json.loads(line) for line in o[0].splitlines()] for o in outs]
    # every round: one process won sequence r + 1, the other got CommitConflict
    for r in range(rounds):
        outcome = sorted(res[r][1] for res in results)
        assert outcome == ["lost", "won"], (r, results)
    won = sorted(r[2] for res in results for r in res if r[1] == "won")
    assert won == list(range(1, rounds + 1))
    manifests = DatanetStore(str(store.root)).manifests()
    assert [m.seq for m in manifests] == won
    assert all(m.prev_batch == (manifests[i - 1].batch_id if i else None)
               for i, m in enumerate(manifests))
    fs, _ = url_to_fs(s3.uri())
    assert len(fs.ls(f"{s3.bucket}/dn/{CLAIMS}")) == len(manifests)


def test_racing_committers_on_one_sequence(s3):
    """Both committers read the same history; the one whose claim lands second is refused
    with CommitConflict and commits nothing (threads with their own stores, one server)."""
    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    stores = [DatanetStore(str(store.root)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcome: dict[int, object] = {}

    def commit(i: int) -> None:
        barrier.wait()
        try:
            outcome[i] = stores[i].commit(batch_id=f"0x{i:064x}", files={}, counts={},
                                          history_seq=0, sources=[], report={}, tree=None)
        except CommitConflict as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(type(v).__name__ for v in outcome.values())
    assert kinds == ["CommitConflict", "Manifest"]
    winner = next(v for v in outcome.values() if not isinstance(v, Exception))
    assert [m.batch_id for m in DatanetStore(str(store.root)).manifests()] == [winner.batch_id]


def test_a_crash_mid_commit_leaves_no_visible_partial_batch(s3, tmp_path):
    """Parquet files a dead run staged are invisible; a claim whose manifest copy was never
    written (the committer died between the two puts) is rolled forward by the next reader."""
    from datanet.schemas.manifest import Manifest
    from datanet.store.files import write_table
    from datanet.store.query import connect

    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    import pyarrow as pa

    write_table(str(store.root), "deadletter", "0x" + "ab" * 32,
                pa.table({"reason": ["invalid_json"]}))
    fs, _ = url_to_fs(s3.uri())
    assert [p for p in fs.find(f"{s3.bucket}/dn/deadletter")
            if "/batch=" in p]  # staged by the dead run …
    con = connect(str(store.root))
    assert con.execute("SELECT count(*) FROM deadletter").fetchone() == (0,)  # … but invisible
    # DuckDB reads the store through the registered fsspec filesystem, never httpfs
    assert con.execute("SELECT list(loaded) FROM duckdb_extensions() WHERE extension_name = "
                       "'httpfs'").fetchone()[0] in (None, [], [False])
    assert con.list_filesystems() == ["s3"]
    assert con.execute("SELECT count(*) FROM batches").fetchone() == (0,)

    manifest = Manifest(seq=1, batch_id="0x" + "cd" * 32, datanet="tiny",
                        created_at="2026-12-03T00:00:00+00:00", files={}, counts={"input": 0},
                        merkle_root=None, leaf_count=0, prev_root=None, prev_batch=None,
                        history_seq=0, sources=(), report={})
    (store.root / CLAIMS / "00000001.json").write_text(manifest.to_json())
    assert [m.batch_id for m in DatanetStore(str(store.root)).manifests()] == [manifest.batch_id]
    assert fs.exists(f"{s3.bucket}/dn/batches/00000001-{manifest.batch_id}.json")
    with pytest.raises(CommitConflict):
        store.commit(batch_id="0x" + "ef" * 32, files={}, counts={}, history_seq=0,
                     sources=[], report={}, tree=None)


def test_credentials_never_printed_even_on_errors(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _forget_clients()
    for args in (("init", s3.uri("dn")), ("status", s3.uri("dn")),
                 ("run", s3.uri("dn"), s3.uri("in", "*.jsonl"), "--no-anchor")):
        code, text = _cli(*args)  # _cli asserts neither the key id nor the secret appears
        assert code != 0, text


def test_store_error_for_a_bucketless_uri():
    with pytest.raises(StoreError, match="give a bucket"):
        open_root("s3://")


def test_object_lock_excludes_and_a_dead_holders_lease_expires(s3):
    """The lease lock serialising receipts / reward epochs on an object store: two holders
    never overlap; a lock left by a killed holder is taken over once its lease ran out."""
    import time

    from datanet.store.layout import _object_lock

    fs, _ = url_to_fs(s3.uri())
    lock = ObjectPath(fs, f"{s3.bucket}/dn/.commit.lock")
    inside, overlaps, entered = [0], [0], []

    def hold(i: int) -> None:
        for _ in range(3):
            with _object_lock(lock, poll_s=0.01):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                entered.append(i)
                time.sleep(0.05)
                inside[0] -= 1

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [0] and sorted(entered) == [0, 0, 0, 1, 1, 1]
    assert not lock.exists()  # released

    lock.write_text("a killed holder\n")
    start = time.time()
    with _object_lock(lock, lease_s=1.0, poll_s=0.05):
        waited = time.time() - start
        assert lock.read_text() != "a killed holder\n"
    assert 0.0 < waited < 4.0
    assert not lock.exists()


_KILLED_COMMITTER = textwrap.dedent("""
    import os, signal, sys
    import pyarrow as pa
    from datanet.store import fs as store_fs
    from datanet.store.files import write_table
    from datanet.store.layout import DatanetStore
    root, when = sys.argv[1], sys.argv[2]
    store = DatanetStore(root)
    batch = "0x" + "ab" * 32
    entry = write_table(root, "deadletter", batch, pa.table({"reason": ["invalid_json"]}))
    real = store_fs.ObjectPath.create_exclusive

    def create_then_die(self, data):
        if "/_seq/" in self.path and when == "before-claim":
            os.kill(os.getpid(), signal.SIGKILL)
        ok = real(self, data)
        if "/_seq/" in self.path and when == "after-claim":
            os.kill(os.getpid(), signal.SIGKILL)
        return ok

    store_fs.ObjectPath.create_exclusive = create_then_die
    store.commit(batch_id=batch, files={"deadletter": [entry]}, counts={"deadletter": 1},
                 history_seq=0, sources=[], report={}, tree=None)
    print("not killed")
""")


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before-claim", "after-claim"])
def test_kill_9_mid_commit(s3, when):
    """A committer killed with SIGKILL just before its claim leaves nothing visible (its
    staged file is there, unnamed); killed just after it, the batch is committed and the next
    reader publishes the manifest copy."""
    from datanet.store.query import connect

    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    env = {**os.environ, **s3_environment(s3.endpoint), "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-c", _KILLED_COMMITTER, str(store.root), when],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    fs, _ = url_to_fs(s3.uri())
    assert len([p for p in fs.find(f"{s3.bucket}/dn/deadletter")
                if "/batch=" in p]) == 1  # staged either way
    con = connect(str(store.root))
    visible = con.execute("SELECT count(*) FROM deadletter").fetchone()[0]
    batches = con.execute("SELECT seq, batch_id FROM batches").fetchall()
    if when == "before-claim":
        assert (visible, batches) == (0, [])
        assert not fs.exists(f"{s3.bucket}/dn/batches")
    else:
        assert (visible, batches) == (1, [(1, "0x" + "ab" * 32)])
        assert fs.exists(f"{s3.bucket}/dn/batches/00000001-0x{'ab' * 32}.json")


def test_root_forms(s3, tmp_path):
    """``file://`` is local; a trailing slash and a bucket without prefix are roots too."""
    assert open_root(f"file://{tmp_path}/dn") == (tmp_path / "dn").resolve()
    assert str(open_root(s3.uri("dn") + "/")) == s3.uri("dn")
    store = init_datanet(s3.uri(), TINY_SPEC)  # the bucket itself
    assert str(store.root) == s3.uri()
    assert store.commit(batch_id="0x" + "12" * 32, files={}, counts={}, history_seq=0,
                        sources=[], report={}, tree=None).seq == 1
    again = DatanetStore(s3.uri() + "/")
    assert [m.seq for m in again.manifests()] == [1]
    again.check_snapshot(again.manifests())


def test_object_store_scratch_of_dead_runs_is_swept_by_age(s3):
    store = init_datanet(s3.uri("dn"), TINY_SPEC)
    runs = store.root / "_runs"
    (runs / "dead" / "files.json").write_text("{}")
    (runs / "dead.lock").write_text("1\n")
    (runs / "lonely.lock").write_text("2\n")  # killed before writing any scratch
    with store.run_scratch() as (run_id, scratch):
        assert scratch == str(runs / run_id)
        assert store.sweep_runs(unlocked_grace_s=3600) == []  # all young: kept
        assert (runs / f"{run_id}.lock").exists()
    assert not (runs / f"{run_id}.lock").exists()  # its own lock removed at the end
    assert store.sweep_runs(unlocked_grace_s=0) == ["dead"]
    assert sorted(p.name for p in runs.iterdir()) == []
