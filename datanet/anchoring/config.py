"""The ``[anchoring]`` table of a datanet spec.

With no table, a datanet anchors on the embedded chain (an in-process py-evm chain whose
state lives in the datanet directory). For a real chain, give an RPC URL (directly or through
an environment variable, since URLs often embed API keys) and a signing key from an
environment variable or an encrypted keystore; keys are never written to the spec.

    [anchoring]
    chain = "rpc"
    rpc_url_env = "DATANET_RPC_URL"
    chain_id = 11155111
    contract = "0x..."
    key_env = "DATANET_ANCHOR_KEY"
    confirmations = 12
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from datanet.schemas.config import check, check_choice, check_range, config_from_mapping

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = ["AnchoringConfig", "anchoring_config", "validate_spec_section"]

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class AnchoringConfig:
    """Where and how batch roots are anchored."""

    enabled: bool = True
    chain: Literal["embedded", "rpc"] = "embedded"
    rpc_url: str | None = None
    rpc_url_env: str = "DATANET_RPC_URL"
    #: Expected chain id; the client refuses an RPC that reports another one.
    chain_id: int | None = None
    #: Deployed DatanetAnchor address; None on "rpc" means deploy one (needs `deploy = true`).
    contract: str | None = None
    deploy: bool = False
    key_env: str = "DATANET_ANCHOR_KEY"
    keystore: str | None = None
    keystore_password_env: str = "DATANET_KEYSTORE_PASSWORD"
    #: Blocks on top of the anchor block before FINAL. None: 1 on the embedded chain (it
    #: cannot reorg), 12 on an RPC chain (the customary "safe" depth of Ethereum exchanges
    #: before the merge; use 64+ to wait for PoS finality, two epochs of 32 slots).
    confirmations: int | None = None
    #: Seconds between status polls of an RPC chain.
    poll_interval: float = 2.0
    #: Seconds one `datanet anchor` waits for FINAL before returning (the outbox resumes).
    timeout: float = 600.0
    #: Seconds a sent transaction may stay unmined before it is replaced with higher fees.
    stuck_after: float = 180.0
    #: Fee multiplier of a replacement; geth's txpool needs >= 1.10 (PriceBump = 10%).
    fee_bump: float = 1.25
    #: Cap on maxFeePerGas in gwei (None: no cap).
    max_fee_gwei: float | None = None
    #: RPC request timeout in seconds.
    rpc_timeout: float = 30.0

    def __post_init__(self) -> None:
        check_choice("anchoring.chain", self.chain, ("embedded", "rpc"))
        if self.contract is not None:
            check(bool(_ADDRESS_RE.match(self.contract)), "anchoring.contract", self.contract,
                  "must be a 0x-prefixed 20-byte hex address")
        for key in ("rpc_url_env", "key_env", "keystore_password_env"):
            value = getattr(self, key)
            check(bool(_ENV_RE.match(value)), f"anchoring.{key}", value,
                  "must be an environment variable name")
        if self.rpc_url is not None:
            check(self.rpc_url.startswith(("http://", "https://", "ws://", "wss://")),
                  "anchoring.rpc_url", self.rpc_url, "must be an http(s):// or ws(s):// URL")
        if self.chain_id is not None:
            check_range("anchoring.chain_id", self.chain_id, 1)
        if self.confirmations is not None:
            check_range("anchoring.confirmations", self.confirmations, 1, 10_000)
        check_range("anchoring.poll_interval", self.poll_interval, 0.0, 3600.0)
        check_range("anchoring.timeout", self.timeout, 0.0)
        check_range("anchoring.stuck_after", self.stuck_after, 0.0)
        check_range("anchoring.fee_bump", self.fee_bump, 1.1, 10.0)
        if self.max_fee_gwei is not None:
            check_range("anchoring.max_fee_gwei", self.max_fee_gwei, 0.0)
        check_range("anchoring.rpc_timeout", self.rpc_timeout, 0.1, 3600.0)
        if self.chain == "rpc":
            check(self.contract is not None or self.deploy, "anchoring.contract", self.contract,
                  "is required on an rpc chain (or set anchoring.deploy = true to deploy one)")

    @property
    def required_confirmations(self) -> int:
        """Confirmation depth after defaults."""
        if self.confirmations is not None:
            return self.confirmations
        return 1 if self.chain == "embedded" else 12


def anchoring_config(spec: DatanetSpec) -> AnchoringConfig:
    """The spec's anchoring config (defaults when the table is absent)."""
    return config_from_mapping(AnchoringConfig, getattr(spec, "anchoring", None) or {},
                               prefix="anchoring")


def validate_spec_section(spec: DatanetSpec) -> None:
    """Spec hook for ``[anchoring]``."""
    anchoring_config(spec)
