"""Chain access for anchoring: the DatanetAnchor artifact, a web3 client and the embedded chain.

Three kinds of chain, one client:

* **embedded** (default): web3's ``EthereumTesterProvider`` over an in-process py-evm chain.
  Its whole database is snapshotted to ``anchors/embedded-chain.bin`` in the datanet after
  every transaction and restored on open, so blocks, transaction hashes, receipts and the
  contract's storage are identical across runs and proofs keep verifying. (Replaying the
  transactions instead would not reproduce block hashes: py-evm draws ``prevrandao`` at random
  for every block.) Signing uses eth-tester's well-known first dev key: it is a local chain.
* **anvil** (``@foundry-rs/anvil`` from npm) or any JSON-RPC URL, with a key from an
  environment variable or an encrypted keystore. The key is held in an eth-account object
  that is never printed: ``repr(client)`` shows only the address.

Transactions are signed locally and sent raw, so the same outbox code path runs everywhere.
"""

from __future__ import annotations

import ast
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.errors import AnchoringError
from datanet.store.atomic import write_atomic

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = [
    "load_artifact",
    "OnchainBatch",
    "SendResult",
    "ChainClient",
    "EmbeddedChain",
    "open_client",
    "load_key",
    "EMBEDDED_CHAIN_FILE",
    "DEPLOYMENT_FILE",
]

#: Snapshot of the embedded chain, relative to the datanet root.
EMBEDDED_CHAIN_FILE = "anchors/embedded-chain.bin"
#: Address of a contract deployed by ``anchoring.deploy = true`` (per chain id).
DEPLOYMENT_FILE = "anchors/deployment.json"
_MAGIC = b"DNCHAIN1"
ZERO32 = "0x" + "00" * 32

#: Substrings of node errors that mean "the node already has this transaction / nonce":
#: geth ("already known", "nonce too low"), anvil/reth ("already imported", "nonce too low"),
#: erigon/nethermind ("AlreadyKnown", "known transaction"), eth-tester ("already in").
_KNOWN_TX_ERRORS = (
    "already known", "alreadyknown", "known transaction", "already imported", "nonce too low",
    "already in", "transaction already exists", "replacement transaction underpriced",
)


