"""On-chain side of rewards: the DatanetRewards contract, publishing roots through the
anchoring outbox, and claims.

One DatanetRewards contract per datanet (its ``datanetKey`` and ERC-20 are immutable). On the
embedded chain it is deployed on first use together with a :file:`RewardTestToken` minted to
the operator, who approves the contract once; ``publish`` pulls each epoch's pool from the
publisher in the same transaction that sets the root, so the contract always holds what it owes.
On an rpc chain ``[rewards] contract`` names the deployed contract and the publisher must have
approved it for the pools.

Publishing reuses :class:`datanet.anchoring.outbox.Outbox` (PENDING -> SENT -> INCLUDED ->
FINAL, every step persisted before its side effect) with the record in
``rewards/<epoch>.publish.json``; the contract is asked for ``rootOf(epoch)`` before anything is
signed, and it reverts a second publish of an epoch, so an epoch never gets two transactions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.anchoring.client import (
    EMBEDDED_CHAIN_FILE,
    ZERO32,
    ChainClient,
    EmbeddedChain,
    open_client,
)
from datanet.anchoring.config import anchoring_config
from datanet.anchoring.merkle import StandardMerkleTree
from datanet.anchoring.outbox import AnchorState, AnchorStatus, Outbox
from datanet.errors import RewardsError
from datanet.rewards.config import rewards_config
from datanet.rewards.epoch import (
    REWARD_LEAF_ENCODING,
    load_reward_tree,
    load_settlement,
    reward_leaf,
)
from datanet.schemas.ids import datanet_key
from datanet.store.atomic import write_atomic

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = [
    "load_rewards_artifact",
    "RewardsContract",
    "PublishState",
    "RewardsOutbox",
    "deploy_test_token",
    "deploy_rewards",
    "open_rewards",
    "publish_epoch",
    "proof_bundle",
    "ClaimResult",
    "send_claim",
    "claim_client",
]

_GAS_MARGIN = 1.2
_MAX_UINT256 = 2**256 - 1
#: Where ``rewards.deploy`` records the contract it deployed, per chain id.
REWARDS_DEPLOYMENT_FILE = "rewards/deployment.json"
#: Supply of the embedded chain's test token, minted to the operator.
EMBEDDED_TOKEN_SUPPLY = 10**40


@cache
def load_rewards_artifact(name: str = "DatanetRewards") -> dict[str, Any]:
    """A committed artifact of this package (``DatanetRewards`` or ``RewardTestToken``)."""
    text = resources.files("datanet.rewards").joinpath(f"artifacts/{name}.json")
    return json.loads(text.read_text(encoding="utf-8"))


def _b32(h: str) -> bytes:
    raw = bytes.fromhex(h.removeprefix("0x"))
    if len(raw) != 32:
        raise RewardsError(f"{h!r} is not a 32-byte hex value")
    return raw


def _hex(b: bytes | str) -> str:
    return b.lower() if isinstance(b, str) else "0x" + bytes(b).hex()


def _transact(client: ChainClient, fn: Any, what: str, abi: list[dict[str, Any]]) -> Any:
    """Sign and send one call (or constructor) from the client's account; wait; receipt."""
    try:
        gas = int(fn.estimate_gas({"from": client.address}) * _GAS_MARGIN)
    except Exception as exc:
        raise RewardsError(f"{what} would revert: {client.describe_error(exc, abi)}") from None
    raw, tx_hash = client.sign_anchor(fn, nonce=client.nonce(pending=True), gas=gas,
                                      fees=client.fees())
    sent = client.send_raw(raw)
    if not sent.accepted:
        raise RewardsError(f"{what}: the node did not take tx {tx_hash}: {sent.error}")
    receipt = client.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        raise RewardsError(f"{what} failed in tx {tx_hash}")
    return receipt


