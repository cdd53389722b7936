"""Vote aggregation policy: turn every record's votes into one outcome.

Per record, over the votes of every automatic and external validator:

1. a ``reject`` from a validator on the ``veto`` list rejects, whatever the weights;
2. abstentions are excluded; ``cast`` = weight of accept + reject votes; when ``cast`` is
   below ``quorum`` the record ``needs_review`` (reason ``quorum_not_met``);
3. ``share`` = accept weight / cast (1.0 when nothing was cast: nobody objected); ``share >=
   accept_threshold`` accepts, ``review_threshold <= share < accept_threshold`` sends the
   record to ``needs_review`` (reason ``below_accept_threshold``), lower shares reject.
   A tie that lands exactly on a threshold takes the better outcome.

The defaults (quorum 0, both thresholds 1.0) are "any reject → rejected": a datanet with no
``[policy]`` table rejects a record as soon as one validator does. Weights come from
``weights`` (validator name → weight), then the external validator registry (address → stake
weight, from ``registry`` and ``registry_file``), then ``default_weight``.

:func:`decide` is vectorised over a whole table of votes with Arrow group-by.
"""

from __future__ import annotations

import json
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.errors import SpecError
from datanet.privacy.reasons import drop_pii_text
from datanet.schemas.config import check, check_choice, check_range, config_from_mapping
from datanet.schemas.contribution import DECISION_SCHEMA, TALLY_TYPE

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "PolicyConfig",
    "SIGNATURE_MODES",
    "POLICY_REASONS",
    "decide",
    "DECISION_COLUMNS",
    "route",
    "validate_spec_section",
    "check_veto_names",
    "check_weight_names",
    "policy_config",
    "load_registry",
]

SIGNATURE_MODES = ("required", "optional", "off")

#: Decision columns a rejected or quarantined row carries into storage.
DECISION_COLUMNS = ("reasons", "accept_weight", "reject_weight", "tally")

#: Reason codes the policy itself adds to a decision's reasons.
POLICY_REASONS = ("quorum_not_met", "below_accept_threshold")

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

#: Relative tolerance of threshold comparisons, so 0.1 + 0.2 of 0.3 meets a 1.0 threshold.
_EPS = 1e-9


def _empty() -> Mapping[str, Any]:
    return types.MappingProxyType({})


@dataclass(frozen=True)
class PolicyConfig:
    """``[policy]``: weights, quorum, thresholds, vetoes, signatures and the validator registry.

    Defaults reproduce "any reject → rejected" (a unanimity rule, as the foundation policy).
    The default ``veto`` names the validators whose reject no majority may overrule:
    integrity (``signature``), uniqueness (``exact_duplicate``), the spec's own limits
    (``limits``) and privacy (``pii``).
    """

    weights: Mapping[str, float] = field(default_factory=_empty)
    default_weight: float = 1.0
    quorum: float = 0.0
    accept_threshold: float = 1.0
    review_threshold: float | None = None
    veto: tuple[str, ...] = ("signature", "exact_duplicate", "limits", "pii")
    signatures: Literal["required", "optional", "off"] = "optional"
    registry: Mapping[str, float] = field(default_factory=_empty)
    registry_file: str | None = None

    def __post_init__(self) -> None:
        for name, w in self.weights.items():
            check_range(f"policy.weights.{name}", w, 0.0)
        check_range("policy.default_weight", self.default_weight, 0.0)
        check_range("policy.quorum", self.quorum, 0.0)
        check_range("policy.accept_threshold", self.accept_threshold, 0.0, 1.0)
        if self.review_threshold is not None:
            check_range("policy.review_threshold", self.review_threshold, 0.0,
                        self.accept_threshold)
        check_choice("policy.signatures", self.signatures, SIGNATURE_MODES)
        for address, w in self.registry.items():
            check(bool(_ADDRESS_RE.match(address)), f"policy.registry.{address}", address,
                  "must be a 0x-prefixed 20-byte hex address")
            check_range(f"policy.registry.{address}", w, 0.0)
        # Registry addresses are compared lowercase.
        lowered = {a.lower(): float(w) for a, w in self.registry.items()}
        if lowered != dict(self.registry):
            object.__setattr__(self, "registry", types.MappingProxyType(lowered))

    @property
    def review_floor(self) -> float:
        """The lowest accept share that is still ``needs_review`` instead of rejected."""
        return self.accept_threshold if self.review_threshold is None else self.review_threshold

    def weight_of(self, validator: str) -> float:
        """Weight of one validator's vote (name for automatic ones, address for external)."""
        if validator in self.weights:
            return float(self.weights[validator])
        if validator.lower() in self.registry:
            return self.registry[validator.lower()]
        return self.default_weight