@cache
def load_artifact() -> dict[str, Any]:
    """The committed DatanetAnchor artifact (ABI, bytecode, solc version and settings)."""
    text = resources.files("datanet.anchoring").joinpath("artifacts/DatanetAnchor.json")
    return json.loads(text.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class OnchainBatch:
    """A batch as stored by the contract (root all zero when not anchored)."""

    root: str
    prev_root: str
    leaf_count: int
    seq: int
    block_number: int

    @property
    def anchored(self) -> bool:
        """True once a root is stored for the batch."""
        return self.root != ZERO32


@dataclass(frozen=True)
class SendResult:
    """Outcome of broadcasting a raw transaction."""

    tx_hash: str
    accepted: bool
    error: str | None = None


def _hex(b: bytes | str) -> str:
    if isinstance(b, str):
        return b.lower() if b.startswith("0x") else "0x" + b.lower()
    return "0x" + bytes(b).hex()


def _b32(h: str | bytes) -> bytes:
    if isinstance(h, bytes):
        return h
    raw = bytes.fromhex(h[2:] if h.startswith("0x") else h)
    if len(raw) != 32:
        raise AnchoringError(f"{h!r} is not a 32-byte hex value")
    return raw


def load_key(*, key_env: str, keystore: str | None = None,
             password_env: str = "DATANET_KEYSTORE_PASSWORD") -> Any:
    """Signing account from an encrypted keystore (password from env) or a key in env."""
    from eth_account import Account

    if keystore:
        password = os.environ.get(password_env)
        if password is None:
            raise AnchoringError(
                f"keystore {keystore} needs its password in the environment variable "
                f"{password_env}"
            )
        try:
            data = json.loads(Path(keystore).read_text(encoding="utf-8"))
            return Account.from_key(Account.decrypt(data, password))
        except (OSError, ValueError) as exc:
            # The message of a wrong password names no secret; keep it, drop the traceback.
            raise AnchoringError(f"cannot open keystore {keystore}: {exc}") from None
    key = os.environ.get(key_env)
    if not key:
        raise AnchoringError(
            f"no signing key: set the environment variable {key_env} to a private key or "
            f"anchoring.keystore to an encrypted keystore file"
        )
    try:
        return Account.from_key(key.strip())
    except (ValueError, TypeError):
        raise AnchoringError(
            f"the environment variable {key_env} does not hold a valid private key"
        ) from None


class ChainClient:
    """A chain connection, a signing account and the DatanetAnchor contract."""

    def __init__(self, w3: Any, account: Any, contract_address: str | None, *,
                 kind: str = "rpc", embedded: EmbeddedChain | None = None):
        self.w3 = w3
        self._account = account
        self.kind = kind
        self.embedded = embedded
        self.address: str = account.address if account is not None else ""
        self.contract = None
        if contract_address:
            self.use_contract(contract_address)

    def __repr__(self) -> str:
        return (f"ChainClient(kind={self.kind!r}, chain_id={self.chain_id}, "
                f"contract={self.contract_address}, from={self.address})")

    @classmethod
    def connect(cls, url: str, *, account: Any = None, contract: str | None = None,
                expected_chain_id: int | None = None, timeout: float = 30.0) -> ChainClient:
        """Connect to a JSON-RPC URL (http(s) or ws(s))."""
        from web3 import Web3

        if url.startswith(("ws://", "wss://")):
            from web3 import LegacyWebSocketProvider

            provider = LegacyWebSocketProvider(url, websocket_timeout=timeout)
        else:
            provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})
        w3 = Web3(provider)
        client = cls(w3, account, contract, kind="rpc")
        if expected_chain_id is not None and client.chain_id != expected_chain_id:
            raise AnchoringError(
                f"the RPC reports chain id {client.chain_id}, the spec expects "
                f"anchoring.chain_id={expected_chain_id}"
            )
        return client

    # --- basics ------------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        """Chain id reported by the node."""
        return int(self.w3.eth.chain_id)

    @property
    def contract_address(self) -> str | None:
        """Checksummed address of the DatanetAnchor contract in use."""
        return self.contract.address if self.contract is not None else None

    def use_contract(self, address: str) -> None:
        """Bind to a deployed DatanetAnchor."""
        from web3 import Web3

        self.contract = self.w3.eth.contract(address=Web3.to_checksum_address(address),
                                             abi=load_artifact()["abi"])

    def _require_contract(self) -> Any:
        if self.contract is None:
            raise AnchoringError("no DatanetAnchor contract configured (anchoring.contract)")
        return self.contract

    def head(self) -> int:
        """Latest block number."""
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        """Hash of block ``number`` on the current canonical chain, None if beyond the head."""
        try:
            block = self.w3.eth.get_block(number)
        except Exception as exc:
            if type(exc).__name__ in ("BlockNotFound", "BlockNumberOutOfRange"):
                return None
            raise
        return _hex(block["hash"]) if block else None

    def nonce(self, *, pending: bool = False) -> int:
        """Transaction count of the signing account (mined, or including the mempool)."""
        return int(self.w3.eth.get_transaction_count(self.address,
                                                     "pending" if pending else "latest"))

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """Receipt of a transaction, or None while it is not mined (or was dropped)."""
        from web3.exceptions import TransactionNotFound

        try:
            r = self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        if r is None or r.get("blockNumber") is None:
            return None
        return {
            "status": int(r["status"]), "block_number": int(r["blockNumber"]),
            "block_hash": _hex(r["blockHash"]), "gas_used": int(r["gasUsed"]),
            "tx_hash": _hex(r["transactionHash"]),
        }

    # --- contract ----------------------------------------------------------------------

    def deploy(self, *, admin: str | None = None, anchorer: str | None = None) -> str:
        """Deploy DatanetAnchor (admin and anchorer default to the signing account)."""
        art = load_artifact()
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(admin or self.address, anchorer or self.address)
        built = tx.build_transaction({"from": self.address, "nonce": self.nonce(pending=True),
                                      "chainId": self.chain_id, **self.fees()})
        signed = self._account.sign_transaction(built)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self._after_send()
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise AnchoringError(f"deploying DatanetAnchor failed in tx {_hex(tx_hash)}")
        self.use_contract(receipt["contractAddress"])
        return self.contract_address

    def batch_of(self, datanet_key: str | bytes, batch_id: str | bytes) -> OnchainBatch:
        """The contract's record of a batch."""
        b = self._require_contract().functions.batchOf(_b32(datanet_key), _b32(batch_id)).call()
        return OnchainBatch(_hex(b[0]), _hex(b[1]), int(b[2]), int(b[3]), int(b[4]))

    def last_root(self, datanet_key: str | bytes) -> str:
        """The datanet's last anchored root (zero before the first anchor)."""
        return _hex(self._require_contract().functions.lastRoot(_b32(datanet_key)).call())

    def find_anchor(self, datanet_key: str | bytes, batch_id: str | bytes,
                    from_block: int = 0) -> dict[str, Any] | None:
        """The BatchAnchored event of a batch (tx hash, block), or None."""
        event = self._require_contract().events.BatchAnchored()
        logs = event.get_logs(
            from_block=from_block, to_block="latest",
            argument_filters={"datanetId": _b32(datanet_key), "batchId": _b32(batch_id)},
        )
        if not logs:
            return None
        log = logs[-1]
        return {"tx_hash": _hex(log["transactionHash"]), "block_number": int(log["blockNumber"]),
                "block_hash": _hex(log["blockHash"]), "root": _hex(log["args"]["root"])}

    def verify(self, datanet_key: str, batch_id: str, contribution_id: str, contributor: str,
               content_hash: str, proof: list[str]) -> bool:
        """On-chain check of an inclusion proof through the contract's ``verify``."""
        from web3 import Web3

        return bool(self._require_contract().functions.verify(
            _b32(datanet_key), _b32(batch_id), _b32(contribution_id),
            Web3.to_checksum_address(contributor), _b32(content_hash),
            [_b32(p) for p in proof],
        ).call())

    def has_anchorer_role(self, address: str | None = None) -> bool:
        """True if ``address`` (default: the signer) may anchor."""
        c = self._require_contract()
        return bool(c.functions.hasRole(c.functions.ANCHORER_ROLE().call(),
                                        address or self.address).call())

    # --- transactions --------------------------------------------------------------------

    def fees(self, *, bump: float = 1.0, min_fees: dict[str, int] | None = None,
             max_fee_wei: int | None = None) -> dict[str, int]:
        """EIP-1559 fees: priority from the node, max = 2 x base fee + priority, times
        ``bump``, and at least ``bump`` x ``min_fees`` (the fees of the tx being replaced)."""
        latest = self.w3.eth.get_block("latest")
        base = int(latest.get("baseFeePerGas") or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # nodes without eth_maxPriorityFeePerGas
            tip = 10**9
        tip = max(tip, 1)
        max_fee = 2 * base + tip
        if min_fees:
            tip = max(tip, int(min_fees["maxPriorityFeePerGas"] * bump) + 1)
            max_fee = max(max_fee, int(min_fees["maxFeePerGas"] * bump) + 1)
        max_fee = max(max_fee, tip)
        if max_fee_wei is not None and max_fee > max_fee_wei:
            if min_fees:
                raise AnchoringError(
                    f"replacement needs maxFeePerGas {max_fee} wei, above "
                    f"anchoring.max_fee_gwei ({max_fee_wei / 1e9:g} gwei)"
                )
            max_fee = max_fee_wei
            tip = min(tip, max_fee)
        return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}

    def anchor_call(self, datanet_key: str, batch_id: str, root: str, leaf_count: int,
                    prev_root: str) -> Any:
        """The unsent ``anchor(...)`` contract call."""
        return self._require_contract().functions.anchor(
            _b32(datanet_key), _b32(batch_id), _b32(root), int(leaf_count), _b32(prev_root)
        )

    def estimate_anchor_gas(self, call: Any) -> int:
        """Gas estimate of an anchor call; a revert (already anchored, wrong prevRoot, no
        role) surfaces here as an AnchoringError naming the contract error."""
        try:
            return int(call.estimate_gas({"from": self.address}))
        except Exception as exc:
            raise AnchoringError(f"anchor would revert: {self.describe_error(exc)}") from None

    def sign_anchor(self, call: Any, *, nonce: int, gas: int, fees: dict[str, int]
                    ) -> tuple[str, str]:
        """Sign an anchor transaction; returns (raw tx hex, tx hash)."""
        tx = call.build_transaction({
            "from": self.address, "nonce": nonce, "gas": gas, "chainId": self.chain_id,
            "type": 2, **fees,
        })
        signed = self._account.sign_transaction(tx)
        return _hex(signed.raw_transaction), _hex(signed.hash)

    def send_raw(self, raw: str) -> SendResult:
        """Broadcast a signed transaction. "Already known" and RPC timeouts are not failures:
        the caller checks the status afterwards."""
        from eth_utils import keccak

        tx_hash = _hex(keccak(_b32_any(raw)))
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            msg = self.describe_error(exc)
            if any(s in msg.lower() for s in _KNOWN_TX_ERRORS) or _is_transient(exc):
                return SendResult(tx_hash, False, msg)
            raise AnchoringError(f"broadcasting {tx_hash} failed: {msg}") from None
        finally:
            self._after_send()
        return SendResult(tx_hash, True)

    def _after_send(self) -> None:
        if self.embedded is not None:
            self.embedded.save()

    def describe_error(self, exc: Exception, abi: list[dict[str, Any]] | None = None) -> str:
        """Readable message for a node / contract error (decodes the custom errors of
        ``abi``, by default DatanetAnchor's)."""
        data = getattr(exc, "data", None)
        if data is None and exc.args and isinstance(exc.args[0], str):
            # eth-tester: "execution reverted: b'<revert data>'"
            m = re.match(r"execution reverted: (b'.*'|b\".*\")$", exc.args[0], re.S)
            if m:
                data = ast.literal_eval(m.group(1))
        if isinstance(data, bytes):
            data = "0x" + data.hex()
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            decoded = self._decode_error(data, abi)
            if decoded:
                return decoded
        return f"{type(exc).__name__}: {exc}"

    def _decode_error(self, data: str, abi: list[dict[str, Any]] | None = None) -> str | None:
        from eth_abi import decode
        from eth_utils import keccak

        for item in abi if abi is not None else load_artifact()["abi"]:
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            sig = f"{item['name']}({','.join(types)})"
            if keccak(text=sig)[:4].hex() == data[2:10]:
                args = decode(types, bytes.fromhex(data[10:]))
                shown = ", ".join(
                    f"{i['name']}={_hex(a) if isinstance(a, bytes) else a}"
                    for i, a in zip(item["inputs"], args, strict=True)
                )
                return f"{item['name']}({shown})"
        return None


