"""Delta tables of a datanet on an object store: the S3 test server of the object-store tests
(``s3`` fixture); skipped where the store has no object-store roots."""

from __future__ import annotations

import importlib.util

import polars as pl
import pytest
from deltalake import DeltaTable

from datanet.pipelines.run import run_datanet
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from datanet.store.tables import TABLE_KINDS, open_table, storage_options, synced_seq
from tests.conftest import TINY_SPEC, record, write_jsonl


@pytest.fixture
def s3_server(request):
    """The object-store tests' S3 server. It must run in its own process: delta-rs holds the
    GIL while it waits for S3, so an in-process threaded server never answers it."""
    if importlib.util.find_spec("datanet.store.fs") is None:
        pytest.skip("the store has no object-store roots here")
    try:
        return request.getfixturevalue("s3")
    except pytest.FixtureLookupError:
        pytest.skip("needs the S3 test server fixture")


def test_tables_on_s3_hold_the_committed_rows(s3_server, tmp_path):
    store = init_datanet(s3_server.uri("dn"), TINY_SPEC)
    for name, idx in (("a.jsonl", range(5)), ("b.jsonl", range(5, 8))):
        recs = [record(i, text=f"{record(i)['text']} ({name})") for i in idx]
        run_datanet(store, [str(write_jsonl(tmp_path / name, recs))], runner="DirectRunner")
    assert store.problems == []
    uri = store.abs("accepted")
    assert uri.startswith("s3://")
    for kind in TABLE_KINDS:
        assert synced_seq(open_table(store, kind)) == 2, kind
    want = sorted(r[0] for r in connect(store).execute(
        "SELECT contribution_id FROM accepted").fetchall())
    assert len(want) == 8
    dt = DeltaTable(uri, storage_options=storage_options(uri))
    assert sorted(dt.to_pyarrow_table().column("contribution_id").to_pylist()) == want
    assert pl.read_delta(uri, storage_options=storage_options(uri), version=0).height == 5
    info = {h["version"]: h for h in dt.history()}
    assert info[1]["datanet.prev_root"] == info[0]["datanet.merkle_root"] != ""
