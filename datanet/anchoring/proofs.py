"""Contributor proofs: a self-contained JSON bundle and its off-chain + on-chain check.

A bundle carries the leaf values (datanet key, batch id, contribution id, contributor, content
hash), the sibling path, the batch root and where the root is anchored (chain id, contract,
tx hash, block). Anyone can check it with nothing but this file: off-chain by re-hashing the
leaf (the same result as ``StandardMerkleTree.verify`` in ``@openzeppelin/merkle-tree``), and
on-chain by calling the contract's ``verify`` on any RPC of that chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.anchoring.merkle import (
    LEAF_ENCODING,
    LEAF_FIELDS,
    StandardMerkleTree,
    process_proof,
    standard_leaf_hash,
)
from datanet.errors import AnchoringError
from datanet.schemas.ids import contribution_id as make_contribution_id
from datanet.schemas.ids import datanet_key

if TYPE_CHECKING:
    from datanet.anchoring.client import ChainClient
    from datanet.schemas.manifest import Manifest
    from datanet.store.layout import DatanetStore

__all__ = [
    "BUNDLE_FORMAT",
    "Check",
    "VerifyResult",
    "find_batch",
    "load_batch_tree",
    "make_proof_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "datanet-proof-v1"


def find_batch(store: DatanetStore, contribution_id: str) -> Any:
    """Manifest of the committed batch whose accepted records hold ``contribution_id``."""
    import pyarrow.parquet as pq

    cid = contribution_id.lower()
    for m in reversed(store.manifests()):
        if not m.merkle_root:
            continue
        for path in m.paths("accepted"):
            t = pq.read_table(store.abs(path), columns=["contribution_id"],
                              filters=[("contribution_id", "=", cid)])
            if t.num_rows:
                return m
    raise AnchoringError(
        f"contribution {contribution_id} is not among the accepted records of any committed "
        f"batch of datanet {store.spec.id!r}"
    )


def load_batch_tree(store: DatanetStore, manifest: Manifest) -> StandardMerkleTree:
    """The batch's tree from ``trees/<batch_id>.json``, checked against the manifest root."""
    path = Path(store.abs(f"trees/{manifest.batch_id}.json"))
    if not path.exists():
        raise AnchoringError(f"{path} is missing: the tree of batch {manifest.seq} was not "
                             "written at commit")
    tree = StandardMerkleTree.loads(path.read_bytes(), validate=False)
    if tree.root != manifest.merkle_root.lower():
        raise AnchoringError(f"{path} has root {tree.root} but the manifest of batch "
                             f"{manifest.seq} says {manifest.merkle_root}")
    return tree


def make_proof_bundle(store: DatanetStore, contribution_id: str, *,
                      batch_id: str | None = None) -> dict[str, Any]:
    """Inclusion proof of an accepted contribution, with its anchor, as a JSON object."""
    from datanet.anchoring.outbox import AnchorStatus

    if batch_id is not None:
        manifest = store.manifest_for(batch_id)
        if manifest is None or not manifest.merkle_root:
            raise AnchoringError(f"batch {batch_id} is not a committed batch with a root")
    else:
        manifest = find_batch(store, contribution_id)
    tree = load_batch_tree(store, manifest)
    index = tree.index_of("contribution_id", contribution_id)
    value = tree.at(index)
    proof = tree.get_proof(index)
    leaf_hash = "0x" + standard_leaf_hash(LEAF_ENCODING, value).hex()
    if "0x" + process_proof(bytes.fromhex(leaf_hash[2:]), proof).hex() != tree.root:
        raise AnchoringError(f"the stored tree of batch {manifest.seq} does not prove "
                             f"{contribution_id}; the trees/ file is corrupt")
    anchor = None
    anchor_file = Path(store.abs(f"anchors/{manifest.batch_id}.json"))
    if anchor_file.exists():
        state = json.loads(anchor_file.read_text(encoding="utf-8"))
        if state.get("status") in (AnchorStatus.INCLUDED, AnchorStatus.FINAL):
            anchor = {k: state.get(k) for k in (
                "chain_id", "contract", "tx_hash", "block_number", "block_hash", "status",
                "confirmations")}
    from eth_utils import to_checksum_address

    leaf = dict(zip(LEAF_FIELDS, value, strict=True))
    leaf["contributor"] = to_checksum_address(leaf["contributor"])
    return {
        "format": BUNDLE_FORMAT,
        "datanet": manifest.datanet,
        "seq": manifest.seq,
        "batch_id": manifest.batch_id,
        "leaf_encoding": list(LEAF_ENCODING),
        "leaf": leaf,
        "value": list(value),
        "leaf_hash": leaf_hash,
        "proof": proof,
        "root": tree.root,
        "prev_root": manifest.prev_root,
        "leaf_count": manifest.leaf_count,
        "anchor": anchor,
    }