def load_registry(path: str | Path) -> dict[str, float]:
    """Read a registry file: a TOML or JSON table of ``"0x<address>" = stake weight``."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("policy.registry_file", str(path), "file does not exist") from None
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError("policy.registry_file", str(path),
                        f"must be a TOML or JSON table of address = weight ({exc})") from None
    check(isinstance(data, dict), "policy.registry_file", str(path),
          "must hold a table of address = weight")
    out: dict[str, float] = {}
    for address, w in data.items():
        check(bool(_ADDRESS_RE.match(address)), f"policy.registry_file[{address}]", address,
              "must be a 0x-prefixed 20-byte hex address")
        check(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0,
              f"policy.registry_file[{address}]", w, "must be a number >= 0")
        out[address.lower()] = float(w)
    return out


def policy_config(spec: DatanetSpec, *, require_registry: bool = True) -> PolicyConfig:
    """The spec's ``[policy]`` as a :class:`PolicyConfig`, with ``registry_file`` merged in.

    ``registry_file`` is resolved relative to the spec file; entries of ``registry`` in the
    spec override the file's. A missing file is an error unless ``require_registry`` is off.
    """
    config = config_from_mapping(PolicyConfig, spec.policy, prefix="policy")
    if config.registry_file is None:
        return config
    path = Path(config.registry_file)
    if not path.is_absolute() and getattr(spec, "source", None):
        path = Path(spec.source).parent / path
    if not require_registry and not path.exists():
        return config
    merged = {**load_registry(path), **config.registry}
    return replace(config, registry=types.MappingProxyType(merged))


def validate_spec_section(spec: DatanetSpec) -> None:
    """Spec hook: ``[policy]`` parses and its registry file, when present, is valid.

    A registry file that does not exist yet is accepted here (``datanet init`` validates the
    spec before the file is copied next to it) and reported when votes are counted.
    """
    config = policy_config(spec, require_registry=False)
    check_veto_names(config.veto)
    check_weight_names(config.weights)


def _check_validator_name(key: str, name: str, what: str) -> None:
    """``name`` is a registered validator (built-in or plugin) or an external 0x address."""
    import difflib

    from datanet.validators.registry import validator_names

    known = sorted(validator_names())
    if name in known or _ADDRESS_RE.match(name):
        return
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise SpecError(key, name, f"is not a validator; {hint}{what} names a validator "
                               f"({', '.join(known)}) or an external validator's 0x address")


def check_veto_names(veto: tuple[str, ...]) -> None:
    """Every ``veto`` entry names a validator (or an external validator's address): a typo
    such as ``"spamm"`` would otherwise silently disable the veto."""
    for i, name in enumerate(veto):
        _check_validator_name(f"policy.veto[{i}]", name, "a veto")


def check_weight_names(weights: Mapping[str, float]) -> None:
    """Every ``weights`` key names a validator or an address: a mistyped key would leave that
    validator at ``default_weight`` without a word."""
    for name in weights:
        _check_validator_name(f"policy.weights.{name}", name, "a weight")


def _weights(validators: pa.Array, config: PolicyConfig) -> np.ndarray:
    """Weight per vote: looked up once per distinct validator, then gathered."""
    distinct = pc.unique(validators)
    table = pa.array([config.weight_of(v) for v in distinct.to_pylist()], pa.float64())
    return table.take(pc.index_in(validators, value_set=distinct)).to_numpy()


def _reason_lists(
    n: int, index: np.ndarray, reasons: np.ndarray
) -> pa.ListArray:
    """Sorted distinct reasons per row ``0..n-1`` from aligned (row index, reason) pairs."""
    if len(index):
        pairs = pa.table({"i": pa.array(index, pa.int64()), "r": pa.array(reasons, pa.string())})
        pairs = pairs.group_by(["i", "r"], use_threads=False).aggregate([])
        pairs = pairs.sort_by([("i", "ascending"), ("r", "ascending")])
        rows = pairs.column("i").to_numpy()
        values = pairs.column("r").combine_chunks()
    else:
        rows = np.empty(0, np.int64)
        values = pa.array([], pa.string())
    counts = np.bincount(rows, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def decide(ids: pa.Array | pa.ChunkedArray, votes: pa.Table, config: PolicyConfig) -> pa.Table:
    """One decision row per id in ``ids`` (same order) from ``votes`` (VOTE_SCHEMA rows).

    Votes for ids not in ``ids`` are ignored. Reasons are every distinct reject reason
    (``<validator>:rejected`` when a reject carries none) plus the policy's own code, sorted.
    """
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    ids = ids.cast(pa.string())
    n = len(ids)
    votes = votes.combine_chunks()
    row = pc.index_in(votes.column("contribution_id"), value_set=ids)
    keep = pc.is_valid(row)
    votes = votes.filter(keep)
    row_np = row.filter(keep).to_numpy(zero_copy_only=False).astype(np.int64)

    verdict = votes.column("verdict")
    is_accept = pc.equal(verdict, "accept").to_numpy(zero_copy_only=False)
    is_reject = pc.equal(verdict, "reject").to_numpy(zero_copy_only=False)
    is_abstain = pc.equal(verdict, "abstain").to_numpy(zero_copy_only=False)
    weight = _weights(votes.column("validator"), config) if votes.num_rows else np.empty(0)
    veto_set = pa.array(sorted({*config.veto, *(v.lower() for v in config.veto)}), pa.string())
    is_veto = is_reject & pc.is_in(votes.column("validator"),
                                   value_set=veto_set).to_numpy(zero_copy_only=False)

    accept_w = np.bincount(row_np, weights=weight * is_accept, minlength=n)
    reject_w = np.bincount(row_np, weights=weight * is_reject, minlength=n)
    abstain_w = np.bincount(row_np, weights=weight * is_abstain, minlength=n)
    n_votes = np.bincount(row_np, minlength=n).astype(np.int32)
    vetoed = np.bincount(row_np, weights=is_veto.astype(np.float64), minlength=n) > 0
    cast = accept_w + reject_w
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(cast > 0, accept_w / np.where(cast > 0, cast, 1.0), 1.0)
    no_quorum = cast < config.quorum * (1 - _EPS)
    accept_ok = share >= config.accept_threshold - _EPS
    review_ok = share >= config.review_floor - _EPS

    outcome = np.where(
        vetoed, "rejected",
        np.where(no_quorum, "needs_review",
                 np.where(accept_ok, "accepted",
                          np.where(review_ok, "needs_review", "rejected"))))
    decided_by = np.where(vetoed, "veto", np.where(no_quorum, "quorum", "threshold"))
    policy_reason = np.where(
        ~vetoed & no_quorum, "quorum_not_met",
        np.where(~vetoed & ~no_quorum & ~accept_ok & review_ok, "below_accept_threshold", ""))

    reject_reason = pc.if_else(
        pc.is_null(votes.column("reason")),
        pc.binary_join_element_wise(votes.column("validator"), pa.scalar("rejected"), ":"),
        votes.column("reason"),
    ).to_numpy(zero_copy_only=False)
    extra = np.flatnonzero(policy_reason != "")
    reasons = _reason_lists(
        n,
        np.concatenate([row_np[is_reject], extra]),
        np.concatenate([reject_reason[is_reject], policy_reason[extra]]).astype(object),
    )
    tally = pa.StructArray.from_arrays(
        [
            pa.array(accept_w, pa.float64()),
            pa.array(reject_w, pa.float64()),
            pa.array(abstain_w, pa.float64()),
            pa.array(cast, pa.float64()),
            pa.array(share, pa.float64()),
            pa.array(n_votes, pa.int32()),
            pa.array(decided_by, pa.string()),
        ],
        fields=list(TALLY_TYPE),
    )
    return pa.Table.from_arrays(
        [
            ids,
            pa.array(outcome, pa.string()),
            reasons,
            pa.array(accept_w, pa.float64()),
            pa.array(reject_w, pa.float64()),
            tally,
        ],
        schema=DECISION_SCHEMA,
    )


def route(rows: pa.Table, decisions: pa.Table) -> dict[str, pa.Table]:
    """Split ``rows`` by ``decisions`` (:func:`decide` of the same rows, same order) into the
    tables a batch commits: ``accepted`` rows as they are; ``rejected`` and ``quarantine``
    rows with the :data:`DECISION_COLUMNS` appended, and a rejected row's text dropped when one
    of its reasons is PII (no PII reaches storage under reject / redact policies).

    The one place that turns decisions into committed rows, for pipeline runs and for
    external-vote reviews alike.
    """
    outcome = decisions.column("outcome")
    out: dict[str, pa.Table] = {}
    for kind, label in (("accepted", "accepted"), ("rejected", "rejected"),
                        ("quarantine", "needs_review")):
        mask = pc.equal(outcome, label)
        part = rows.filter(mask)
        if kind != "accepted":
            dec = decisions.filter(mask)
            if kind == "rejected":
                part = drop_pii_text(part, dec.column("reasons"))
            for col in DECISION_COLUMNS:
                part = part.append_column(col, dec.column(col))
        out[kind] = part
    return out
