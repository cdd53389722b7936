"""Handmade datanets: accepted records committed straight through ``DatanetStore.commit``."""

from __future__ import annotations

import pyarrow as pa

from datanet.anchoring.merkle import batch_tree
from datanet.schemas.ids import batch_id as make_batch_id
from datanet.schemas.ids import content_hash, contribution_id
from datanet.store.files import write_table
from tests.conftest import ADDRS


def commit_texts(store, texts, *, contributors=None, rejected_ids=(), on_tree=None):
    """Commit one batch whose accepted records are ``texts`` (and rejected ``rejected_ids``);
    ``on_tree`` is called where the commit builds the batch's tree (given as a function)."""
    contributors = contributors or [ADDRS[i % len(ADDRS)] for i in range(len(texts))]
    hashes = [content_hash(t) for t in texts]
    ids = [contribution_id(store.spec.id, c, h) for c, h in zip(contributors, hashes,
                                                                strict=True)]
    table = pa.table({"contribution_id": ids, "contributor": contributors, "text": texts,
                      "content_hash": hashes})
    batch = make_batch_id(store.spec.id, ids + list(rejected_ids))
    files = {"accepted": [write_table(str(store.root), "accepted", batch, table)]} if texts else {}
    if rejected_ids:
        rej = pa.table({"contribution_id": list(rejected_ids)})
        files["rejected"] = [write_table(str(store.root), "rejected", batch, rej)]
    last = store.last_manifest()
    tree = batch_tree(store.spec.id, batch, table) if texts else None
    if on_tree is not None:
        built = tree
        tree = lambda: (on_tree(), built)[1]  # noqa: E731
    return store.commit(batch_id=batch, files=files,
                        counts={"accepted": len(texts), "rejected": len(rejected_ids)},
                        history_seq=last.seq if last else 0, sources=[], report={}, tree=tree)
