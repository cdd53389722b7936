"""A Dask run whose workers share nothing but the S3 server: the datanet and its inputs live
in a bucket; the committed rows, votes and Merkle roots equal a DirectRunner run into a local
datanet over the same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from datanet.pipelines.dask import local_cluster, run_on_dask
from datanet.pipelines.run import run_datanet
from datanet.store.fs import url_to_fs
from datanet.store.layout import init_datanet
from datanet.store.query import VIEWS, connect

pytestmark = [pytest.mark.dask, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cooking-qa"


def _committed(store) -> dict[str, list[tuple]]:
    """Every committed row of every view, plus the batch chain (paths not involved)."""
    con = connect(store)
    rows = {kind: con.execute(f"SELECT * FROM {kind} ORDER BY ALL").fetchall()
            for kind in VIEWS if kind != "batches"}
    rows["batches"] = [
        (m.seq, m.batch_id, m.merkle_root, m.prev_root, m.prev_batch, m.leaf_count,
         tuple(sorted(m.counts.items())), tuple(sorted(m.sources)))
        for m in store.manifests()]
    return rows


def test_dask_workers_sharing_only_the_s3_server_match_a_local_run(s3, tmp_path):
    fs, _ = url_to_fs(s3.uri())
    fs.put(str(EXAMPLE / "contributions") + "/", f"{s3.bucket}/in/", recursive=True)
    fs.put_file(str(EXAMPLE / "more" / "part-4.jsonl"), f"{s3.bucket}/more/part-4.jsonl")
    inputs = [[s3.uri("in", "*")], [s3.uri("more", "part-4.jsonl")]]
    spec = (EXAMPLE / "datanet.toml").read_text(encoding="utf-8")
    local = init_datanet(tmp_path / "cooking-qa", spec)
    remote = init_datanet(s3.uri("dn", "cooking-qa"), spec)
    direct = [run_datanet(local, i, runner="DirectRunner") for i in inputs]
    with local_cluster(2) as address:
        on_dask = [run_on_dask(remote, i, address=address) for i in inputs]
    assert [r.committed for r in direct] == [r.committed for r in on_dask] == [True, True]
    assert [r.manifest.merkle_root for r in on_dask] == [r.manifest.merkle_root for r in direct]
    assert on_dask[1].manifest.prev_root == direct[0].manifest.merkle_root
    want = _committed(local)
    assert len(want["accepted"]) == sum(r.counts["accepted"] for r in direct) > 1500
    assert len(want["votes"]) > 10_000
    assert _committed(remote) == want
    # every byte of the remote datanet is in the bucket, nothing left in its run scratch
    assert fs.find(f"{s3.bucket}/dn/cooking-qa/_runs") == []
