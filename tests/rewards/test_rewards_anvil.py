"""Rewards on anvil (npm @foundry-rs/anvil on 127.0.0.1) through the rpc configuration: the
real OpenZeppelin ERC20 test token moves exactly the claimed amounts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from datanet.anchoring.outbox import AnchorStatus
from datanet.errors import RewardsError
from datanet.rewards.chain import (
    claim_client,
    deploy_rewards,
    deploy_test_token,
    open_rewards,
    proof_bundle,
    publish_epoch,
    send_claim,
)
from datanet.rewards.epoch import compute_epoch, reward_tree
from tests.anchoring.test_anchor_anvil import ANVIL, DEV_KEY, Anvil, _client
from tests.rewards.helpers import A, B, C, commit_texts, make_store

# anvil's second default dev account (public test key): the claimer pays gas for others.
CLAIMER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
POOL = 10**21 + 7

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.skipif(not ANVIL.exists(), reason="needs anvil (run `npm ci` at the repo root)"),
]


class _Crash(BaseException):
    pass


@pytest.fixture
def anvil(tmp_path):
    node = Anvil(tmp_path)
    node.start()
    yield node
    node.stop()


def _setup(tmp_path: Path, url: str, monkeypatch) -> tuple:
    op = _client(url)
    token = deploy_test_token(op, op.address, 10**30)
    rc = deploy_rewards(op, token, "rewards-anvil")
    spec = (f'id = "rewards-anvil"\n[anchoring]\nchain = "rpc"\nrpc_url = "{url}"\n'
            f'chain_id = 31337\ndeploy = true\nconfirmations = 1\npoll_interval = 0.05\n'
            f'[rewards]\ncontract = "{rc.address}"\n')
    monkeypatch.setenv("DATANET_ANCHOR_KEY", DEV_KEY)
    store = make_store(tmp_path, spec)
    commit_texts(store, "b1", [(A, "one two three"), (B, "four five"), (A, "six")])
    compute_epoch(store, 1, POOL)
    return store, rc


def _balance(rc, who: str) -> int:
    return int(rc.token().functions.balanceOf(Web3.to_checksum_address(who)).call())


def test_claims_on_anvil(tmp_path, anvil, monkeypatch):
    store, rc = _setup(tmp_path, anvil.url, monkeypatch)

    def crash(name, state):
        if name == "broadcast":
            raise _Crash

    with pytest.raises(_Crash):
        publish_epoch(store, 1, checkpoint=crash)
    nonce = rc.client.nonce()
    state = publish_epoch(store, 1)
    assert state.status is AnchorStatus.FINAL and len(state.attempts) == 1
    assert publish_epoch(store, 1).tx_hash == state.tx_hash
    assert rc.client.nonce() == nonce  # the resumed publish sent no second transaction
    assert len(rc.contract.events.EpochPublished().get_logs(from_block=0)) == 1
    assert _balance(rc, rc.address) == POOL

    bundle = proof_bundle(store, 1, A)
    assert bundle["chain_id"] == 31337 and bundle["contract"] == rc.address
    claimer = claim_client(CLAIMER_KEY, rpc_url=anvil.url)
    assert send_claim(claimer, bundle).amount == 666666666666666666671
    assert _balance(rc, A) == 666666666666666666671
    second = send_claim(claimer, bundle)
    assert second.amount == 0 and _balance(rc, A) == 666666666666666666671

    old = proof_bundle(store, 1, B)
    commit_texts(store, "b2", [(C, "seven eight")])
    compute_epoch(store, 2, 50)
    publish_epoch(store, 2)
    with pytest.raises(RewardsError, match="StaleRoot"):
        send_claim(claimer, old)
    assert send_claim(claimer, proof_bundle(store, 2, C)).amount == 50
    assert send_claim(claimer, proof_bundle(store, 2, B)).amount == 333333333333333333336
    assert _balance(rc, rc.address) == POOL + 50 - 666666666666666666671 - 50 - (
        333333333333333333336)


def test_proofs_for_another_datanet_or_chain_fail_on_anvil(tmp_path, anvil, monkeypatch):
    store, rc = _setup(tmp_path, anvil.url, monkeypatch)
    publish_epoch(store, 1)
    bundle = proof_bundle(store, 1, A)
    claimer = claim_client(CLAIMER_KEY, rpc_url=anvil.url)
    op = rc.client
    # another datanet's contract holding the very same root: the leaf binds datanetKey
    other = deploy_rewards(op, rc.f.token().call(), "another-datanet")
    op.w3.eth.wait_for_transaction_receipt(other.f.publish(1, bytes.fromhex(
        bundle["root"][2:]), 0).transact({"from": op.address}))
    with pytest.raises(RewardsError, match="InvalidProof"):
        send_claim(claimer, {**bundle, "contract": other.address})
    # the same datanet's tree bound to chain 1, published on chain 31337: no replay
    foreign = reward_tree(1, "rewards-anvil", [(A, 10), (B, 20)])
    same = deploy_rewards(op, rc.f.token().call(), "rewards-anvil")
    op.w3.eth.wait_for_transaction_receipt(same.f.publish(1, bytes.fromhex(
        foreign.root[2:]), 0).transact({"from": op.address}))
    value = foreign.values[0]
    forged = {**bundle, "contract": same.address, "root": foreign.root,
              "account": value[2], "cumulative": value[3], "proof": foreign.get_proof(0)}
    with pytest.raises(RewardsError, match="InvalidProof"):
        send_claim(claimer, forged)
    assert _balance(rc, A) == 0
    assert Account.from_key(CLAIMER_KEY).address != A


def test_cli_claim_over_rpc_with_key_from_environment(tmp_path, anvil, monkeypatch):
    from typer.testing import CliRunner

    from datanet.cli import app

    store, _rc = _setup(tmp_path, anvil.url, monkeypatch)
    runner = CliRunner()
    r = runner.invoke(app, ["rewards", "publish", str(store.root), "--epoch", "1"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "b.json"
    assert runner.invoke(app, ["rewards", "proof", str(store.root), "--epoch", "1", B, "-o",
                               str(out)]).exit_code == 0
    monkeypatch.setenv("DATANET_PRIVATE_KEY", "0x" + CLAIMER_KEY.hex())
    monkeypatch.setenv("DATANET_RPC_URL", anvil.url)
    r = runner.invoke(app, ["rewards", "claim", str(out)])
    assert r.exit_code == 0, r.output
    assert CLAIMER_KEY.hex() not in r.output
    assert _balance(open_rewards(store), B) == 333333333333333333336
    assert json.loads(out.read_text())["leafEncoding"] == ["uint256", "bytes32", "address",
                                                           "uint256"]


def test_rewards_deploy_on_first_publish_is_recorded_and_reused(tmp_path, anvil, monkeypatch):
    from datanet.rewards.chain import REWARDS_DEPLOYMENT_FILE

    op = _client(anvil.url)
    token = deploy_test_token(op, op.address, 10**30)
    spec = (f'id = "rewards-anvil"\n[anchoring]\nchain = "rpc"\nrpc_url = "{anvil.url}"\n'
            f'chain_id = 31337\ndeploy = true\nconfirmations = 1\npoll_interval = 0.05\n'
            f'[rewards]\ndeploy = true\ntoken = "{token}"\n')
    monkeypatch.setenv("DATANET_ANCHOR_KEY", DEV_KEY)
    store = make_store(tmp_path, spec)
    commit_texts(store, "b1", [(A, "one two three"), (B, "four five")])
    compute_epoch(store, 1, 1000)
    deployment = Path(store.abs(REWARDS_DEPLOYMENT_FILE))
    assert not deployment.exists()
    state = publish_epoch(store, 1)
    assert state.status is AnchorStatus.FINAL
    (address,) = json.loads(deployment.read_text()).values()
    assert list(json.loads(deployment.read_text())) == ["31337"]
    rc = open_rewards(store)
    assert rc.address == address and rc.f.token().call() == Web3.to_checksum_address(token)
    assert _balance(rc, address) == 1000
    bundle = proof_bundle(store, 1, A)
    assert bundle["contract"] == address
    claimer = claim_client(CLAIMER_KEY, rpc_url=anvil.url)
    assert send_claim(claimer, bundle).amount == 600
    nonce = op.nonce()
    assert open_rewards(store).address == address and op.nonce() == nonce  # no redeploy

