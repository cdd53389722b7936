"""Proof of Attribution: trace a model output to the accepted records it reproduces.

Beam-free core over Arrow / numpy: :mod:`.tokens` (normalised tokens and n-gram hashes),
:mod:`.index` (one shard per committed batch), :mod:`.match` (maximal spans, IDF-weighted
credit), :mod:`.receipts` (committed, anchored receipts of recorded attributions).
"""

from datanet.attribution.config import AttributionConfig, attribution_config
from datanet.attribution.match import (
    Attribution,
    AttributionIndex,
    AttributionResult,
    Snapshot,
    attribute,
    output_hash,
)

__all__ = ["Attribution", "AttributionConfig", "AttributionIndex", "AttributionResult",
           "Snapshot", "attribute", "attribution_config", "output_hash"]
