"""The parse-ahead process: the driver's own chunks, each file claimed once, failures named."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from datanet.errors import DatanetError, WorkerLost
from datanet.pipelines import ahead as ahead_mod
from datanet.pipelines.ahead import ParseAhead
from datanet.pipelines.intake import iter_path_chunks
from datanet.pipelines.io import read_spilled_batch
from datanet.pipelines.run import _open_raw
from datanet.store.layout import init_datanet
from tests.conftest import TINY_SPEC
from tests.pipelines.test_run import _awkward_inputs

T = 1_700_000_000_000_000  # the files' time, as the driver passes it


@pytest.fixture
def spec(tmp_path):
    return init_datanet(tmp_path / "store", TINY_SPEC.replace(
        "[limits]", "[pipeline]\nbatch_rows = 2\n\n[limits]", 1)).spec


@pytest.fixture
def files(tmp_path):
    plain, _ = _awkward_inputs(tmp_path)
    bad_gzip = tmp_path / "c.jsonl.gz"
    bad_gzip.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    empty = tmp_path / "d.jsonl"
    empty.write_bytes(b"")
    return [plain, str(tmp_path / "b.jsonl.gz"), str(bad_gzip), str(empty)]


def _same(got, want) -> None:
    assert [c[0] for c in got] == [c[0] for c in want]  # chunk keys
    for (_, batch, dead), (_, batch0, dead0) in zip(got, want, strict=True):
        for x, y in ((batch, batch0), (dead, dead0)):
            assert (x is None) == (y is None)
            if x is not None:
                assert x.schema.equals(y.schema, check_metadata=True)
                assert x.equals(y)


def _claimed(ahead: ParseAhead, i: int) -> None:
    deadline = time.monotonic() + 30
    while ahead._state[i] != ahead_mod._CHILD:
        assert time.monotonic() < deadline, "the process never claimed the file"
        time.sleep(0.01)


def test_chunks_parsed_ahead_are_the_drivers_own(spec, files, tmp_path) -> None:
    want = {f: list(iter_path_chunks(spec, f, _open_raw, default_time_us=T)) for f in files}
    # records and dead letters in one chunk, a chunk of dead letters only, a dead file, none
    assert [[(b.num_rows if b is not None else 0, d.column("reason").to_pylist()
              if d is not None else []) for _, b, d in want[f]] for f in files] == [
        [(2, []), (2, []), (2, []), (2, ["invalid_json"])],
        [(2, []), (2, []), (0, ["missing_field", "bad_type"])],
        [(0, ["invalid_compression"])],
        []]
    ahead = ParseAhead(spec, [(f, T) for f in files], str(tmp_path / "scratch"), _open_raw)
    try:
        batches = []
        for i, f in enumerate(files):
            _claimed(ahead, i)
            got = ahead.take(f, T)
            assert got is not None
            got = list(got)
            _same(got, want[f])
            batches += [b for _, b, _ in got if b is not None]
            assert ahead.take(f, T) is None  # listed twice: the second time the driver's
        assert ahead._pending() == 0
        # each chunk's records stay in the file the pool ships (the dead letters are read
        # and removed): one per chunk with records, read back as the same batch
        refs = [ahead.shipped(b) for b in batches]
        assert sorted(os.listdir(tmp_path / "scratch")) == sorted(
            [*(Path(r[0]).name for r in refs), "ahead-claims"]) and len(refs) == 6
        for batch, ref in zip(batches, refs, strict=True):
            assert read_spilled_batch(*ref).to_batches()[0].equals(batch)
        assert ahead.shipped(batches[0]) is None  # shipped once
        assert ahead._files_of == {}  # every batch shipped: none held
    finally:
        ahead.close()
    assert ahead.exitcode == 0  # it parsed every file and ended
    assert ahead_mod.running(ahead.token) is None


def test_each_file_goes_to_whoever_claims_it_first(spec, files, tmp_path) -> None:
    # limit 1: once the first file's chunks wait, the process claims nothing more
    ahead = ParseAhead(spec, [(f, T) for f in files[:3]], str(tmp_path / "scratch"),
                       _open_raw, limit=1)
    try:
        _claimed(ahead, 0)
        assert ahead.take(files[2], T) is None  # not claimed: now the driver's
        assert ahead.take(files[1], T) is None
        assert ahead.take("/not/listed.jsonl", T) is None
        _same(list(ahead.take(files[0], T)),
              list(iter_path_chunks(spec, files[0], _open_raw, default_time_us=T)))
        ahead._process.join(30)
        assert ahead._process.exitcode == 0  # it skipped the driver's files and ended
        assert list(ahead._state) == [ahead_mod._CHILD, ahead_mod._DRIVER, ahead_mod._DRIVER]
    finally:
        ahead.close()


def _settled(ahead: ParseAhead, pending: int) -> None:
    deadline = time.monotonic() + 30
    while ahead._pending() != pending:
        assert time.monotonic() < deadline, f"{ahead._pending()} chunks wait, not {pending}"
        time.sleep(0.01)
    time.sleep(0.3)
    assert ahead._pending() == pending  # and it stays there: the process waits


def test_what_waits_is_bounded_within_a_file_too(spec, files, tmp_path) -> None:
    # limit 2: the dead file's one chunk, then two of a.jsonl's four, and a pause there
    ahead = ParseAhead(spec, [(files[2], T), (files[0], T)], str(tmp_path / "scratch"),
                       _open_raw, limit=2)
    try:
        _settled(ahead, 3)
        assert ahead._state[1] == ahead_mod._CHILD
        # the driver asks for the paused file first: taking its chunks lets it go on, while
        # the other file's chunk still waits (the process waits on its own file only)
        _same(list(ahead.take(files[0], T)),
              list(iter_path_chunks(spec, files[0], _open_raw, default_time_us=T)))
        _same(list(ahead.take(files[2], T)),
              list(iter_path_chunks(spec, files[2], _open_raw, default_time_us=T)))
        assert ahead._pending() == 0
        assert len(ahead._files_of) == 4  # a.jsonl's four batches, never shipped
    finally:
        ahead.close()
    assert ahead._files_of == {}  # close lets them (and their memory maps) go


def test_a_file_changed_since_listed_is_parsed_anew(spec, files, tmp_path) -> None:
    ahead = ParseAhead(spec, [(files[0], T)], str(tmp_path / "scratch"), _open_raw)
    try:
        _claimed(ahead, 0)
        assert ahead.take(files[0], T + 1) is None  # another time: the driver parses it
        assert ahead._pending() == 0  # what was parsed ahead was read and dropped
        assert os.listdir(tmp_path / "scratch") == ["ahead-claims"]
    finally:
        ahead.close()


def _stuck_opener(path: str):
    if path.endswith("b.jsonl.gz"):
        time.sleep(600)
    return _open_raw(path)


def test_a_killed_process_is_a_lost_worker(spec, files, tmp_path) -> None:
    ahead = ParseAhead(spec, [(files[1], T)], str(tmp_path / "scratch"), _stuck_opener)
    try:
        _claimed(ahead, 0)
        os.kill(ahead._process.pid, signal.SIGKILL)
        chunks = ahead.take(files[1], T)
        with pytest.raises(WorkerLost, match="parse-ahead process died"):
            list(chunks)
    finally:
        ahead.close()


@pytest.mark.parametrize("changed", [False, True])
def test_a_failure_not_the_inputs_names_the_file(spec, files, tmp_path, monkeypatch,
                                                 changed: bool) -> None:
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ahead_mod, "spill_chunk", full)  # the forked process inherits it
    ahead = ParseAhead(spec, [(files[0], T)], str(tmp_path / "scratch"), _open_raw)
    try:
        _claimed(ahead, 0)
        if changed:  # the file changed since listed: the driver parses it anew, no error
            assert ahead.take(files[0], T + 1) is None
        else:
            with pytest.raises(DatanetError,
                               match=r"a\.jsonl: parsing ahead failed: OSError: .*No space"):
                list(ahead.take(files[0], T))
    finally:
        ahead.close()


_ORPHAN = """
import sys, time
from datanet.pipelines.ahead import ParseAhead
from datanet.pipelines.run import _open_raw
from datanet.store.layout import DatanetStore

def stuck(path):
    time.sleep(600)

spec = DatanetStore(sys.argv[1]).spec
ahead = ParseAhead(spec, [(sys.argv[2], 0)], sys.argv[3], stuck)
print(ahead._process.pid, flush=True)
time.sleep(600)
"""


def test_the_process_dies_with_the_driver(spec, files, tmp_path) -> None:
    import subprocess
    import sys

    from tests.pipelines.test_pool import _running

    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN, str(tmp_path / "store"), files[0],
                             str(tmp_path / "scratch")], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        assert _running(pid)
        proc.send_signal(signal.SIGKILL)  # as the OOM killer would
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(pid)  # no orphan keeps parsing into a removed scratch
    finally:
        proc.kill()


def test_close_stops_a_process_mid_file(spec, files, tmp_path) -> None:
    ahead = ParseAhead(spec, [(files[1], T)], str(tmp_path / "scratch"), _stuck_opener)
    try:
        _claimed(ahead, 0)
    finally:
        ahead.close()
    assert ahead.exitcode == -signal.SIGKILL
    assert ahead_mod.running(ahead.token) is None