def _b32_any(raw: str) -> bytes:
    return bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)


def _is_transient(exc: Exception) -> bool:
    """Timeouts and dropped connections: the tx may or may not have reached the node."""
    import requests

    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ConnectionError,
                        TimeoutError, ConnectionError)):
        return True
    return "timeout" in str(exc).lower() or "timed out" in str(exc).lower()


class EmbeddedChain:
    """The in-process chain of one datanet, persisted as a database snapshot."""

    def __init__(self, path: str | Path):
        from eth_account import Account
        from eth_tester import EthereumTester, PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_account_keys
        from web3 import EthereumTesterProvider, Web3

        self.path = Path(path)
        self.backend = PyEVMBackend()
        self.meta: dict[str, Any] = {}
        if self.path.exists():
            self._restore()
        self.w3 = Web3(EthereumTesterProvider(EthereumTester(self.backend)))
        self.account = Account.from_key(get_default_account_keys()[0].to_bytes())

    def _restore(self) -> None:
        from eth.db.atomic import AtomicDB
        from eth.db.backends.memory import MemoryDB

        blob = self.path.read_bytes()
        if not blob.startswith(_MAGIC):
            raise AnchoringError(f"{self.path} is not an embedded chain snapshot")
        (meta_len,) = struct.unpack(">I", blob[8:12])
        self.meta = json.loads(blob[12 : 12 + meta_len])
        body = zlib.decompress(blob[12 + meta_len :])
        kv: dict[bytes, bytes] = {}
        pos = 0
        while pos < len(body):
            klen, vlen = struct.unpack(">II", body[pos : pos + 8])
            pos += 8
            kv[body[pos : pos + klen]] = body[pos + klen : pos + klen + vlen]
            pos += klen + vlen
        chain_cls = type(self.backend.chain)
        self.backend.chain = chain_cls(AtomicDB(MemoryDB(kv)))

    def save(self) -> None:
        """Write the chain database atomically (tmp file + rename)."""
        db = self.backend.chain.chaindb.db
        kv = db.wrapped_db.kv_store
        parts = []
        for k, v in kv.items():
            parts.append(struct.pack(">II", len(k), len(v)))
            parts.append(k)
            parts.append(v)
        meta = json.dumps(self.meta, sort_keys=True).encode()
        blob = _MAGIC + struct.pack(">I", len(meta)) + meta + zlib.compress(b"".join(parts), 6)
        write_atomic(self.path, blob)

    def client(self) -> ChainClient:
        """A client bound to this chain's contract (deployed on first use)."""
        c = ChainClient(self.w3, self.account, self.meta.get("contract"), kind="embedded",
                        embedded=self)
        if c.contract is None:
            self.meta["contract"] = c.deploy()
            self.save()
        return c


