"""Attribution receipts: recorded attributions, committed like batches and anchored on-chain.

Storage (under the datanet root)::

    attributions/<seq:08d>-<rid>.json          receipts manifest: the commit point
    attributions/batch=<rid>/part-<sha>.parquet one row per receipt (RECEIPT_SCHEMA)
    attributions/trees/<rid>.json              OpenZeppelin standard-v1 tree of the batch
    anchors/<rid>.json                         outbox state (the batch anchoring outbox)

A receipts batch ``rid`` = keccak256(keccak256("<datanet>/attributions") ‖ sorted receipt
ids), so recording the same outputs against the same snapshot twice is a no-op. Receipt
batches have their own sequence ``1, 2, …`` and prevRoot chain (``receipt_seq``). The
manifest is a :class:`~datanet.schemas.manifest.Manifest` whose ``datanet`` is
``"<datanet>/attributions"`` and whose ``history_seq`` is the latest batch the receipts were
attributed against; it is created if absent under the datanet's commit lock.

A receipt is the ``--format json`` object of one output plus ``model`` and ``datanet``; its
``receipt_id`` is keccak256 of that object as canonical JSON (keys sorted, ``,``/``:``
separators, floats in shortest round-trip form, as both Python's ``json`` and JavaScript's
``JSON.stringify`` print them). Leaves are ``(bytes32 receiptsKey, bytes32 receiptsBatchId,
bytes32 receiptId, bytes32 outputHash)``; the root is anchored by the unchanged
``DatanetAnchor`` contract as the batch ``rid`` of datanet id ``keccak256("<datanet>/
attributions")`` (a chain of its own, so the data batches' prevRoot chain is untouched), and a
proof verifies with ``StandardMerkleTree.verify`` and the contract's ``verifyLeaf``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.anchoring.merkle import StandardMerkleTree, process_proof, standard_leaf_hash
from datanet.attribution.match import AttributionResult
from datanet.errors import AnchoringError, StoreError
from datanet.schemas.ids import batch_id as make_batch_id
from datanet.schemas.ids import datanet_key, keccak_hex
from datanet.schemas.manifest import FileEntry, Manifest
from datanet.store.atomic import create_exclusive, write_atomic
from datanet.store.files import table_to_parquet_bytes

if TYPE_CHECKING:
    from datanet.anchoring.client import ChainClient
    from datanet.store.layout import DatanetStore

__all__ = ["RECEIPT_SCHEMA", "RECEIPT_LEAF_ENCODING", "RECEIPT_LEAF_FIELDS", "RECEIPT_FORMAT",
           "ReceiptsCommit", "receipts_namespace", "receipt_object", "receipt_id",
           "record_receipts", "receipt_manifests", "receipts_view_sql", "load_receipts",
           "anchor_receipts", "receipt_proof", "verify_receipt_proof"]

RECEIPT_LEAF_ENCODING = ("bytes32", "bytes32", "bytes32", "bytes32")
RECEIPT_LEAF_FIELDS = ("receipts_key", "receipts_batch_id", "receipt_id", "output_hash")
RECEIPT_FORMAT = "datanet-receipt-proof-v1"
_DIR = "attributions"

_ATTRIBUTION_TYPE = pa.struct([
    ("contribution_id", pa.string()), ("contributor", pa.string()), ("batch_id", pa.string()),
    ("weight", pa.float64()), ("spans", pa.list_(pa.list_(pa.int64()))),
])
#: One row per receipt; ``receipt`` is the canonical JSON the id hashes.
RECEIPT_SCHEMA = pa.schema([
    ("receipt_id", pa.string()), ("output_id", pa.string()), ("output_hash", pa.string()),
    ("model", pa.string()), ("snapshot_seq", pa.int64()), ("snapshot_root", pa.string()),
    ("unattributed", pa.float64()), ("attributions", pa.list_(_ATTRIBUTION_TYPE)),
    ("receipt", pa.string()),
])


def receipts_namespace(datanet_id: str) -> str:
    """The id under which receipt batches are anchored: ``"<datanet>/attributions"``."""
    return f"{datanet_id}/{_DIR}"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def receipt_object(datanet_id: str, result: AttributionResult) -> dict[str, Any]:
    """The receipt of one attribution (what ``receipt_id`` hashes)."""
    return {**result.to_json(), "model": result.model, "datanet": datanet_id}


def receipt_id(receipt: dict[str, Any]) -> str:
    """keccak256 of the receipt's canonical JSON (0x-hex)."""
    return keccak_hex(_canonical(receipt).encode("utf-8"))


@dataclass(frozen=True)
class ReceiptsCommit:
    """Outcome of :func:`record_receipts`."""

    batch_id: str | None
    committed: bool
    manifest: Manifest | None
    receipt_ids: tuple[str, ...]
    message: str


