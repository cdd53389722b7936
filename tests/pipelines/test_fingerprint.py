"""Re-runs of a committed input are recognised from source fingerprints, before any Beam work."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pytest

from datanet.pipelines import fingerprint
from datanet.pipelines.fingerprint import literal_inputs, source_fingerprint, spec_fingerprint
from datanet.pipelines.run import match_inputs, run_datanet
from datanet.schemas.manifest import Manifest
from datanet.store.layout import SPEC_FILE, DatanetStore
from tests.conftest import ADDRS, record, write_jsonl

_REAL_PIPELINE = beam.Pipeline
REPO = Path(__file__).resolve().parents[2]


class _BeamRan(Exception):
    pass


def _forbid_beam(mp: pytest.MonkeyPatch) -> None:
    """From now on, building a Beam pipeline raises :class:`_BeamRan`."""
    def boom(*a, **k):
        raise _BeamRan
    mp.setattr(beam, "Pipeline", boom)


def _inputs(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [record(i) for i in range(6)] + [b"{nope"])
    b = write_jsonl(tmp_path / "b.jsonl", [record(i) for i in range(6, 9)])
    return [str(a), str(b)]


def _committed(tiny_store, tmp_path):
    inputs = _inputs(tmp_path)
    first = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert first.committed
    return inputs, first


def test_rerun_of_committed_input_skips_beam(tiny_store, tmp_path, monkeypatch):
    inputs, first = _committed(tiny_store, tmp_path)
    fp = spec_fingerprint(tiny_store, inputs)
    assert first.manifest.source_fingerprint == fp and len(fp) == 64
    assert Manifest.from_json(first.manifest.to_json()).source_fingerprint == fp
    _forbid_beam(monkeypatch)
    again = run_datanet(tiny_store, list(reversed(inputs)), runner="DirectRunner")
    assert not again.committed
    assert again.batch_id == first.batch_id and again.manifest == first.manifest
    assert again.counts == {"accepted": 9, "rejected": 0, "quarantine": 0, "deadletter": 1,
                            "input": 10} == first.counts
    assert again.message == (f"nothing new: this input is batch 1 ({first.batch_id[:12]}…), "
                             "already committed")
    assert again.report == {}
    assert not (tiny_store.root / "_runs").exists() or not any(
        (tiny_store.root / "_runs").iterdir())
    assert len(tiny_store.manifests()) == 1




def test_changes_fall_through(tiny_store, tmp_path, monkeypatch):
    """One changed byte, an added file, an edited spec: each runs the pipeline."""
    inputs, _ = _committed(tiny_store, tmp_path)
    _forbid_beam(monkeypatch)
    # the same input is recognised ...
    assert "nothing new" in run_datanet(tiny_store, inputs, runner="DirectRunner").message
    # ... an added file is not
    extra = write_jsonl(tmp_path / "c.jsonl", [record(20, contributor=ADDRS[3])])
    with pytest.raises(_BeamRan):
        run_datanet(tiny_store, [*inputs, str(extra)], runner="DirectRunner")
    # ... nor one changed byte (same size)
    data = bytearray(Path(inputs[1]).read_bytes())
    original = bytes(data)
    data[-3] ^= 1
    Path(inputs[1]).write_bytes(bytes(data))
    with pytest.raises(_BeamRan):
        run_datanet(tiny_store, inputs, runner="DirectRunner")
    with monkeypatch.context() as mp:  # the full run of the changed input commits it
        mp.setattr(beam, "Pipeline", _REAL_PIPELINE)
        changed = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert changed.committed and changed.manifest.seq == 2
    assert changed.manifest.source_fingerprint == spec_fingerprint(tiny_store, inputs)
    assert "batch 2 " in run_datanet(tiny_store, inputs, runner="DirectRunner").message
    Path(inputs[1]).write_bytes(original)
    assert "nothing new" in run_datanet(tiny_store, inputs, runner="DirectRunner").message
    # ... nor an edited spec (a comment: the slow path would still say nothing new)
    spec = tiny_store.root / SPEC_FILE
    spec.write_bytes(spec.read_bytes() + b"\n# edited\n")
    with pytest.raises(_BeamRan):
        run_datanet(DatanetStore(tiny_store.root), inputs, runner="DirectRunner")


def test_old_manifest_without_fingerprint_loads_and_does_not_match(tiny_store, tmp_path,
                                                                   monkeypatch):
    inputs, first = _committed(tiny_store, tmp_path)
    path, = (tiny_store.root / "batches").glob("*.json")
    data = json.loads(path.read_text())
    del data["source_fingerprint"]
    path.write_text(json.dumps(data, sort_keys=True, indent=1))
    old, = tiny_store.manifests()
    assert old.source_fingerprint is None and old.batch_id == first.batch_id
    assert "source_fingerprint" not in old.to_json()
    _forbid_beam(monkeypatch)
    with pytest.raises(_BeamRan):
        run_datanet(tiny_store, inputs, runner="DirectRunner")


def test_slow_path_still_answers_nothing_new_for_an_old_manifest(tiny_store, tmp_path):
    inputs, first = _committed(tiny_store, tmp_path)
    path, = (tiny_store.root / "batches").glob("*.json")
    data = json.loads(path.read_text())
    del data["source_fingerprint"]
    path.write_text(json.dumps(data, sort_keys=True, indent=1))
    again = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert (again.committed, again.batch_id, again.counts) == (False, first.batch_id,
                                                               first.counts)
    assert again.message.startswith("nothing new: this input is batch 1 (")


def test_no_fingerprint_when_an_input_changed_during_the_run(tiny_store, tmp_path,
                                                             monkeypatch):
    import datanet.pipelines.run as run_mod

    real = run_mod.file_stamps
    calls = []

    def stamps(files):  # the second look (after the pipeline) sees another mtime
        calls.append(files)
        got = real(files)
        return got if len(calls) == 1 else tuple((*s[:3], s[3] + 1, s[4]) for s in got)

    monkeypatch.setattr(run_mod, "file_stamps", stamps)
    first = run_datanet(tiny_store, _inputs(tmp_path), runner="DirectRunner")
    assert first.committed and first.manifest.source_fingerprint is None and len(calls) == 2
    assert "source_fingerprint" not in (tiny_store.root / "batches").glob(
        "*.json").__next__().read_text()


def test_spec_edited_after_the_store_loaded_it_gives_no_fingerprint(tiny_store, tmp_path,
                                                                    monkeypatch):
    spec = tiny_store.root / SPEC_FILE
    spec.write_bytes(spec.read_bytes() + b"\n# edited after loading\n")
    inputs = _inputs(tmp_path)
    assert spec_fingerprint(tiny_store, inputs) is None
    first = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert first.committed and first.manifest.source_fingerprint is None
    fresh = DatanetStore(tiny_store.root)
    assert fresh.spec_stamp is not None and spec_fingerprint(fresh, inputs) is not None
    _forbid_beam(monkeypatch)
    with pytest.raises(_BeamRan):  # nothing recorded: the full run answers
        run_datanet(fresh, inputs, runner="DirectRunner")


def test_fingerprint_layout_and_non_regular_inputs(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(b"x")
    fp = source_fingerprint(b"spec", [str(a)])
    assert fp == source_fingerprint(b"spec", [str(a), str(a)])
    # the layout the module documents, over files hashed on several threads: sorted paths
    files = {tmp_path / f"{n}.jsonl": bytes([n]) * (n * 700_000) for n in (3, 1, 2)}
    for path, data in files.items():
        path.write_bytes(data)

    def frame(data: bytes) -> bytes:
        return len(data).to_bytes(8, "big") + data

    want = hashlib.sha256(fingerprint._TAG + frame(b"spec"))
    for path in sorted(files):
        want.update(frame(str(path).encode()) + len(files[path]).to_bytes(8, "big")
                    + hashlib.sha256(files[path]).digest())
    assert source_fingerprint(b"spec", [str(p) for p in files]) == want.hexdigest()
    assert fp != source_fingerprint(b"spec2", [str(a)])
    link = tmp_path / "l.jsonl"
    link.symlink_to(a)
    assert source_fingerprint(b"spec", [str(link)]) != fp  # the path is part of the identity
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    assert source_fingerprint(b"spec", [str(a), str(fifo)]) is None  # never opened
    assert literal_inputs([str(fifo)]) is None
    assert literal_inputs([str(tmp_path / "*.jsonl")]) is None
    assert literal_inputs(["gs://bucket/a.jsonl"]) is None
    assert literal_inputs([str(link), str(a), str(a)]) == sorted([str(a), str(link)])
    # the literal paths are what the pipeline's matching returns for them
    assert literal_inputs([str(link), str(a)]) == match_inputs([str(link), str(a)])
    rel = os.path.relpath(a)
    assert literal_inputs([rel]) == match_inputs([rel]) == [rel]


def test_cli_rerun_says_nothing_new_without_importing_beam(tiny_store, tmp_path):
    inputs, first = _committed(tiny_store, tmp_path)
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('BEAM', 'apache_beam' in sys.modules))\n"
            f"sys.argv = ['datanet', 'run', {str(tiny_store.root)!r}, *{inputs!r}, "
            "'--no-anchor']\n"
            "runpy.run_module('datanet', run_name='__main__', alter_sys=True)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        f"nothing new: this input is batch 1 ({first.batch_id[:12]}…), already committed: "
        "10 records → 9 accepted, 0 rejected, 0 needs review, 1 dead-letter (")
    assert proc.stdout.rstrip().endswith("BEAM False")
    assert len(tiny_store.manifests()) == 1
