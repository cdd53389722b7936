"""`datanet serve` as a real process on 127.0.0.1: concurrent requests, bad requests, reload,
recorded receipts, and the same JSON as the CLI."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from datanet.attribution.receipts import load_receipts
from datanet.cli import app
from datanet.store.layout import init_datanet
from tests.attribution.helpers import commit_texts
from tests.attribution.test_attribution import BOILER, GREEK, OTHER
from tests.conftest import TINY_SPEC


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(tmp_path):
    store = init_datanet(tmp_path / "dn", TINY_SPEC)
    commit_texts(store, [GREEK, OTHER])
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "datanet", "serve", str(store.root), "--port", str(port),
         "--reload-interval", "0.1", "--record", "--record-interval", "0.2", "--no-anchor"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if _request(f"{url}/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(proc.stderr.read().decode())
    yield store, url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_served_api_equals_cli_under_concurrency(served, tmp_path):
    store, url, proc = served
    outputs = [{"id": f"o{i}", "text": t, "model": "m"} for i, t in enumerate(
        [GREEK, f"so {OTHER}", "nothing here at all", f"{GREEK.upper()} and more"] * 10)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda o: _request(f"{url}/attribute", o), outputs))
    assert {s for s, _ in got} == {200}
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in outputs))
    r = CliRunner().invoke(app, ["attribute", str(store.root), str(path), "--format", "json"])
    assert [b for _, b in got] == [json.loads(x) for x in r.stdout.splitlines()]
    status, batch = _request(f"{url}/attribute", {"outputs": outputs[:3]})
    assert status == 200 and batch["results"] == [b for _, b in got[:3]]

    # a new batch is picked up without a restart
    commit_texts(store, [f"{BOILER} and then some more words to go"])
    for _ in range(100):
        if _request(f"{url}/health")[1]["snapshot"]["seq"] == 2:
            break
        time.sleep(0.1)
    status, res = _request(f"{url}/attribute", {"id": "b", "text": BOILER})
    assert res["snapshot"]["seq"] == 2 and len(res["attributions"]) == 1

    # receipts: recorded in batches, flushed at shutdown
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    recorded = load_receipts(store)
    assert len(recorded) == 44
    assert sorted(x["id"] for x in recorded) == sorted(
        [o["id"] for o in outputs] + ["o0", "o1", "o2", "b"])


@pytest.mark.parametrize(("raw", "status", "reason"), [
    (b"{not json", 400, "the body is not JSON"),
    (b"[1, 2]", 400, "the body must be a JSON object"),
    (b'{"id": "x"}', 400, 'outputs[0]: expected {"id": str, "text": str'),
    (b'{"outputs": []}', 400, "outputs must be a non-empty list"),
    (b'{"text": "a \\ud800 b"}', 400, "outputs[0].text is not valid Unicode"),
    (b'{"text": "a", "as_of": -1}', 422, "as_of=-1 must be a batch sequence number"),
    (b'{"text": "a", "model": 3}', 400, "outputs[0].model must be a string"),
    (b'{"text": "a", "min_span": 2}', 422, "min_span=2 must be >= the index n-gram length"),
    (b'{"text": "a", "min_span": "x"}', 422, "min_span='x' must be an integer"),
    (b'{"text": "a", "as_of": 9}', 422, "--as-of 9: no such batch"),
    (b'{"outputs": [' + b",".join([b'{"text": "a"}'] * 300) + b"]}", 413, "300 outputs"),
])
def test_bad_requests_get_4xx_with_a_reason(served, raw, status, reason):
    _, url, proc = served
    got, body = _request(f"{url}/attribute", raw=raw)
    assert got == status and reason in body["error"]
    assert proc.poll() is None
    assert _request(f"{url}/attribute", raw=b'{"text": "a", "as_of": 1}')[0] == 200
