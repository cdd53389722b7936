"""Publish and claim on the embedded chain with the real OpenZeppelin ERC20 test token."""

from __future__ import annotations

import json

import pytest
from eth_tester.backends.pyevm.main import get_default_account_keys
from typer.testing import CliRunner
from web3 import Web3

from datanet.anchoring.outbox import AnchorStatus
from datanet.cli import app
from datanet.errors import RewardsError
from datanet.rewards.chain import (
    claim_client,
    deploy_rewards,
    open_rewards,
    proof_bundle,
    publish_epoch,
    send_claim,
)
from datanet.rewards.epoch import compute_epoch
from tests.rewards.helpers import A, B, C, commit_texts, make_store

POOL = 10**21 + 7
CLAIMER = get_default_account_keys()[1].to_bytes()  # any funded key may claim for an account
runner = CliRunner()


class _Crash(BaseException):  # not an Exception: the outbox retries those
    pass


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    commit_texts(s, "b1", [(A, "one two three"), (B, "four five"), (A, "six")])
    compute_epoch(s, 1, POOL)
    return s


def _balance(rc, who: str) -> int:
    return int(rc.token().functions.balanceOf(Web3.to_checksum_address(who)).call())


def test_claim_moves_exactly_the_amount_and_a_second_claim_moves_nothing(store):
    state = publish_epoch(store, 1)
    assert state.status is AnchorStatus.FINAL and state.gas_used > 0
    rc = open_rewards(store)
    assert _balance(rc, rc.address) == POOL
    bundle = proof_bundle(store, 1, A)
    client = claim_client(CLAIMER, store=store)
    first = send_claim(client, bundle)
    assert first.amount == 666666666666666666671
    rc = open_rewards(store)
    assert _balance(rc, A) == 666666666666666666671
    assert send_claim(claim_client(CLAIMER, store=store), bundle).amount == 0
    rc = open_rewards(store)
    assert _balance(rc, A) == 666666666666666666671
    assert _balance(rc, rc.address) == POOL - 666666666666666666671


def test_cumulative_claims_and_stale_root(store):
    publish_epoch(store, 1)
    old = proof_bundle(store, 1, B)
    commit_texts(store, "b2", [(B, "seven eight"), (C, "nine ten")])
    compute_epoch(store, 2, 1000)
    publish_epoch(store, 2)
    with pytest.raises(RewardsError, match="StaleRoot"):
        send_claim(claim_client(CLAIMER, store=store), old)
    new = proof_bundle(store, 2, B)
    assert new["cumulative"] == str(333333333333333333336 + 500)
    assert send_claim(claim_client(CLAIMER, store=store), new).amount == (
        333333333333333333336 + 500)
    rc = open_rewards(store)
    assert _balance(rc, B) == 333333333333333333336 + 500


def test_proof_for_another_datanet_or_amount_fails(store):
    publish_epoch(store, 1)
    bundle = proof_bundle(store, 1, A)
    rc = open_rewards(store)
    other = deploy_rewards(rc.client, rc.f.token().call(), "another-datanet")
    other_root_publish = other.f.publish(1, bytes.fromhex(bundle["root"][2:]), 0)
    rc.client.w3.eth.wait_for_transaction_receipt(
        other_root_publish.transact({"from": rc.client.address}))
    rc.client.embedded.save()
    # same root and proof, but the contract binds its own datanet key into the leaf
    with pytest.raises(RewardsError, match="InvalidProof"):
        send_claim(claim_client(CLAIMER, store=store), {**bundle, "contract": other.address})
    with pytest.raises(RewardsError, match="InvalidProof"):
        send_claim(claim_client(CLAIMER, store=store),
                   {**bundle, "cumulative": str(int(bundle["cumulative"]) + 1)})
    with pytest.raises(RewardsError, match="is for chain 1;"):
        send_claim(claim_client(CLAIMER, store=store), {**bundle, "chain_id": 1})


def test_publish_is_idempotent_across_a_crash_after_broadcast(store):
    def crash(name, state):
        if name == "broadcast":
            raise _Crash

    with pytest.raises(_Crash):
        publish_epoch(store, 1, checkpoint=crash)
    saved = json.loads(open(store.abs("rewards/1.publish.json")).read())
    assert saved["status"] == "SENT" and len(saved["attempts"]) == 1
    rc = open_rewards(store)
    nonce = rc.client.nonce()
    state = publish_epoch(store, 1)
    assert state.status is AnchorStatus.FINAL and state.tx_hash == saved["attempts"][0]["tx_hash"]
    assert len(state.attempts) == 1
    again = publish_epoch(store, 1)
    assert again.status is AnchorStatus.FINAL
    rc = open_rewards(store)
    assert rc.client.nonce() == nonce  # resuming and re-running sent nothing
    assert len(rc.contract.events.EpochPublished().get_logs(from_block=0)) == 1
    assert rc.epoch() == 1 and _balance(rc, rc.address) == POOL


def test_publish_refuses_out_of_order_and_uncomputed_epochs(store):
    with pytest.raises(RewardsError, match="epoch 2 is not computed"):
        publish_epoch(store, 2)
    commit_texts(store, "b2", [(C, "nine ten")])
    compute_epoch(store, 2, 10)
    with pytest.raises(RewardsError, match="last epoch is 0; publish epochs in order"):
        publish_epoch(store, 2)


def test_cli_proof_and_claim_with_a_key_file(store, tmp_path):
    assert runner.invoke(app, ["rewards", "publish", str(store.root), "--epoch", "1"]
                         ).exit_code == 0
    bundle = tmp_path / "bundle.json"
    r = runner.invoke(app, ["rewards", "proof", str(store.root), "--epoch", "1", B,
                            "-o", str(bundle)])
    assert r.exit_code == 0, r.output
    key = tmp_path / "key"
    key.write_text("0x" + CLAIMER.hex())
    r = runner.invoke(app, ["rewards", "claim", str(bundle), "--key-file", str(key),
                            "--datanet", str(store.root)])
    assert r.exit_code == 0, r.output
    assert f"claimed 333333333333333333336 for {B}" in r.output
    assert CLAIMER.hex() not in r.output


def test_rewards_deploy_needs_a_token_and_excludes_a_contract(tmp_path):
    from datanet.errors import SpecError

    base = 'id = "x"\n[rewards]\n'
    with pytest.raises(SpecError, match=r"rewards.deploy=True needs rewards.token"):
        make_store(tmp_path / "a", base + "deploy = true\n")
    with pytest.raises(SpecError, match=r"rewards.deploy=True and rewards.contract are "):
        make_store(tmp_path / "b", base + f'deploy = true\ntoken = "{A}"\ncontract = "{B}"\n')
