"""Helpers for reward tests: datanets with committed batches of given texts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.anchoring.merkle import batch_tree
from datanet.schemas.ids import batch_id as make_batch_id
from datanet.schemas.ids import content_hash, contribution_id
from datanet.schemas.manifest import FileEntry
from datanet.store.layout import DatanetStore, init_datanet

A, B, C, D = (f"0x{(i + 1) * 0x1111:040x}" for i in range(4))
SPEC = 'id = "rewards-test"\nname = "Rewards test"\n'


def make_store(tmp: Path, spec: str = SPEC) -> DatanetStore:
    """A datanet on the embedded chain."""
    return init_datanet(tmp / "dn", spec)


def commit_texts(store: DatanetStore, tag: str, rows: list[tuple[str, str]]) -> str:
    """Commit a batch whose accepted records are ``(contributor, text)`` rows."""
    contributors = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    hashes = [content_hash(t) for t in texts]
    ids = [contribution_id(store.spec.id, a, h) for a, h in zip(contributors, hashes,
                                                                 strict=True)]
    table = pa.table({"contribution_id": ids, "contributor": contributors,
                      "content_hash": hashes, "text": texts})
    bid = make_batch_id(store.spec.id, [content_hash(tag), *ids])
    files: dict[str, list[FileEntry]] = {}
    if rows:
        rel = f"accepted/batch={bid}/part-0.parquet"
        path = Path(store.abs(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        files["accepted"] = [FileEntry(rel, "0" * 64, len(rows), path.stat().st_size)]
    last = store.last_manifest()
    store.commit(batch_id=bid, files=files, counts={"accepted": len(rows)},
                 history_seq=last.seq if last else 0, sources=[tag], report={},
                 tree=batch_tree(store.spec.id, bid, table))
    return bid