def open_client(store: DatanetStore, config: Any = None, *, read_only: bool = False) -> ChainClient:
    """Client for a datanet store, from its ``[anchoring]`` config (``read_only``: no key,
    for verifying)."""
    from datanet.anchoring.config import anchoring_config

    cfg = config or anchoring_config(store.spec)
    if cfg.chain == "embedded":
        return EmbeddedChain(store.abs(EMBEDDED_CHAIN_FILE)).client()
    url = cfg.rpc_url or os.environ.get(cfg.rpc_url_env)
    if not url:
        raise AnchoringError(
            f"anchoring.chain='rpc' needs anchoring.rpc_url or the environment variable "
            f"{cfg.rpc_url_env}"
        )
    account = None if read_only else load_key(
        key_env=cfg.key_env, keystore=cfg.keystore, password_env=cfg.keystore_password_env)
    deployment = Path(store.abs(DEPLOYMENT_FILE))
    contract = cfg.contract
    client = ChainClient.connect(url, account=account, contract=None,
                                 expected_chain_id=cfg.chain_id, timeout=cfg.rpc_timeout)
    if contract is None and deployment.exists():
        known = json.loads(deployment.read_text(encoding="utf-8"))
        if int(known["chain_id"]) == client.chain_id:
            contract = known["contract"]
    if contract is not None:
        client.use_contract(contract)
    elif cfg.deploy and not read_only:
        address = client.deploy()
        write_atomic(deployment, json.dumps({"chain_id": client.chain_id, "contract": address}))
    return client