def receipt_manifests(store: DatanetStore) -> list[Manifest]:
    """Committed receipt manifests in sequence order (a broken chain stops the list)."""
    out: list[Manifest] = []
    d = store.path(_DIR)
    if not d.exists():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            m = Manifest.from_json(p.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError):
            continue
        if p.name != f"{m.seq:08d}-{m.batch_id}.json" or m.seq != len(out) + 1:
            break
        out.append(m)
    return out


def record_receipts(store: DatanetStore, results: Sequence[AttributionResult]) -> ReceiptsCommit:
    """Commit ``results`` as one receipts batch (create-if-absent under the commit lock)."""
    if not results:
        return ReceiptsCommit(None, False, None, (), "no outputs to record")
    ns = receipts_namespace(store.spec.id)
    receipts = [receipt_object(store.spec.id, r) for r in results]
    ids = [receipt_id(r) for r in receipts]
    rid = make_batch_id(ns, ids)
    rows = [{
        "receipt_id": i, "output_id": r["id"], "output_hash": r["output_hash"],
        "model": r["model"], "snapshot_seq": r["snapshot"]["seq"],
        "snapshot_root": r["snapshot"]["merkle_root"], "unattributed": r["unattributed"],
        "attributions": r["attributions"], "receipt": _canonical(r),
    } for i, r in zip(ids, receipts, strict=True)]
    table = pa.Table.from_pylist(rows, schema=RECEIPT_SCHEMA)
    table = table.append_column("batch", pa.array([rid] * table.num_rows, pa.string()))
    data = table_to_parquet_bytes(table)
    digest = hashlib.sha256(data).hexdigest()
    entry = FileEntry(f"{_DIR}/batch={rid}/part-{digest[:32]}.parquet", digest,
                      table.num_rows, len(data))
    write_atomic(store.path(entry.path), data)
    key = "0x" + datanet_key(ns).hex()
    tree = StandardMerkleTree.of(
        [[key, rid, i, r["output_hash"]] for i, r in zip(ids, receipts, strict=True)],
        RECEIPT_LEAF_ENCODING)
    with store.lock():
        existing = receipt_manifests(store)
        done = next((m for m in existing if m.batch_id == rid), None)
        if done is not None:
            return ReceiptsCommit(rid, False, done, tuple(ids),
                                  f"nothing new: these receipts are receipts batch {done.seq}")
        last = existing[-1] if existing else None
        seq = (last.seq if last else 0) + 1
        manifest = Manifest(
            seq=seq, batch_id=rid, datanet=ns,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files={_DIR: (entry,)},
            counts={"receipts": len(ids)}, merkle_root=tree.root, leaf_count=len(tree),
            prev_root=last.merkle_root if last else None,
            prev_batch=last.batch_id if last else None,
            history_seq=max(r.snapshot.seq for r in results),
        )
        write_atomic(store.path(f"{_DIR}/trees/{rid}.json"), tree.dump_chunks())
        final = store.path(f"{_DIR}/{seq:08d}-{rid}.json")
        if not create_exclusive(final, manifest.to_json()):
            raise StoreError(f"{final.name} already exists; another process committed "
                             "this receipts sequence number")
    return ReceiptsCommit(rid, True, manifest, tuple(ids),
                          f"committed receipts batch {seq} ({rid[:12]}…): {len(ids)} receipt(s)")


def receipts_view_sql(store: DatanetStore, *, as_of: int | None = None) -> str | None:
    """``SELECT`` over the committed receipt files (those attributed against batches up to
    ``as_of``), or None when there are none: the ``attributions`` DuckDB view."""
    paths = [store.abs(p) for m in receipt_manifests(store)
             if as_of is None or m.history_seq <= as_of for p in m.paths(_DIR)]
    if not paths:
        return None
    listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return (f"SELECT * FROM read_parquet([{listing}], union_by_name = true, "
            "hive_partitioning = false)")


def load_receipts(store: DatanetStore, *, after_seq: int | None = None,
                  up_to_seq: int | None = None) -> list[dict[str, Any]]:
    """Every recorded output of the receipts batches with ``after_seq < seq <= up_to_seq``:
    its ``--format json`` object plus ``receipt_seq``, ``receipt_id``, ``model``.
    ``store``: a :class:`~datanet.store.layout.DatanetStore` or its path."""
    if isinstance(store, (str, Path)):
        from datanet.store.layout import DatanetStore

        store = DatanetStore(store)
    out: list[dict[str, Any]] = []
    for m in receipt_manifests(store):
        if (after_seq is not None and m.seq <= after_seq) or (
                up_to_seq is not None and m.seq > up_to_seq):
            continue
        for path in m.paths(_DIR):
            t = pq.read_table(store.abs(path), filesystem=store.arrow_fs,
                              columns=["receipt_id", "receipt"])
            for rid, text in zip(t["receipt_id"].to_pylist(), t["receipt"].to_pylist(),
                                 strict=True):
                obj = json.loads(text)
                obj.pop("datanet", None)
                obj["receipt_seq"] = m.seq
                obj["receipt_id"] = rid
                out.append(obj)
    return out