@dataclass(frozen=True)
class Check:
    """One named check of a bundle."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_bundle`: off-chain always, on-chain when a chain was given."""

    offchain: bool
    onchain: bool | None
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True if every check that ran passed (on-chain may not have run)."""
        return self.offchain and self.onchain is not False

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of failed checks."""
        return tuple(c.name for c in self.checks if not c.ok)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object for the CLI."""
        return {"ok": self.ok, "offchain": self.offchain, "onchain": self.onchain,
                "checks": [c.__dict__ for c in self.checks]}


def _offchain_checks(bundle: dict[str, Any]) -> list[Check]:
    checks = [Check("format", bundle.get("format") == BUNDLE_FORMAT,
                    f"format {bundle.get('format')!r}")]
    try:
        leaf = bundle["leaf"]
        value = [leaf[f] for f in LEAF_FIELDS]
        key = "0x" + datanet_key(bundle["datanet"]).hex()
        checks.append(Check("datanet_key", leaf["datanet_key"].lower() == key,
                            f"keccak256({bundle['datanet']!r}) = {key}"))
        checks.append(Check("batch_id", leaf["batch_id"].lower() == bundle["batch_id"].lower(),
                            "leaf batch id matches the bundle's batch"))
        cid = make_contribution_id(bundle["datanet"], leaf["contributor"], leaf["content_hash"])
        checks.append(Check("contribution_id", leaf["contribution_id"].lower() == cid,
                            "keccak256(abi.encode(datanetKey, contributor, contentHash))"))
        lh = "0x" + standard_leaf_hash(LEAF_ENCODING, [str(v).lower() for v in value]).hex()
        checks.append(Check("leaf_hash", lh == str(bundle.get("leaf_hash", "")).lower(),
                            f"leaf hash {lh}"))
        ok = StandardMerkleTree.verify_root(bundle["root"], LEAF_ENCODING,
                                            [str(v).lower() for v in value], bundle["proof"])
        checks.append(Check("merkle_proof", ok, f"proof of {len(bundle['proof'])} hashes "
                                                f"against root {bundle['root']}"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        checks.append(Check("bundle_fields", False, f"malformed bundle: {exc!r}"))
    return checks


def _onchain_checks(bundle: dict[str, Any], client: ChainClient) -> list[Check]:
    anchor = bundle.get("anchor") or {}
    leaf = bundle["leaf"]
    checks = []
    chain_id = client.chain_id
    if anchor.get("chain_id") is not None:
        checks.append(Check("chain_id", int(anchor["chain_id"]) == chain_id,
                            f"bundle chain {anchor['chain_id']}, RPC chain {chain_id}"))
    if anchor.get("contract") and client.contract is None:
        client.use_contract(anchor["contract"])
    if client.contract is None:
        return [*checks, Check("contract", False, "the bundle names no contract address")]
    onchain = client.batch_of(leaf["datanet_key"], leaf["batch_id"])
    checks.append(Check("anchored_root", onchain.root == bundle["root"].lower(),
                        f"contract {client.contract_address} holds root {onchain.root}"))
    ok = client.verify(leaf["datanet_key"], leaf["batch_id"], leaf["contribution_id"],
                       leaf["contributor"], leaf["content_hash"], bundle["proof"])
    checks.append(Check("contract_verify", ok, "DatanetAnchor.verify(...) returned "
                                               f"{str(ok).lower()}"))
    if anchor.get("tx_hash"):
        receipt = client.receipt(anchor["tx_hash"])
        good = receipt is not None and receipt["status"] == 1 and (
            anchor.get("block_number") is None
            or receipt["block_number"] == int(anchor["block_number"]))
        checks.append(Check("anchor_tx", good,
                            f"tx {anchor['tx_hash']} "
                            + (f"in block {receipt['block_number']}" if receipt else "not found")))
    return checks


def verify_bundle(bundle: dict[str, Any] | str | Path, *, rpc: str | None = None,
                  store: DatanetStore | None = None,
                  client: ChainClient | None = None) -> VerifyResult:
    """Check a proof bundle off-chain and, given an RPC URL, a datanet store (its embedded or
    configured chain) or a client, on-chain through the contract's ``verify``."""
    if isinstance(bundle, (str, Path)):
        bundle = json.loads(Path(bundle).read_text(encoding="utf-8"))
    checks = _offchain_checks(bundle)
    offchain = all(c.ok for c in checks)
    onchain: bool | None = None
    if client is None and rpc is not None:
        from datanet.anchoring.client import ChainClient

        client = ChainClient.connect(rpc)
    elif client is None and store is not None:
        from datanet.anchoring.client import open_client

        client = open_client(store, read_only=True)
    if client is not None:
        if not offchain and "bundle_fields" in [c.name for c in checks]:
            onchain = False
        else:
            on = _onchain_checks(bundle, client)
            checks.extend(on)
            onchain = all(c.ok for c in on)
    return VerifyResult(offchain, onchain, tuple(checks))
