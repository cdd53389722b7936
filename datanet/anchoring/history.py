"""``datanet verify-history``: every committed root, the prevRoot chain and the on-chain anchors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.anchoring.client import ZERO32, open_client
from datanet.anchoring.config import anchoring_config
from datanet.anchoring.merkle import StandardMerkleTree
from datanet.errors import AnchoringError
from datanet.schemas.ids import datanet_key

__all__ = ["verify_history", "check_attribution_shard"]


def _check_tree(store: Any, m: Any, problems: list[str]) -> None:
    path = Path(store.abs(f"trees/{m.batch_id}.json"))
    if not path.exists():
        problems.append(f"batch {m.seq}: trees/{m.batch_id}.json is missing")
        return
    try:
        tree = StandardMerkleTree.loads(path.read_bytes())  # full re-hash of every node
    except (AnchoringError, ValueError, KeyError) as exc:
        problems.append(f"batch {m.seq}: tree file is invalid: {exc}")
        return
    if tree.root != m.merkle_root.lower():
        problems.append(f"batch {m.seq}: tree root {tree.root} != manifest {m.merkle_root}")
    if len(tree) != m.leaf_count:
        problems.append(f"batch {m.seq}: tree has {len(tree)} leaves, manifest {m.leaf_count}")
    key = "0x" + datanet_key(m.datanet).hex()
    if len(tree) and (tree.at(0)[0] != key or tree.at(0)[1] != m.batch_id.lower()):
        problems.append(f"batch {m.seq}: leaves are not bound to this datanet and batch")
    paths = m.paths("accepted")
    if paths:
        ids = pa.concat_arrays([
            pq.read_table(store.abs(p), columns=["contribution_id"])["contribution_id"]
            .combine_chunks() for p in paths
        ]).to_pylist()
        tree_ids = sorted(v[2] for v in tree.values)
        if sorted(i.lower() for i in ids) != tree_ids:
            problems.append(f"batch {m.seq}: tree leaves differ from the accepted records")


def check_attribution_shard(store: Any, m: Any, problems: list[str]) -> str | None:
    """The batch's attribution index shard has the sha256 and size its manifest (or
    ``datanet index``'s pointer) names, and indexes every accepted record; a note when the
    batch predates attribution and has no shard."""
    import hashlib

    from datanet.attribution.index import load_shard, shard_entry

    if not m.files.get("accepted"):
        return None
    entry = shard_entry(store, m)
    if entry is None:
        return f"batch {m.seq}: no attribution index shard (run `datanet index`)"
    path = Path(store.abs(entry.path))
    if not path.exists():
        problems.append(f"batch {m.seq}: attribution shard {entry.path} is missing")
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256 or path.stat().st_size != entry.bytes:
        problems.append(f"batch {m.seq}: attribution shard {entry.path} does not match the "
                        f"sha256 / size its manifest names")
        return None
    shard = load_shard(store, m, entry)
    accepted = sum(f.rows for f in m.files["accepted"])
    if shard.records != accepted:
        problems.append(f"batch {m.seq}: attribution shard indexes {shard.records} records, "
                        f"the batch accepted {accepted}")
    return None


def verify_history(store: Any, *, client: Any = None) -> tuple[list[str], list[str]]:
    """(problems, report lines) for the whole datanet."""
    problems: list[str] = []
    lines: list[str] = []
    manifests = store.manifests()
    problems.extend(store.problems)
    cfg = anchoring_config(store.spec)
    anchored_any = any(Path(store.abs(f"anchors/{m.batch_id}.json")).exists()
                       for m in manifests)
    if client is None and cfg.enabled and anchored_any:
        client = open_client(store, cfg, read_only=True)
    prev = None
    for m in manifests:
        if m.prev_root != prev:
            problems.append(f"batch {m.seq}: prev_root {m.prev_root} != previous root {prev}")
        if not m.merkle_root:
            lines.append(f"batch {m.seq} {m.batch_id}: no accepted records, no root")
            continue
        _check_tree(store, m, problems)
        note = check_attribution_shard(store, m, problems)
        if note:
            lines.append(note)
        status = "not anchored"
        state_path = Path(store.abs(f"anchors/{m.batch_id}.json"))
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        if client is not None:
            onchain = client.batch_of("0x" + datanet_key(m.datanet).hex(), m.batch_id)
            if onchain.anchored:
                status = f"anchored (on-chain seq {onchain.seq}, block {onchain.block_number})"
                if onchain.root != m.merkle_root.lower():
                    problems.append(f"batch {m.seq}: on-chain root {onchain.root} != "
                                    f"manifest {m.merkle_root}")
                if onchain.prev_root != (prev or ZERO32):
                    problems.append(f"batch {m.seq}: on-chain prevRoot {onchain.prev_root} "
                                    f"!= {prev or ZERO32}")
            elif state.get("status") in ("INCLUDED", "FINAL"):
                problems.append(f"batch {m.seq}: outbox says {state['status']} but the "
                                "contract has no root for it")
        lines.append(f"batch {m.seq} {m.batch_id}: root {m.merkle_root} "
                     f"({m.leaf_count} leaves) {status}")
        prev = m.merkle_root.lower()
    return problems, lines