def anchor_receipts(store: DatanetStore, *, client: ChainClient | None = None,
                    wait: bool = True) -> list[Any]:
    """Anchor (or resume) every committed receipts batch, in sequence order, through the
    batch outbox (same states and guarantees; ``anchors/<rid>.json``)."""
    import time

    from datanet.anchoring.client import open_client
    from datanet.anchoring.config import anchoring_config
    from datanet.anchoring.outbox import Outbox, anchor_chain

    cfg = anchoring_config(store.spec)
    manifests = receipt_manifests(store)
    if not cfg.enabled or not manifests:
        return []
    client = client or open_client(store, cfg)
    return anchor_chain(Outbox(store, client, cfg), manifests,
                        deadline=time.time() + (cfg.timeout if wait else 0.0))


def receipt_proof(store: DatanetStore, receipt: str) -> dict[str, Any]:
    """Inclusion proof bundle of a committed receipt (by ``receipt_id``), with its anchor."""
    from datanet.anchoring.outbox import AnchorStatus

    rid_l = receipt.lower()
    for m in receipt_manifests(store):
        for path in m.paths(_DIR):
            t = pq.read_table(store.abs(path), filesystem=store.arrow_fs,
                              columns=["receipt_id", "receipt"],
                              filters=[("receipt_id", "=", rid_l)])
            if not t.num_rows:
                continue
            tree_path = store.path(f"{_DIR}/trees/{m.batch_id}.json")
            tree = StandardMerkleTree.loads(tree_path.read_bytes(), validate=False)
            if tree.root != (m.merkle_root or "").lower():
                raise AnchoringError(f"{tree_path} does not match receipts batch {m.seq}")
            index = tree.index_of(2, rid_l)
            value = tree.at(index)
            proof = tree.get_proof(index)
            anchor = None
            state_path = store.path(f"anchors/{m.batch_id}.json")
            if state_path.exists():
                state = json.loads(state_path.read_text(encoding="utf-8"))
                if state.get("status") in (AnchorStatus.INCLUDED, AnchorStatus.FINAL):
                    anchor = {k: state.get(k) for k in (
                        "chain_id", "contract", "tx_hash", "block_number", "status")}
            return {
                "format": RECEIPT_FORMAT, "datanet": store.spec.id, "namespace": m.datanet,
                "receipt_seq": m.seq, "receipts_batch_id": m.batch_id,
                "receipt": json.loads(t["receipt"][0].as_py()),
                "leaf_encoding": list(RECEIPT_LEAF_ENCODING),
                "leaf": dict(zip(RECEIPT_LEAF_FIELDS, value, strict=True)),
                "value": list(value), "proof": proof, "root": tree.root,
                "leaf_hash": "0x" + standard_leaf_hash(RECEIPT_LEAF_ENCODING, value).hex(),
                "anchor": anchor,
            }
    raise AnchoringError(f"receipt {receipt} is not in any committed receipts batch of "
                         f"datanet {store.spec.id!r}")


def verify_receipt_proof(bundle: dict[str, Any], *, client: ChainClient | None = None
                         ) -> list[tuple[str, bool]]:
    """Named checks of a receipt bundle: the receipt re-hashes to its id, the leaf binds the
    namespace and batch, the proof reaches the root (and, given a client, the contract's
    ``verifyLeaf`` accepts it against the anchored root)."""
    leaf = bundle["leaf"]
    value = [leaf[f] for f in RECEIPT_LEAF_FIELDS]
    checks = [
        ("receipt_id", receipt_id(bundle["receipt"]) == leaf["receipt_id"].lower()),
        ("output_hash", bundle["receipt"]["output_hash"].lower() == leaf["output_hash"]),
        ("namespace", "0x" + datanet_key(bundle["namespace"]).hex() == leaf["receipts_key"]),
        ("batch_id", leaf["receipts_batch_id"] == bundle["receipts_batch_id"].lower()),
        ("merkle_proof", StandardMerkleTree.verify_root(
            bundle["root"], RECEIPT_LEAF_ENCODING, value, bundle["proof"])),
    ]
    lh = standard_leaf_hash(RECEIPT_LEAF_ENCODING, value)
    checks.append(("leaf_hash", "0x" + process_proof(lh, bundle["proof"]).hex()
                   == bundle["root"].lower()))
    if client is not None:
        if client.contract is None and (bundle.get("anchor") or {}).get("contract"):
            client.use_contract(bundle["anchor"]["contract"])
        c = client.contract
        ok = bool(c.functions.verifyLeaf(
            bytes.fromhex(leaf["receipts_key"][2:]), bytes.fromhex(leaf["receipts_batch_id"][2:]),
            lh, [bytes.fromhex(p[2:]) for p in bundle["proof"]]).call())
        checks.append(("contract_verify_leaf", ok))
    return checks