class RewardsContract:
    """A deployed DatanetRewards bound to a client (its w3 and signer)."""

    def __init__(self, client: ChainClient, address: str):
        from web3 import Web3

        self.client = client
        self.abi = load_rewards_artifact()["abi"]
        self.contract = client.w3.eth.contract(address=Web3.to_checksum_address(address),
                                               abi=self.abi)

    @property
    def address(self) -> str:
        """Checksummed address."""
        return self.contract.address

    @property
    def f(self) -> Any:
        """The contract functions."""
        return self.contract.functions

    def token(self) -> Any:
        """The ERC-20 paid out (a web3 contract with the test token's ABI, a plain ERC20)."""
        return self.client.w3.eth.contract(address=self.f.token().call(),
                                           abi=load_rewards_artifact("RewardTestToken")["abi"])

    def epoch(self) -> int:
        """Latest published epoch."""
        return int(self.f.epoch().call())

    def root_of(self, epoch: int) -> str:
        """Root of a published epoch (zero if not published)."""
        return _hex(self.f.rootOf(epoch).call())

    def find_published(self, epoch: int) -> dict[str, Any] | None:
        """The EpochPublished event of ``epoch`` (tx hash, block), or None."""
        logs = self.contract.events.EpochPublished().get_logs(
            from_block=0, to_block="latest", argument_filters={"epoch": epoch})
        if not logs:
            return None
        log = logs[-1]
        return {"tx_hash": _hex(log["transactionHash"]), "block_number": int(log["blockNumber"]),
                "block_hash": _hex(log["blockHash"]), "root": _hex(log["args"]["root"])}


def deploy_test_token(client: ChainClient, holder: str, supply: int) -> str:
    """Deploy a RewardTestToken (OpenZeppelin ERC20) minting ``supply`` to ``holder``."""
    art = load_rewards_artifact("RewardTestToken")
    factory = client.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = _transact(client, factory.constructor(holder, supply), "deploying the token",
                        art["abi"])
    return receipt["contractAddress"]


def deploy_rewards(client: ChainClient, token: str, datanet_id: str, *,
                   publisher: str | None = None, approve: bool = True) -> RewardsContract:
    """Deploy DatanetRewards for a datanet (admin and publisher: the signer by default) and,
    with ``approve``, let it pull pools from the signer (max allowance)."""
    art = load_rewards_artifact()
    factory = client.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    from web3 import Web3

    receipt = _transact(client, factory.constructor(
        client.address, publisher or client.address, Web3.to_checksum_address(token),
        datanet_key(datanet_id)), "deploying DatanetRewards", art["abi"])
    rc = RewardsContract(client, receipt["contractAddress"])
    if approve:
        _transact(client, rc.token().functions.approve(rc.address, _MAX_UINT256),
                  "approving DatanetRewards", art["abi"])
    return rc


def open_rewards(store: DatanetStore, client: ChainClient | None = None) -> RewardsContract:
    """The datanet's DatanetRewards: ``[rewards] contract``, or on the embedded chain the one
    deployed (with its test token) on first use."""
    cfg = rewards_config(store.spec)
    client = client or open_client(store)
    if cfg.contract:
        return RewardsContract(client, cfg.contract)
    if client.embedded is None:
        return _deployed_rewards(store, client, cfg.token if cfg.deploy else None)
    meta = client.embedded.meta
    if "rewards_contract" not in meta:
        token = deploy_test_token(client, client.address, EMBEDDED_TOKEN_SUPPLY)
        rc = deploy_rewards(client, token, store.spec.id)
        meta["rewards_token"] = token
        meta["rewards_contract"] = rc.address
        client.embedded.save()
    return RewardsContract(client, meta["rewards_contract"])


def _deployed_rewards(store: DatanetStore, client: ChainClient, token: str | None
                      ) -> RewardsContract:
    """The DatanetRewards ``rewards.deploy`` deployed on this rpc chain (``rewards/deployment.json``
    names it per chain id), deploying it now when ``token`` is given and none exists."""
    path = store.path(REWARDS_DEPLOYMENT_FILE)
    with store.lock():  # one deployer: a concurrent publisher waits and reuses its contract
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        address = known.get(str(client.chain_id))
        if address is None:
            if token is None:
                raise RewardsError("rewards.contract is required on an rpc chain (or set "
                                   "rewards.deploy = true and rewards.token to deploy one)")
            if not client.address:
                raise RewardsError("deploying DatanetRewards needs the operator key "
                                   "(anchoring.key_env / keystore)")
            address = deploy_rewards(client, token, store.spec.id).address
            write_atomic(path, json.dumps({**known, str(client.chain_id): address},
                                          sort_keys=True, indent=1))
    return RewardsContract(client, address)


# --- publishing ------------------------------------------------------------------------------


@dataclass
class PublishState(AnchorState):
    """Outbox record of one epoch's publish: ``batch_id`` is ``epoch-<n>``, ``seq`` the epoch,
    ``prev_root`` the previous epoch's root, ``leaf_count`` the tree's leaves."""

    pool: str = "0"


