"""The ``[rewards]`` table of a datanet spec.

    [rewards]
    data_weight = 1        # weight of the data share (accepted normalised words)
    usage_weight = 1       # weight of the usage share (attribution weights)
    chain_id = 11155111    # chain the leaves are bound to (default: see below)
    contract = "0x..."     # deployed DatanetRewards on an rpc chain, or:
    deploy = true          # deploy one on first publish (rpc chains), paying out
    token = "0x..."        # this ERC-20 (with a contract: informational, its token() is used)

Weights are read exactly: a TOML number is converted with ``Fraction(str(value))`` (0.7 is
7/10, never the binary float). The chain is the one of ``[anchoring]``: leaves bind its chain
id, which must be known without a node so anyone can recompute the root from the datanet
alone (``rewards.chain_id``, else ``anchoring.chain_id``, else the embedded chain's id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from datanet.schemas.config import check, check_range, config_from_mapping

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "RewardsConfig", "rewards_config", "leaf_chain_id", "validate_spec_section",
    "EMBEDDED_CHAIN_ID",
]

#: Chain id of eth-tester's py-evm chain (the embedded chain of ``[anchoring] chain =
#: "embedded"``); checked against the live chain by the tests.
EMBEDDED_CHAIN_ID = 131277322940537
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class RewardsConfig:
    """How an epoch's pool is split and where it is paid."""

    data_weight: int | float = 1
    usage_weight: int | float = 1
    chain_id: int | None = None
    contract: str | None = None
    token: str | None = None
    #: Deploy DatanetRewards (paying ``token``) on first publish when ``contract`` is unset;
    #: its address is kept in ``rewards/deployment.json`` per chain id (like anchoring's).
    deploy: bool = False

    def __post_init__(self) -> None:
        for key in ("data_weight", "usage_weight"):
            check_range(f"rewards.{key}", getattr(self, key), 0, 10**6)
        check(self.data_weight + self.usage_weight > 0, "rewards.data_weight",
              self.data_weight, "and rewards.usage_weight must not both be 0")
        if self.chain_id is not None:
            check_range("rewards.chain_id", self.chain_id, 1)
        for key in ("contract", "token"):
            value = getattr(self, key)
            if value is not None:
                check(bool(_ADDRESS_RE.match(value)), f"rewards.{key}", value,
                      "must be a 0x-prefixed 20-byte hex address")
        if self.deploy:
            check(self.token is not None, "rewards.deploy", self.deploy,
                  "needs rewards.token (the ERC-20 address the contract pays out)")
            check(self.contract is None, "rewards.deploy", self.deploy,
                  "and rewards.contract are exclusive: give the deployed address or deploy")

    @property
    def weights(self) -> tuple[Fraction, Fraction]:
        """(data weight, usage weight) as exact rationals."""
        return Fraction(str(self.data_weight)), Fraction(str(self.usage_weight))


def rewards_config(spec: DatanetSpec) -> RewardsConfig:
    """The spec's rewards config (defaults when the table is absent)."""
    return config_from_mapping(RewardsConfig, getattr(spec, "rewards", None) or {},
                               prefix="rewards")


def leaf_chain_id(spec: DatanetSpec) -> int:
    """Chain id bound into the leaves: ``rewards.chain_id``, ``anchoring.chain_id``, or the
    embedded chain's id; an rpc chain without a configured id is an error (the root must be
    computable offline)."""
    from datanet.anchoring.config import anchoring_config
    from datanet.errors import SpecError

    cfg = rewards_config(spec)
    if cfg.chain_id is not None:
        return cfg.chain_id
    anchoring = anchoring_config(spec)
    if anchoring.chain_id is not None:
        return anchoring.chain_id
    if anchoring.chain == "embedded":
        return EMBEDDED_CHAIN_ID
    raise SpecError("rewards.chain_id", None,
                    "is required when anchoring.chain = 'rpc' without anchoring.chain_id "
                    "(reward leaves bind the chain id)")


def validate_spec_section(spec: DatanetSpec) -> None:
    """Spec hook for ``[rewards]``."""
    rewards_config(spec)
