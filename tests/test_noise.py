"""Third-party noise: Presidio, Beam and Dask say nothing a user cannot act on, and a local
Dask run leaves no scratch outside the datanet."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import tempfile

import pytest

from datanet import _logging
from tests.conftest import TINY_SPEC, record, write_jsonl


def test_python_api_run_is_quiet(tmp_path):
    """A run through the Python API prints nothing on stderr (it printed 11 Presidio
    'Recognizer not added to registry' warnings and Beam's 'apitools not found')."""
    inp = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(3)])
    (tmp_path / "spec.toml").write_text(TINY_SPEC)
    code = (
        "from datanet.store.layout import init_datanet\n"
        "from datanet.pipelines.run import run_datanet\n"
        f"s = init_datanet({str(tmp_path / 'dn')!r}, "
        f"open({str(tmp_path / 'spec.toml')!r}).read())\n"
        f"print(run_datanet(s, [{str(inp)!r}], runner='DirectRunner').counts['accepted'])\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "3"
    assert p.stderr == ""


def test_dask_run_spec_warning_becomes_one_line():
    logger = logging.getLogger("distributed.scheduler")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    old = _logging._OneLineRunSpec.seen
    _logging._OneLineRunSpec.seen = False
    try:
        for key in ("a", "b"):
            logger.warning(f"Detected different `run_spec` for key {key!r} between two "
                           "consecutive calls to `update_graph`.\nDebugging information\n---")
        logger.warning("something else")
    finally:
        logger.removeHandler(handler)
        _logging._OneLineRunSpec.seen = old
    lines = stream.getvalue().splitlines()
    assert lines == [
        "Dask: a task key was submitted again with a different graph (Beam's DaskRunner "
        "reuses keys across computations, dask/dask#9888); further such warnings are not "
        "shown", "something else"]


@pytest.mark.dask
def test_local_dask_run_keeps_its_scratch_inside_the_datanet(tmp_path, monkeypatch):
    from datanet.pipelines.dask import run_on_dask
    from datanet.store.layout import init_datanet

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    store = init_datanet(tmp_path / "dn", TINY_SPEC)
    inp = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    result = run_on_dask(store, [str(inp)], workers=1)
    assert result.committed and result.counts["accepted"] == 4
    assert not (tmp / "dask-scratch-space").exists(), list(tmp.iterdir())
    assert not [p for p in (store.root / "_runs").iterdir()]
