"""The anchoring outbox: a crash-safe state machine per batch in ``anchors/<batch_id>.json``.

    PENDING --sign, persist nonce + tx hash + raw tx, then broadcast--> SENT
    SENT --receipt with status 1--> INCLUDED (block number + hash)
    INCLUDED --``confirmations`` blocks deep--> FINAL
    INCLUDED --block hash changed / receipt gone (reorg)--> SENT (rebroadcast the same tx)

Every transition is written (atomically) before the side effect it announces, so a process
killed anywhere resumes correctly: a SENT state always names every transaction that may be
in flight, and a batch is looked up on the contract before anything is signed, so it is never
anchored twice (the contract also reverts a second anchor). RPC timeouts and "already known"
answers lead to a status check, not a failure; a transaction unmined for
``anchoring.stuck_after`` seconds is replaced at the same nonce with fees raised by
``anchoring.fee_bump``.

Anchoring runs in the driver (CLI, Airflow task) after the pipeline, never inside a DoFn.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.anchoring.client import ZERO32, ChainClient, open_client
from datanet.anchoring.config import AnchoringConfig, anchoring_config
from datanet.errors import AnchoringError, DatanetError
from datanet.schemas.ids import datanet_key
from datanet.store.atomic import write_atomic

if TYPE_CHECKING:
    from datanet.schemas.manifest import Manifest
    from datanet.store.layout import DatanetStore

__all__ = ["AnchorStatus", "Attempt", "AnchorState", "Outbox", "anchor_pending", "anchor_chain",
           "anchor_path"]

#: Gas head-room over the node's estimate (the estimate is exact for this contract; the
#: margin covers storage-slot warmth differences between estimate and inclusion).
_GAS_MARGIN = 1.2
#: Reverted anchor transactions tolerated for one batch before giving up.
_MAX_REVERTS = 2


class AnchorStatus(StrEnum):
    """Outbox states, in order."""

    PENDING = "PENDING"
    SENT = "SENT"
    INCLUDED = "INCLUDED"
    FINAL = "FINAL"


@dataclass
class Attempt:
    """One signed transaction for the batch (replacements share the nonce)."""

    tx_hash: str
    raw: str
    nonce: int
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    signed_at: float


@dataclass
class AnchorState:
    """Persisted anchoring state of one batch (mutable: it is the state machine's record)."""

    batch_id: str
    seq: int
    datanet: str
    datanet_key: str
    root: str
    prev_root: str
    leaf_count: int
    status: AnchorStatus = AnchorStatus.PENDING
    chain_id: int | None = None
    contract: str | None = None
    sender: str | None = None
    nonce: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    confirmations: int = 0
    reverts: int = 0
    reorgs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object (the file format of ``anchors/<batch_id>.json``)."""
        d = dataclasses.asdict(self)
        d["status"] = str(self.status)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnchorState:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["status"] = AnchorStatus(data["status"])
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        return cls(**data)


def anchor_path(store: DatanetStore, batch_id: str) -> Path:
    """Path of a batch's outbox file."""
    return Path(store.abs(f"anchors/{batch_id}.json"))


class Outbox:
    """Drives :class:`AnchorState` records of one datanet to FINAL."""

    def __init__(self, store: DatanetStore, client: ChainClient, config: AnchoringConfig, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 checkpoint: Callable[[str, AnchorState], None] | None = None):
        self.store = store
        self.client = client
        self.config = config
        self.clock = clock
        self.sleep = sleep
        # Called after each persisted step (name, state); tests use it to kill the process.
        self.checkpoint = checkpoint or (lambda name, state: None)

    # --- persistence -------------------------------------------------------------------

    #: State class of the records (subclasses of the outbox store their own fields).
    state_class: type[AnchorState] = AnchorState

    def _path(self, batch_id: str) -> Path:
        """File of one record (hook: other outboxes keep theirs elsewhere)."""
        return anchor_path(self.store, batch_id)

    def _call(self, state: AnchorState) -> Any:
        """The unsent contract call the record stands for (hook)."""
        return self.client.anchor_call(state.datanet_key, state.batch_id, state.root,
                                       state.leaf_count, state.prev_root)

    def load(self, batch_id: str) -> AnchorState | None:
        """The saved state of a batch, or None."""
        path = self._path(batch_id)
        if not path.exists():
            return None
        return self.state_class.from_json(json.loads(path.read_text(encoding="utf-8")))

    def save(self, state: AnchorState, note: str) -> None:
        """Record a transition atomically (unique temp file, fsync, rename)."""
        state.history.append({"status": str(state.status), "at": round(self.clock(), 3),
                              "note": note})
        write_atomic(self._path(state.batch_id),
                     json.dumps(state.to_json(), indent=1))

    def state_for(self, manifest: Manifest, prev_root: str) -> AnchorState:
        """Saved state of a committed batch, or a new PENDING one."""
        state = self.load(manifest.batch_id)
        root = manifest.merkle_root.lower()
        if state is None:
            state = AnchorState(
                batch_id=manifest.batch_id, seq=int(manifest.seq), datanet=manifest.datanet,
                datanet_key="0x" + datanet_key(manifest.datanet).hex(), root=root,
                prev_root=prev_root, leaf_count=int(manifest.leaf_count),
                chain_id=self.client.chain_id, contract=self.client.contract_address,
                sender=self.client.address,
            )
            self.save(state, "created from manifest")
            return state
        if state.root != root:
            raise AnchoringError(
                f"anchors/{state.batch_id}.json has root {state.root} but the manifest of "
                f"batch {state.seq} has {root}; the outbox file belongs to another tree"
            )
        if (state.chain_id, (state.contract or "").lower()) != (
            self.client.chain_id, (self.client.contract_address or "").lower()
        ):
            raise AnchoringError(
                f"batch {state.batch_id} is anchored (status {state.status}) on chain "
                f"{state.chain_id} contract {state.contract}, but the client is on chain "
                f"{self.client.chain_id} contract {self.client.contract_address}; move "
                f"anchors/ aside to anchor on another chain"
            )
        return state

    # --- transitions -------------------------------------------------------------------

    def step(self, state: AnchorState) -> bool:
        """Advance one transition if possible; True if the state changed."""
        handler = {
            AnchorStatus.PENDING: self._pending,
            AnchorStatus.SENT: self._sent,
            AnchorStatus.INCLUDED: self._included,
            AnchorStatus.FINAL: lambda s: False,
        }[state.status]
        return handler(state)

    def drive(self, state: AnchorState, *, deadline: float) -> AnchorState:
        """Step until FINAL or ``deadline`` (clock seconds); transient RPC errors retry."""
        while state.status is not AnchorStatus.FINAL:
            try:
                changed = self.step(state)
            except DatanetError:  # our own verdicts (reverts, order, config) are final
                raise
            except Exception as exc:  # node down, timeouts: keep the state, poll again
                if self.clock() >= deadline:
                    raise AnchoringError(
                        f"chain unreachable while anchoring batch {state.batch_id} "
                        f"(status {state.status}, resumable): {type(exc).__name__}: {exc}"
                    ) from None
                changed = False
            if state.status is AnchorStatus.FINAL or self.clock() >= deadline:
                break
            if not changed:
                self.sleep(self.config.poll_interval)
        return state

    def _adopt_onchain(self, state: AnchorState, note: str) -> bool:
        """If the contract already holds this batch, record its anchor tx; True if so."""
        onchain = self.client.batch_of(state.datanet_key, state.batch_id)
        if not onchain.anchored:
            return False
        if onchain.root != state.root:
            raise AnchoringError(
                f"batch {state.batch_id} is already anchored with root {onchain.root}, "
                f"not {state.root}"
            )
        event = self.client.find_anchor(state.datanet_key, state.batch_id)
        if event is None:  # state visible before logs (should not happen): poll again
            return False
        self._record_included(state, event, note)
        return True

    def _record_included(self, state: AnchorState, event: dict[str, Any], note: str) -> None:
        """Adopt the transaction of ``event`` (found on chain) as this state's: INCLUDED."""
        receipt = self.client.receipt(event["tx_hash"])
        state.tx_hash = event["tx_hash"]
        state.block_number = event["block_number"]
        state.block_hash = event["block_hash"]
        state.gas_used = receipt["gas_used"] if receipt else None
        state.status = AnchorStatus.INCLUDED
        self.save(state, note)
        self.checkpoint("included", state)

    def _pending(self, state: AnchorState) -> bool:
        if self._adopt_onchain(state, "already anchored on chain"):
            return True
        last = self.client.last_root(state.datanet_key)
        if last != state.prev_root:
            raise AnchoringError(
                f"cannot anchor batch {state.seq} ({state.batch_id}): it chains to prevRoot "
                f"{state.prev_root} but the contract's last root for datanet "
                f"{state.datanet!r} is {last}; anchor the earlier batches first"
            )
        call = self._call(state)
        gas = int(self.client.estimate_anchor_gas(call) * _GAS_MARGIN)
        nonce = self.client.nonce(pending=True)
        fees = self.client.fees(max_fee_wei=self._max_fee_wei())
        self._sign_and_send(state, call, nonce, gas, fees, "signed; broadcasting")
        return True

    def _max_fee_wei(self) -> int | None:
        cap = self.config.max_fee_gwei
        return None if cap is None else int(cap * 10**9)

    def _sign_and_send(self, state: AnchorState, call: Any, nonce: int, gas: int,
                       fees: dict[str, int], note: str) -> None:
        raw, tx_hash = self.client.sign_anchor(call, nonce=nonce, gas=gas, fees=fees)
        state.nonce = nonce
        state.attempts.append(Attempt(
            tx_hash=tx_hash, raw=raw, nonce=nonce, gas=gas,
            max_fee_per_gas=fees["maxFeePerGas"],
            max_priority_fee_per_gas=fees["maxPriorityFeePerGas"], signed_at=self.clock(),
        ))
        state.tx_hash = tx_hash
        state.status = AnchorStatus.SENT
        self.save(state, f"{note} {tx_hash} nonce {nonce}")  # persisted BEFORE broadcast
        self.checkpoint("sent", state)
        self.client.send_raw(raw)
        self.checkpoint("broadcast", state)

    def _sent(self, state: AnchorState) -> bool:
        for attempt in reversed(state.attempts):
            receipt = self.client.receipt(attempt.tx_hash)
            if receipt is None:
                continue
            if receipt["status"] == 1:
                state.tx_hash = attempt.tx_hash
                state.block_number = receipt["block_number"]
                state.block_hash = receipt["block_hash"]
                state.gas_used = receipt["gas_used"]
                state.status = AnchorStatus.INCLUDED
                self.save(state, f"included in block {state.block_number}")
                self.checkpoint("included", state)
                return True
            if self._adopt_onchain(state, f"tx {attempt.tx_hash} reverted; batch found"):
                return True
            state.reverts += 1
            if state.reverts > _MAX_REVERTS:
                raise AnchoringError(
                    f"anchor transaction {attempt.tx_hash} of batch {state.batch_id} "
                    f"reverted {state.reverts} times; see the outbox file"
                )
            state.status = AnchorStatus.PENDING
            self.save(state, f"tx {attempt.tx_hash} reverted; retrying from PENDING")
            return True
        if self._adopt_onchain(state, "anchored by a transaction seen on chain"):
            return True
        last = state.attempts[-1]
        if self.client.nonce(pending=False) > last.nonce:
            # Our nonce is used but none of our transactions has a receipt: either the node
            # lags (receipts come next poll) or another tx from this key took the nonce.
            if self.clock() - last.signed_at > self.config.stuck_after:
                state.status = AnchorStatus.PENDING
                self.save(state, f"nonce {last.nonce} used by another transaction")
                return True
            return False
        if self.clock() - last.signed_at > self.config.stuck_after:
            fees = self.client.fees(
                bump=self.config.fee_bump, max_fee_wei=self._max_fee_wei(),
                min_fees={"maxFeePerGas": last.max_fee_per_gas,
                          "maxPriorityFeePerGas": last.max_priority_fee_per_gas},
            )
            call = self._call(state)
            self._sign_and_send(state, call, last.nonce, last.gas, fees,
                                "stuck; replacement")
            return True
        # Not mined yet: rebroadcast (a no-op "already known" when the node has it; after a
        # node restart or a reorg that dropped it, this puts it back).
        self.client.send_raw(last.raw)
        return False

    def _included(self, state: AnchorState) -> bool:
        receipt = self.client.receipt(state.tx_hash) if state.tx_hash else None
        canonical = self.client.block_hash(state.block_number)
        if receipt is None or receipt["status"] != 1 or canonical != state.block_hash:
            if (receipt is not None and receipt["status"] == 1
                    and self.client.block_hash(receipt["block_number"]) == receipt["block_hash"]):
                state.block_number = receipt["block_number"]
                state.block_hash = receipt["block_hash"]
                self.save(state, f"reorg: re-included in block {state.block_number}")
                return True
            state.reorgs += 1
            state.status = AnchorStatus.SENT
            state.block_number = state.block_hash = None
            self.save(state, "reorg dropped the anchor block; back to SENT")
            return True
        head = self.client.head()
        state.confirmations = head - state.block_number + 1
        if state.confirmations >= self.config.required_confirmations:
            state.status = AnchorStatus.FINAL
            self.save(state, f"final at {state.confirmations} confirmations")
            self.checkpoint("final", state)
            return True
        return False


def anchor_pending(store: DatanetStore, *, client: ChainClient | None = None,
                   config: AnchoringConfig | None = None, wait: bool = True,
                   clock: Callable[[], float] = time.time,
                   sleep: Callable[[float], None] = time.sleep,
                   checkpoint: Callable[[str, AnchorState], None] | None = None,
                   ) -> list[AnchorState]:
    """Anchor or resume every committed batch with a root, in sequence order.

    A batch's prevRoot is the root of the latest earlier batch that has one (batches with no
    accepted records have no root and are skipped on-chain). Stops at a batch that is not yet
    included (its successor's prevRoot depends on it). With ``wait=False`` it sends and
    returns without waiting for confirmations. Returns the states of all rooted batches seen.
    """
    cfg = config or anchoring_config(store.spec)
    if not cfg.enabled:
        return []
    manifests = [m for m in store.manifests() if m.merkle_root]
    if not manifests:
        return []
    client = client or open_client(store, cfg)
    outbox = Outbox(store, client, cfg, clock=clock, sleep=sleep, checkpoint=checkpoint)
    return anchor_chain(outbox, sorted(manifests, key=lambda m: m.seq),
                        deadline=clock() + (cfg.timeout if wait else 0.0), check_prev=True)


def anchor_chain(outbox: Outbox, manifests: list[Any], *, deadline: float,
                 check_prev: bool = False) -> list[AnchorState]:
    """Drive ``manifests`` (one chain of roots, in order) through ``outbox``; stop at the first
    that is not included yet, since its successor's prevRoot depends on it. ``check_prev``:
    each manifest's own ``prev_root`` must be the previous root of the chain."""
    prev = ZERO32
    states: list[AnchorState] = []
    for m in manifests:
        if check_prev and m.prev_root and m.prev_root.lower() != prev:
            raise AnchoringError(
                f"manifest of batch {m.seq} ({m.batch_id}) has prev_root {m.prev_root}, but "
                f"the previous root in the chain of manifests is {prev}"
            )
        state = outbox.state_for(m, prev)
        if state.status is not AnchorStatus.FINAL:
            state = outbox.drive(state, deadline=deadline)
        states.append(state)
        if state.status in (AnchorStatus.PENDING, AnchorStatus.SENT):
            break
        prev = state.root
    return states
