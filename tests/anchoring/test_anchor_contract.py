"""DatanetAnchor on the embedded py-evm chain: roles, chain of roots, double anchor, verify, gas."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_tester.backends.pyevm.main import get_default_account_keys

from datanet.anchoring.client import ZERO32, ChainClient, EmbeddedChain, load_artifact
from datanet.anchoring.merkle import LEAF_ENCODING, StandardMerkleTree
from datanet.errors import AnchoringError
from datanet.schemas.ids import datanet_key
from tests.anchoring.helpers import accepted_table

KEY = "0x" + datanet_key("anchor-test").hex()
B1, B2 = "0x" + "b1" * 32, "0x" + "b2" * 32


@pytest.fixture
def chain(tmp_path):
    return EmbeddedChain(tmp_path / "chain.bin")


def _tree(bid: str, n: int = 5):
    from datanet.anchoring.merkle import batch_tree

    return batch_tree("anchor-test", bid, accepted_table("anchor-test", bid, n))


def _anchor(client: ChainClient, bid: str, root: str, count: int, prev: str) -> dict:
    call = client.anchor_call(KEY, bid, root, count, prev)
    gas = client.estimate_anchor_gas(call)
    raw, tx_hash = client.sign_anchor(call, nonce=client.nonce(pending=True), gas=gas * 2,
                                      fees=client.fees())
    assert client.send_raw(raw).accepted
    return client.receipt(tx_hash)


def test_artifact_matches_source_settings() -> None:
    art = load_artifact()
    assert art["compiler"]["version"].startswith("0.8.37+")
    assert art["settings"] == {"optimizer": {"enabled": True, "runs": 200},
                               "evmVersion": "cancun"}
    names = {i.get("name") for i in art["abi"]}
    assert {"anchor", "verify", "verifyLeaf", "verifyMultiProof", "batchOf", "lastRoot",
            "BatchAnchored", "BatchAlreadyAnchored", "PrevRootMismatch"} <= names


def test_anchor_chain_double_anchor_and_prev_root(chain) -> None:
    c = chain.client()
    t1, t2 = _tree(B1), _tree(B2, 3)
    r1 = _anchor(c, B1, t1.root, len(t1), ZERO32)
    assert r1["status"] == 1
    b = c.batch_of(KEY, B1)
    assert (b.root, b.prev_root, b.leaf_count, b.seq, b.block_number) == (
        t1.root, ZERO32, 5, 1, r1["block_number"])
    assert c.last_root(KEY) == t1.root
    with pytest.raises(AnchoringError, match=r"BatchAlreadyAnchored\(datanetId=" + KEY):
        c.estimate_anchor_gas(c.anchor_call(KEY, B1, t1.root, 5, ZERO32))
    with pytest.raises(AnchoringError, match=rf"PrevRootMismatch\(.*expected={t1.root}"):
        c.estimate_anchor_gas(c.anchor_call(KEY, B2, t2.root, 3, ZERO32))
    with pytest.raises(AnchoringError, match="EmptyBatch"):
        c.estimate_anchor_gas(c.anchor_call(KEY, B2, ZERO32, 0, t1.root))
    r2 = _anchor(c, B2, t2.root, 3, t1.root)
    assert r2["status"] == 1 and c.batch_of(KEY, B2).seq == 2
    event = c.find_anchor(KEY, B2)
    assert event["tx_hash"] == r2["tx_hash"] and event["root"] == t2.root


def test_only_anchorer_role_can_anchor(chain) -> None:
    admin = chain.client()
    funded = get_default_account_keys()[1].to_bytes()  # a funded dev account, no role
    outsider = ChainClient(chain.w3, Account.from_key(funded), admin.contract_address,
                           kind="embedded", embedded=chain)
    t1 = _tree(B1)
    assert admin.has_anchorer_role() and not outsider.has_anchorer_role()
    with pytest.raises(AnchoringError, match="AccessControlUnauthorizedAccount"):
        outsider.estimate_anchor_gas(outsider.anchor_call(KEY, B1, t1.root, 5, ZERO32))
    assert not admin.batch_of(KEY, B1).anchored


def test_verify_on_chain_accepts_proofs_and_rejects_tampering(chain) -> None:
    c = chain.client()
    t1 = _tree(B1, 9)
    _anchor(c, B1, t1.root, len(t1), ZERO32)
    for i in range(len(t1)):
        key, bid, cid, who, ch = t1.at(i)
        assert c.verify(key, bid, cid, who, ch, t1.get_proof(i))
    key, bid, cid, who, ch = t1.at(0)
    proof = t1.get_proof(0)
    assert not c.verify(key, bid, cid, "0x" + "99" * 20, ch, proof)
    assert not c.verify(key, B2, cid, who, ch, proof)  # batch not anchored
    assert not c.verify(key, bid, cid, who, ch, proof[1:])
    mp = t1.get_multi_proof([0, 3, 4])
    leaves = [bytes.fromhex(t1.leaf_hash(v)[2:]) for v in mp.leaves]
    ok = c.contract.functions.verifyMultiProof(
        bytes.fromhex(KEY[2:]), bytes.fromhex(B1[2:]), leaves,
        [bytes.fromhex(p[2:]) for p in mp.proof], list(mp.proof_flags)).call()
    assert ok is True
    assert StandardMerkleTree.verify_root(t1.root, LEAF_ENCODING, t1.at(2), t1.get_proof(2))


def _calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata cost: 4 gas per zero byte, 16 per non-zero byte."""
    return sum(4 if b == 0 else 16 for b in data)


def test_gas_per_anchor_is_constant_in_leaf_count(chain) -> None:
    c = chain.client()
    execution, prev = [], ZERO32
    for i, n in enumerate((1, 100, 10_000)):
        bid = "0x" + f"{i + 1:064x}"
        t = _tree(bid, n)
        r = _anchor(c, bid, t.root, n, prev)
        data = bytes(c.w3.eth.get_transaction(r["tx_hash"])["input"])
        execution.append(r["gas_used"] - _calldata_gas(data))
        prev = t.root
    # Only calldata bytes differ with the leaf count; execution gas is the same for every
    # anchor after the first (which sets lastRoot / batchCount from zero, a dearer SSTORE).
    assert execution[1] == execution[2] == 104_864
    assert execution[0] == 119_164


def test_embedded_chain_persists_across_reopen(tmp_path) -> None:
    path = tmp_path / "chain.bin"
    c = EmbeddedChain(path).client()
    t1 = _tree(B1)
    r = _anchor(c, B1, t1.root, 5, ZERO32)
    again = EmbeddedChain(path).client()
    assert again.contract_address == c.contract_address
    assert again.block_hash(r["block_number"]) == r["block_hash"]
    assert again.receipt(r["tx_hash"]) == r
    key, bid, cid, who, ch = t1.at(1)
    assert again.verify(key, bid, cid, who, ch, t1.get_proof(1))
    assert again.nonce() == c.nonce() == 2
