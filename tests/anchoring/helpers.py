"""Helpers for anchoring tests: datanets with committed batches (no pipeline run needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.anchoring.merkle import batch_tree
from datanet.schemas.ids import batch_id as make_batch_id
from datanet.schemas.ids import content_hash, contribution_id
from datanet.schemas.manifest import FileEntry
from datanet.store.layout import DatanetStore, init_datanet

ADDRS = [f"0x{(i + 1) * 0x1111:040x}" for i in range(5)]

SPEC = 'id = "anchor-test"\nname = "Anchor test"\n'


def make_store(tmp: Path, spec: str = SPEC) -> DatanetStore:
    """A datanet on the embedded chain (default [anchoring])."""
    return init_datanet(tmp / "dn", spec)


def accepted_table(datanet: str, tag: str, n: int) -> pa.Table:
    """``n`` accepted records (the three columns the tree needs)."""
    contributors = [ADDRS[i % len(ADDRS)] for i in range(n)]
    texts = [f"{tag} record {i}" for i in range(n)]
    hashes = [content_hash(t) for t in texts]
    ids = [contribution_id(datanet, a, h) for a, h in zip(contributors, hashes, strict=True)]
    return pa.table({"contribution_id": ids, "contributor": contributors, "content_hash": hashes,
                     "text": texts})


def commit_batch(store: DatanetStore, tag: str, n: int) -> tuple[str, pa.Table]:
    """Commit a batch of ``n`` accepted records (``n = 0``: an empty batch, no root)."""
    table = accepted_table(store.spec.id, tag, n)
    bid = make_batch_id(store.spec.id, [content_hash(tag), *table["contribution_id"].to_pylist()])
    files: dict[str, list[FileEntry]] = {}
    if n:
        rel = f"accepted/batch={bid}/part-0.parquet"
        path = Path(store.abs(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        files["accepted"] = [FileEntry(rel, digest, n, path.stat().st_size)]
    last = store.last_manifest()
    store.commit(batch_id=bid, files=files, counts={"accepted": n},
                 history_seq=last.seq if last else 0, sources=[tag], report={},
                 tree=batch_tree(store.spec.id, bid, table))
    return bid, table
