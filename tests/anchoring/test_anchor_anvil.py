"""Outbox against anvil (npm @foundry-rs/anvil on 127.0.0.1): RPC down then up, a reorg over
the anchor block, a stuck transaction replaced at the same nonce."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3

from datanet.anchoring.client import ChainClient
from datanet.anchoring.config import AnchoringConfig
from datanet.anchoring.outbox import AnchorStatus, anchor_pending
from tests.anchoring.helpers import commit_batch, make_store

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
# anvil's first default dev account (mnemonic "test test ... junk"), public test key.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.skipif(not ANVIL.exists(), reason="needs anvil (run `npm ci` at the repo root)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """An anvil process on 127.0.0.1 that can be stopped and restarted on the same port
    with its state (``--state``)."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.state = tmp / "anvil-state.json"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent",
             "--state", str(self.state), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        w3 = Web3(Web3.HTTPProvider(self.url))
        for _ in range(100):
            try:
                _ = w3.eth.block_number
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("anvil did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def anvil(tmp_path):
    node = Anvil(tmp_path)
    node.start()
    yield node
    node.stop()


def _client(url: str, contract: str | None = None) -> ChainClient:
    from eth_account import Account

    c = ChainClient.connect(url, account=Account.from_key(DEV_KEY), contract=contract,
                            timeout=5)
    return c


def _rpc(url: str, method: str, *params):
    res = Web3(Web3.HTTPProvider(url)).provider.make_request(method, list(params))
    assert "error" not in res, res
    return res.get("result")


def test_rpc_down_then_up_resumes_and_anchors_once(tmp_path, anvil) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "down", 5)
    client = _client(anvil.url)
    address = client.deploy()
    cfg = AnchoringConfig(chain="rpc", contract=address, confirmations=2, poll_interval=0.05,
                          timeout=5.0)

    def down_after_send(name, state):
        if name == "sent":  # persisted, not yet broadcast: the node goes away
            anvil.stop()

    with pytest.raises(Exception):  # noqa: B017 - the broadcast fails / times out
        anchor_pending(store, client=client, config=cfg, checkpoint=down_after_send)
    saved = json.loads(Path(store.abs(f"anchors/{bid}.json")).read_text())
    assert saved["status"] == "SENT"
    anvil.start()
    client = _client(anvil.url, address)
    _rpc(anvil.url, "anvil_setIntervalMining", 1)
    states = anchor_pending(store, client=client, config=cfg)
    assert states[0].status is AnchorStatus.FINAL
    assert client.nonce() == 2  # deploy + one anchor
    assert client.batch_of(states[0].datanet_key, bid).seq == 1


@pytest.mark.parametrize("how", ["reorg", "rollback"])
def test_reorg_over_anchor_block_reanchors_once(tmp_path, anvil, how) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "reorg", 4)
    client = _client(anvil.url)
    address = client.deploy()
    # automine only: no further blocks, so the anchor stays INCLUDED (1 of 3 confirmations)
    cfg = AnchoringConfig(chain="rpc", contract=address, confirmations=3, poll_interval=0.05,
                          timeout=1.0)
    states = anchor_pending(store, client=client, config=cfg)
    assert states[0].status is AnchorStatus.INCLUDED
    old_block, number = states[0].block_hash, states[0].block_number
    if how == "reorg":
        # anvil_reorg replaces the anchor block by one that also holds another transfer;
        # anvil re-mines the dropped transactions, so the anchor lands in a new block
        other = {"from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                 "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": "0x1"}
        _rpc(anvil.url, "anvil_reorg", 1, [[other, 0]])
        assert client.block_hash(number) != old_block
    else:
        # anvil_rollback drops the anchor block and its transaction
        _rpc(anvil.url, "anvil_rollback", 1)
        assert client.receipt(states[0].tx_hash) is None
        assert not client.batch_of(states[0].datanet_key, bid).anchored
    _rpc(anvil.url, "anvil_setIntervalMining", 1)
    cfg = AnchoringConfig(chain="rpc", contract=address, confirmations=3, poll_interval=0.1,
                          timeout=30.0)
    states = anchor_pending(store, client=client, config=cfg)
    st = states[0]
    assert st.status is AnchorStatus.FINAL
    assert st.block_hash != old_block and len(st.attempts) == 1
    assert sum(h["note"].startswith("reorg") for h in st.history) == 1
    assert client.batch_of(st.datanet_key, bid).seq == 1
    assert client.nonce() == 2


def test_stuck_transaction_replaced_at_same_nonce(tmp_path, anvil) -> None:
    store = make_store(tmp_path)
    bid, _ = commit_batch(store, "stuck", 3)
    client = _client(anvil.url)
    address = client.deploy()
    _rpc(anvil.url, "evm_setAutomine", False)
    now = [1000.0]
    cfg = AnchoringConfig(chain="rpc", contract=address, confirmations=1, poll_interval=1.0,
                          timeout=100.0, stuck_after=30.0)

    def fake_sleep(seconds):  # time passes; the node mines only after the replacement
        now[0] += seconds
        saved = json.loads(Path(store.abs(f"anchors/{bid}.json")).read_text())
        if len(saved["attempts"]) == 2:
            _rpc(anvil.url, "evm_mine")

    states = anchor_pending(store, client=client, config=cfg, clock=lambda: now[0],
                            sleep=fake_sleep)
    st = states[0]
    assert st.status is AnchorStatus.FINAL
    assert len(st.attempts) == 2 and st.attempts[0].nonce == st.attempts[1].nonce
    assert st.attempts[1].max_fee_per_gas >= int(st.attempts[0].max_fee_per_gas * 1.25)
    assert st.tx_hash == st.attempts[1].tx_hash
    assert client.nonce() == 2 and client.batch_of(st.datanet_key, bid).seq == 1