class RewardsOutbox(Outbox):
    """The anchoring outbox driving ``publish(epoch, root, pool)`` transactions."""

    state_class = PublishState

    def __init__(self, store: DatanetStore, rewards: RewardsContract, **kwargs: Any):
        super().__init__(store, rewards.client, anchoring_config(store.spec), **kwargs)
        self.rewards = rewards

    def _path(self, batch_id: str) -> Path:
        return self.store.path(f"rewards/{batch_id.removeprefix('epoch-')}.publish.json")

    def _call(self, state: AnchorState) -> Any:
        return self.rewards.f.publish(state.seq, _b32(state.root), int(state.pool))

    def _adopt_onchain(self, state: AnchorState, note: str) -> bool:
        onchain = self.rewards.root_of(state.seq)
        if onchain == ZERO32:
            return False
        if onchain != state.root:
            raise RewardsError(f"epoch {state.seq} is already published with root {onchain}, "
                               f"not {state.root}")
        event = self.rewards.find_published(state.seq)
        if event is None:
            return False
        self._record_included(state, event, note)
        return True

    def _pending(self, state: AnchorState) -> bool:
        if self._adopt_onchain(state, "already published on chain"):
            return True
        last = self.rewards.epoch()
        if last != state.seq - 1:
            raise RewardsError(f"cannot publish epoch {state.seq}: the contract's last "
                               f"epoch is {last}; publish epochs in order")
        call = self._call(state)
        try:
            gas = int(call.estimate_gas({"from": self.client.address}) * _GAS_MARGIN)
        except Exception as exc:
            raise RewardsError(f"publishing epoch {state.seq} would revert: "
                               f"{self.client.describe_error(exc, self.rewards.abi)}") from None
        nonce = self.client.nonce(pending=True)
        fees = self.client.fees(max_fee_wei=self._max_fee_wei())
        self._sign_and_send(state, call, nonce, gas, fees, "signed; broadcasting")
        return True


def publish_epoch(store: DatanetStore, epoch: int, *, client: ChainClient | None = None,
                  wait: bool = True, clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], None] = time.sleep,
                  checkpoint: Callable[[str, AnchorState], None] | None = None,
                  ) -> PublishState:
    """Publish (or resume publishing) a computed epoch's root; returns its outbox state."""
    rec = load_settlement(store, epoch)
    if rec is None:
        raise RewardsError(f"epoch {epoch} is not computed; run `datanet rewards compute "
                           f"--epoch {epoch}` first")
    rewards = open_rewards(store, client)
    client = rewards.client
    if client.chain_id != rec.chain_id:
        raise RewardsError(f"epoch {epoch}'s leaves are bound to chain {rec.chain_id}; the "
                           f"client is on chain {client.chain_id}")
    outbox = RewardsOutbox(store, rewards, clock=clock, sleep=sleep, checkpoint=checkpoint)
    state = outbox.load(f"epoch-{epoch}")
    if state is None:
        state = PublishState(
            batch_id=f"epoch-{epoch}", seq=epoch, datanet=rec.datanet,
            datanet_key=rec.datanet_key, root=rec.root, prev_root=rec.previous_root or ZERO32,
            leaf_count=len(rec.allocations), pool=str(rec.pool), chain_id=client.chain_id,
            contract=rewards.address, sender=client.address)
        outbox.save(state, "created from settlement")
    elif state.root != rec.root:
        raise RewardsError(f"rewards/{epoch}.publish.json has root {state.root}, the "
                           f"settlement has {rec.root}")
    elif (state.contract or "").lower() != rewards.address.lower():
        raise RewardsError(f"epoch {epoch} is being published to {state.contract}, not "
                           f"{rewards.address}")
    if state.status is not AnchorStatus.FINAL:
        deadline = clock() + (outbox.config.timeout if wait else 0.0)
        state = outbox.drive(state, deadline=deadline)
    return state  # type: ignore[return-value]


# --- proofs and claims -----------------------------------------------------------------------


