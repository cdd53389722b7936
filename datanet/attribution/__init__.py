"""Proof of Attribution: trace a model output to the accepted records it reproduces.

Beam-free core over Arrow / numpy: :mod:`.tokens` (normalised tokens and n-gram hashes),
:mod:`.index` (one shard per committed batch), :mod:`.match` (maximal spans, IDF-weighted
credit), :mod:`.receipts` (committed, anchored receipts of recorded attributions).
"""

from __future__ import annotations

import importlib
from typing import Any

from datanet.attribution.config import AttributionConfig, attribution_config

#: Names served from :mod:`.match` on first use (PEP 562): every spec load imports
#: :mod:`.config` to check the ``[attribution]`` section, and must not pay for numba.
_FROM_MATCH = ("Attribution", "AttributionIndex", "AttributionResult", "Snapshot", "attribute",
               "output_hash")


def __getattr__(name: str) -> Any:
    if name in _FROM_MATCH:
        return getattr(importlib.import_module("datanet.attribution.match"), name)
    raise AttributeError(f"module 'datanet.attribution' has no attribute {name!r}")


__all__ = ["Attribution", "AttributionConfig", "AttributionIndex", "AttributionResult",
           "Snapshot", "attribute", "attribution_config", "output_hash"]
