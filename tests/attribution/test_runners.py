"""The same attribution index from the DirectRunner and the DaskRunner (LocalCluster)."""

from __future__ import annotations

import pytest

from datanet.attribution import attribute
from datanet.pipelines.dask import local_cluster, run_on_dask
from datanet.pipelines.run import run_datanet
from datanet.store.layout import init_datanet
from tests.conftest import TEXTS, TINY_SPEC, record, write_jsonl

pytestmark = pytest.mark.dask


def test_same_shards_and_answers_on_direct_and_dask(tmp_path):
    rows = [record(i, text=f"{TEXTS[i % len(TEXTS)]} Variation number {i} of this tip.")
            for i in range(40)]
    first = write_jsonl(tmp_path / "a.jsonl", rows[:25])
    second = write_jsonl(tmp_path / "b.jsonl", rows[25:])
    direct = init_datanet(tmp_path / "direct", TINY_SPEC)
    on_dask = init_datanet(tmp_path / "dask", TINY_SPEC)
    d = [run_datanet(direct, [str(p)], runner="DirectRunner") for p in (first, second)]
    with local_cluster(2) as address:
        k = [run_on_dask(on_dask, [str(p)], address=address) for p in (first, second)]
    assert [r.manifest.files["attribution"] for r in d] == \
        [r.manifest.files["attribution"] for r in k]
    outputs = [rows[3]["text"], f"quoting {rows[30]['text']} verbatim", "unrelated words"]
    assert [x.to_json() for x in attribute(direct, outputs)] == \
        [x.to_json() for x in attribute(on_dask, outputs)]
    got = attribute(direct, outputs)
    # each tip text is shared by 5 records (TEXTS cycles every 8); the quoted one leads
    assert [len(x.attributions) for x in got] == [5, 5, 0]
    assert [x.attributions[0].contributor for x in got[:2]] == [rows[3]["contributor"],
                                                                 rows[30]["contributor"]]