def proof_bundle(store: DatanetStore, epoch: int, account: str, *,
                 tree: StandardMerkleTree | None = None) -> dict[str, Any]:
    """The claim bundle of ``account`` in ``epoch``: what ``StandardMerkleTree.verify(root,
    leafEncoding, value, proof)`` (JS) and ``DatanetRewards.claim`` need.

    Read from the epoch's proof index (:mod:`datanet.rewards.proofindex`, a few small reads)
    when it has one and no ``tree`` is given; else from the settlement and the whole dump.
    """
    from datanet.anchoring.merkle import process_proof, standard_leaf_hash
    from datanet.rewards.epoch import settled
    from datanet.rewards.proofindex import open_index

    acc = account.lower()
    index = open_index(store, epoch) if tree is None and settled(store, epoch) else None
    if index is not None:
        found = index.find(acc)
        if found is None:
            raise RewardsError(f"account {account} has no reward up to epoch {epoch}")
        position, cumulative = found
        meta = index.meta
        chain_id, datanet, root = int(meta["chain_id"]), meta["datanet"], meta["root"]
        value = reward_leaf(chain_id, datanet, acc, cumulative)
        leaf = standard_leaf_hash(REWARD_LEAF_ENCODING, value)
        proof = index.proof(position)
        if "0x" + process_proof(leaf, proof).hex() != root:
            raise RewardsError(f"rewards/{epoch}.proofs does not lead to the epoch's root "
                               "for this account; run `datanet verify-history`")
        dkey, leaf_hex = "0x" + datanet_key(datanet).hex(), "0x" + leaf.hex()
    else:
        rec = load_settlement(store, epoch)
        if rec is None:
            raise RewardsError(f"epoch {epoch} is not computed")
        cumulative = rec.cumulative().get(acc)
        if cumulative is None:
            raise RewardsError(f"account {account} has no reward up to epoch {epoch}")
        tree = tree or load_reward_tree(store, epoch)
        chain_id, datanet, root, dkey = rec.chain_id, rec.datanet, rec.root, rec.datanet_key
        value = reward_leaf(chain_id, datanet, acc, cumulative)
        proof = tree.get_proof(tree.leaf_lookup(value))
        leaf_hex = tree.leaf_hash(value)
    publish = store.path(f"rewards/{epoch}.publish.json")
    contract = None
    if publish.exists():
        contract = json.loads(publish.read_text(encoding="utf-8")).get("contract")
    contract = contract or rewards_config(store.spec).contract
    chain = anchoring_config(store.spec).chain
    return {
        "datanet": datanet, "datanet_key": dkey, "epoch": epoch,
        "chain": chain, "chain_id": chain_id, "contract": contract,
        "account": acc, "cumulative": str(cumulative), "root": root,
        "leafEncoding": list(REWARD_LEAF_ENCODING), "value": value,
        "proof": proof, "leaf": leaf_hex,
    }


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of a claim transaction."""

    tx_hash: str
    account: str
    amount: int
    gas_used: int


def send_claim(client: ChainClient, bundle: dict[str, Any]) -> ClaimResult:
    """Send ``claim(account, cumulative, root, proof)`` from the client's signer. Reverts
    (stale root, bad proof, wrong chain) raise :class:`RewardsError` before anything is sent."""
    for key in ("contract", "account", "cumulative", "root", "proof", "chain_id"):
        if bundle.get(key) in (None, ""):
            raise RewardsError(f"claim bundle has no {key!r}" + (
                " (the epoch is not published yet)" if key == "contract" else ""))
    if int(bundle["chain_id"]) != client.chain_id:
        raise RewardsError(f"the bundle is for chain {bundle['chain_id']}; the node is on "
                           f"chain {client.chain_id}")
    from web3 import Web3

    rc = RewardsContract(client, bundle["contract"])
    account = Web3.to_checksum_address(bundle["account"])
    call = rc.f.claim(account, int(bundle["cumulative"]), _b32(bundle["root"]),
                      [_b32(p) for p in bundle["proof"]])
    receipt = _transact(client, call, "claim", rc.abi)
    from web3.logs import DISCARD

    paid = rc.contract.events.Claimed().process_receipt(receipt, errors=DISCARD)
    amount = sum(int(e["args"]["amount"]) for e in paid)
    return ClaimResult(_hex(receipt["transactionHash"]), bundle["account"], amount,
                       int(receipt["gasUsed"]))


def claim_client(key: bytes, *, rpc_url: str | None = None, store: DatanetStore | None = None,
                 timeout: float = 30.0) -> ChainClient:
    """A client signing with ``key``: on an RPC URL, or on a datanet's embedded chain."""
    from eth_account import Account

    account = Account.from_key(key)
    if rpc_url:
        return ChainClient.connect(rpc_url, account=account, timeout=timeout)
    if store is None:
        raise RewardsError("claim needs --rpc-url (or $DATANET_RPC_URL), or --datanet PATH "
                           "for a datanet on the embedded chain")
    chain = EmbeddedChain(store.path(EMBEDDED_CHAIN_FILE))
    return ChainClient(chain.w3, account, None, kind="embedded", embedded=chain)
