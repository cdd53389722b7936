"""Epoch settlement: inputs -> split -> cumulative tree -> one atomic commit.

An epoch covers the batches (and receipts) committed since the previous epoch; epoch 1 covers
everything so far. Its files, under ``rewards/`` of the datanet:

* ``<epoch>.json``: the OpenZeppelin ``standard-v1`` dump of the cumulative tree, one leaf
  ``(uint256 chainId, bytes32 datanetKey, address account, uint256 cumulativeAmount)`` per
  account ever paid;
* ``<epoch>.proofs``: the proof index (:mod:`datanet.rewards.proofindex`), one account's proof
  without parsing the dump;
* ``<epoch>.settlement.json``: the settlement record (inputs, rule, per-account amounts, root),
  the commit point: created only if absent, under the datanet's commit lock, after the tree.

A committed epoch is immutable: computing it again recomputes from its recorded inputs (the
same batch range) and is a no-op if everything matches, an error naming the difference if not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datanet.anchoring.merkle import StandardMerkleTree
from datanet.errors import RewardsError
from datanet.rewards.config import leaf_chain_id, rewards_config
from datanet.rewards.proofindex import index_pieces, index_rel
from datanet.rewards.split import WORD_RE, Allocation, allocate, data_words, usage_weights
from datanet.schemas.ids import datanet_key
from datanet.store.atomic import create_exclusive, write_atomic

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = [
    "REWARD_LEAF_ENCODING",
    "RECORD_FORMAT",
    "Settlement",
    "reward_leaf",
    "reward_tree",
    "compute_epoch",
    "load_settlement",
    "load_reward_tree",
    "settled",
    "settlements",
    "read_attributions_file",
    "store_receipts",
]

#: ABI types of a reward leaf: (chainId, datanetKey, account, cumulativeAmount).
REWARD_LEAF_ENCODING: tuple[str, ...] = ("uint256", "bytes32", "address", "uint256")
RECORD_FORMAT = "datanet-rewards-settlement-v1"
_MAX_UINT256 = 2**256 - 1
_TIE_BREAK = "keccak256(datanetKey || uint64 epoch || account) ascending"


def _tree_rel(epoch: int) -> str:
    return f"rewards/{epoch}.json"


def _record_rel(epoch: int) -> str:
    return f"rewards/{epoch}.settlement.json"


@dataclass(frozen=True)
class Settlement:
    """A committed (or freshly computed) epoch. ``allocations`` rows are
    ``(account, words, usage, amount, cumulative)`` sorted by account, for every account in the
    cumulative tree (``amount`` 0 for accounts paid only in earlier epochs)."""

    datanet: str
    epoch: int
    chain_id: int
    pool: int
    root: str
    previous_root: str | None
    inputs: Mapping[str, Any]
    rule: Mapping[str, Any]
    allocations: tuple[tuple[str, int, Fraction, int, int], ...]

    @property
    def datanet_key(self) -> str:
        """``0x`` hex of keccak256(datanet id)."""
        return "0x" + datanet_key(self.datanet).hex()

    def cumulative(self) -> dict[str, int]:
        """Account -> cumulative amount after this epoch."""
        return {a[0]: a[4] for a in self.allocations}

    def to_json(self) -> dict[str, Any]:
        """The settlement record (integers as decimal strings, usage as ``num/den``)."""
        return {
            "format": RECORD_FORMAT, "datanet": self.datanet, "datanet_key": self.datanet_key,
            "epoch": self.epoch, "chain_id": self.chain_id, "pool": str(self.pool),
            "root": self.root, "previous_root": self.previous_root,
            "leaf_encoding": list(REWARD_LEAF_ENCODING), "tree": _tree_rel(self.epoch),
            "inputs": dict(self.inputs), "rule": dict(self.rule),
            "allocations": [
                {"account": a, "words": str(w), "usage": _frac(u), "amount": str(m),
                 "cumulative": str(c)} for a, w, u, m, c in self.allocations
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settlement:
        """Inverse of :meth:`to_json`."""
        if data.get("format") != RECORD_FORMAT:
            raise RewardsError(f"settlement format {data.get('format')!r} is not "
                               f"{RECORD_FORMAT!r}")
        return cls(
            datanet=data["datanet"], epoch=int(data["epoch"]), chain_id=int(data["chain_id"]),
            pool=int(data["pool"]), root=data["root"], previous_root=data["previous_root"],
            inputs=data["inputs"], rule=data["rule"],
            allocations=tuple(
                (r["account"], int(r["words"]), Fraction(r["usage"]), int(r["amount"]),
                 int(r["cumulative"])) for r in data["allocations"]),
        )

    def summary(self) -> dict[str, Any]:
        """``{"epoch", "pool", "root", "allocations": [{"account", "amount", "cumulative"}]}``
        with integers as decimal strings (the CLI's JSON)."""
        return {"epoch": self.epoch, "pool": str(self.pool), "root": self.root,
                "allocations": [{"account": a, "amount": str(m), "cumulative": str(c)}
                                for a, _w, _u, m, c in self.allocations]}


def _frac(f: Fraction) -> str:
    return f"{f.numerator}/{f.denominator}"


def reward_leaf(chain_id: int, datanet_id: str, account: str, cumulative: int) -> list[str]:
    """Leaf value of one account, as in the dump (decimal strings, lowercase hex)."""
    return [str(chain_id), "0x" + datanet_key(datanet_id).hex(), account.lower(),
            str(cumulative)]


def reward_tree(chain_id: int, datanet_id: str, cumulative: Sequence[tuple[str, int]]
                ) -> StandardMerkleTree:
    """Cumulative tree of ``(account, cumulativeAmount)`` pairs; leaves are abi-encoded as
    one (n, 128) byte matrix and hashed in bulk."""
    n = len(cumulative)
    if n == 0:
        raise RewardsError("nothing to settle: no account has a reward")
    key = datanet_key(datanet_id)
    words = np.zeros((n, 128), dtype=np.uint8)
    words[:, 0:32] = np.frombuffer(chain_id.to_bytes(32, "big"), dtype=np.uint8)
    words[:, 32:64] = np.frombuffer(key, dtype=np.uint8)
    try:
        addr = bytes.fromhex("".join(a[2:] for a, _ in cumulative))
    except ValueError:
        raise RewardsError("an account is not a 0x hex address") from None
    if len(addr) != 20 * n:
        raise RewardsError("an account is not a 20-byte address")
    words[:, 76:96] = np.frombuffer(addr, dtype=np.uint8).reshape(n, 20)
    if any(not 0 <= c <= _MAX_UINT256 for _, c in cumulative):
        raise RewardsError("a cumulative amount does not fit in uint256")
    words[:, 96:128] = np.frombuffer(
        b"".join(c.to_bytes(32, "big") for _, c in cumulative), dtype=np.uint8
    ).reshape(n, 32)
    key_hex = "0x" + key.hex()
    cid = str(chain_id)
    values = [[cid, key_hex, a, str(c)] for a, c in cumulative]
    return StandardMerkleTree.of_encoded(words, values, REWARD_LEAF_ENCODING)


# --- reading ---------------------------------------------------------------------------------


def load_settlement(store: DatanetStore, epoch: int) -> Settlement | None:
    """The committed settlement of ``epoch``, or None."""
    path = store.path(_record_rel(epoch))
    if not path.exists():
        return None
    return Settlement.from_json(json.loads(path.read_text(encoding="utf-8")))


def settled(store: DatanetStore, epoch: int) -> bool:
    """Whether ``epoch`` is committed (its settlement record exists), without reading it."""
    return store.path(_record_rel(epoch)).exists()


def settlements(store: DatanetStore) -> list[int]:
    """Numbers of the committed epochs, ascending (1..n without gaps)."""
    d = store.path("rewards")
    found = sorted(int(p.name.split(".")[0]) for p in d.glob("*.settlement.json")) \
        if d.exists() else []
    return found


def load_reward_tree(store: DatanetStore, epoch: int) -> StandardMerkleTree:
    """The committed tree of ``epoch`` (checked against the record's root)."""
    rec = load_settlement(store, epoch)
    if rec is None:
        raise RewardsError(f"epoch {epoch} is not computed; run `datanet rewards compute "
                           f"--epoch {epoch}`")
    text = store.path(_tree_rel(epoch)).read_text(encoding="utf-8")
    tree = StandardMerkleTree.loads(text, validate=False)
    if tree.root != rec.root:
        raise RewardsError(f"{_tree_rel(epoch)} has root {tree.root}, the settlement "
                           f"record has {rec.root}")
    return tree


def read_attributions_file(path: str | Path) -> tuple[list[dict[str, Any]], str]:
    """Receipts from a JSON-lines file (``datanet attribute --format json``) and the
    file's sha256."""
    raw = Path(path).read_bytes()
    out = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RewardsError(f"{path}:{n}: not JSON ({exc.msg})") from None
    return out, hashlib.sha256(raw).hexdigest()


def store_receipts(store: DatanetStore, after_seq: int | None, up_to_seq: int | None
                   ) -> list[dict[str, Any]] | None:
    """Committed attribution receipts in ``(after_seq, up_to_seq]``, or None when the
    attribution module is not installed.

    INTEGRATION POINT (issue 15): the one place rewards reads committed receipts.
    """
    try:
        from datanet.attribution.receipts import load_receipts  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:  # only the module itself missing means "none"
        if exc.name and exc.name.startswith("datanet.attribution"):
            return None
        raise
    return list(load_receipts(store, after_seq=after_seq, up_to_seq=up_to_seq))


def _usage_digest(usage: Mapping[str, Fraction]) -> str:
    canon = json.dumps(sorted((a, _frac(w)) for a, w in usage.items()),
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


# --- computing -------------------------------------------------------------------------------


def compute_epoch(store: DatanetStore, epoch: int, pool: int, *,
                  attributions: Iterable[Mapping[str, Any]] | None = None,
                  attributions_source: str | None = None) -> tuple[Settlement, bool]:
    """Compute epoch ``epoch`` and commit it; returns (settlement, created).

    ``attributions``: receipts given explicitly (``--attributions FILE``); else committed
    receipts through :func:`store_receipts`. Recomputing a committed epoch with the same
    inputs returns it with ``created=False``; different inputs raise :class:`RewardsError`.
    """
    if epoch < 1:
        raise RewardsError(f"epoch {epoch} must be >= 1")
    if not isinstance(pool, int) or not 0 <= pool <= _MAX_UINT256:
        raise RewardsError(f"pool {pool!r} must be an integer in [0, 2^256-1] (smallest units)")
    existing = load_settlement(store, epoch)
    prev = load_settlement(store, epoch - 1) if epoch > 1 else None
    if epoch > 1 and prev is None:
        raise RewardsError(f"epoch {epoch - 1} is not computed; epochs are settled in order")
    manifests = store.manifests()
    from_seq = int(prev.inputs["batches"]["to_seq"]) if prev else 0
    if existing is not None:
        to_seq = int(existing.inputs["batches"]["to_seq"])
    else:
        later = settlements(store)
        if later and later[-1] > epoch:  # pragma: no cover - guarded by the prev check
            raise RewardsError(f"epoch {later[-1]} exists after epoch {epoch}")
        to_seq = manifests[-1].seq if manifests else 0
    batches = [m for m in manifests if from_seq < m.seq <= to_seq]
    if len(batches) != to_seq - from_seq:
        raise RewardsError(f"batches {from_seq + 1}..{to_seq} of epoch {epoch} are not all "
                           "committed (the store has fewer)")
    words = data_words(store.abs(p) for m in batches for p in m.paths("accepted"))

    if attributions is not None:
        receipts = list(attributions)
        usage_source: dict[str, Any] = {"source": attributions_source or "explicit"}
    else:
        after = prev.inputs["usage"].get("receipt_seq_to") if prev else None
        up_to = existing.inputs["usage"].get("receipt_seq_to") if existing else None
        loaded = store_receipts(store, after, up_to)
        receipts = loaded or []
        seqs = [int(r["receipt_seq"]) for r in receipts if "receipt_seq" in r]
        usage_source = {"source": "store" if loaded is not None else "none",
                        "receipt_seq_to": max(seqs) if seqs else (after or 0)}
    usage = usage_weights(receipts)
    cfg = rewards_config(store.spec)
    dw, uw = cfg.weights
    dkey = datanet_key(store.spec.id)
    allocs = allocate(pool, words, usage, (dw, uw), datanet_key=dkey, epoch=epoch)
    chain_id = leaf_chain_id(store.spec)
    settlement, tree = _settle(store.spec.id, epoch, chain_id, pool, prev, allocs, {
        "batches": {"from_seq": from_seq, "to_seq": to_seq,
                    "batch_ids": [m.batch_id for m in batches]},
        "data": {"total_words": str(sum(words.values())), "accounts": len(words)},
        "usage": {**usage_source, "receipts": len(receipts),
                  "total": _frac(sum(usage.values(), Fraction(0))),
                  "accounts": len(usage), "sha256": _usage_digest(usage)},
    }, {"data_weight": _frac(dw), "usage_weight": _frac(uw), "word": WORD_RE,
        "split": "largest remainder", "tie_break": _TIE_BREAK})
    if existing is not None:
        _check_same(existing, settlement)
        if not store.path(index_rel(epoch)).exists():  # settled before the index existed
            write_atomic(store.abs(index_rel(epoch)), index_pieces(existing, tree))
        return existing, False
    with store.lock():
        if load_settlement(store, epoch) is not None:
            raced = load_settlement(store, epoch)
            _check_same(raced, settlement)
            return raced, False
        write_atomic(store.abs(_tree_rel(epoch)), tree.dump_chunks())
        write_atomic(store.abs(index_rel(epoch)), index_pieces(settlement, tree))
        if not create_exclusive(store.abs(_record_rel(epoch)),
                                json.dumps(settlement.to_json(), indent=1)):
            raise RewardsError(f"{_record_rel(epoch)} appeared while committing; re-run")
    return settlement, True


def settlement_tree(settlement: Settlement) -> StandardMerkleTree:
    """The cumulative tree of a settlement (rebuilt from its allocations)."""
    return reward_tree(settlement.chain_id, settlement.datanet,
                       [(a[0], a[4]) for a in settlement.allocations])


def _settle(datanet: str, epoch: int, chain_id: int, pool: int, prev: Settlement | None,
            allocs: list[Allocation], inputs: dict[str, Any], rule: dict[str, Any]
            ) -> tuple[Settlement, StandardMerkleTree]:
    cumulative = prev.cumulative() if prev else {}
    if prev is not None and prev.chain_id != chain_id:
        raise RewardsError(f"epoch {prev.epoch} is bound to chain {prev.chain_id}; the spec "
                           f"now gives chain {chain_id}: cumulative trees cannot switch chain")
    this = {a.account: a for a in allocs}
    for a in allocs:
        cumulative[a.account] = cumulative.get(a.account, 0) + a.amount
    rows = []
    for acc in sorted(cumulative):
        a = this.get(acc)
        rows.append((acc, a.words if a else 0, a.usage if a else Fraction(0),
                     a.amount if a else 0, cumulative[acc]))
    rows = [r for r in rows if r[4] > 0] or rows
    tree = reward_tree(chain_id, datanet, [(r[0], r[4]) for r in rows])
    return Settlement(datanet=datanet, epoch=epoch, chain_id=chain_id, pool=pool,
                      root=tree.root, previous_root=prev.root if prev else None,
                      inputs=inputs, rule=rule, allocations=tuple(rows)), tree


def _check_same(existing: Settlement, new: Settlement) -> None:
    a, b = existing.to_json(), new.to_json()
    for key in ("pool", "chain_id", "rule", "inputs", "root", "allocations"):
        if a[key] != b[key]:
            shown = (f"{a[key]!r} vs {b[key]!r}" if key != "allocations"
                     else "the per-account amounts differ")
            raise RewardsError(
                f"epoch {existing.epoch} is already settled (root {existing.root}) and is "
                f"immutable; recomputing it gives a different {key}: {shown}")
