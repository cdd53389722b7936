"""The ``[attribution]`` table of a datanet spec.

::

    [attribution]
    min_span = 8          # shortest credited span, in normalised tokens
    ngram = 8             # n-gram length the index shards hash (min_span must be >= ngram)
    max_holders = 1000    # a span held by more records is boilerplate: credited to no one
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datanet.schemas.config import check, check_range, config_from_mapping

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = ["AttributionConfig", "attribution_config", "validate_spec_section"]


@dataclass(frozen=True)
class AttributionConfig:
    """Attribution knobs (defaults when the table is absent)."""

    #: 8 tokens: OLMoTrace's minimum span length is of the same order (it keeps spans that are
    #: long and rare); shorter spans match common phrases ("one of the most important").
    min_span: int = 8
    #: Index granularity: every shard stores the hashes of its records' ``ngram``-grams, so
    #: queries can ask for any ``min_span >= ngram``; changing it needs a re-index.
    ngram: int = 8
    #: Beyond this many holders a span earns less than 1/max_holders per holder anyway; the
    #: cap bounds the work per query (a quote of a licence header in every record).
    max_holders: int = 1000

    def __post_init__(self) -> None:
        check_range("attribution.ngram", self.ngram, 2, 64)
        check_range("attribution.min_span", self.min_span, 2, 10_000)
        check(self.min_span >= self.ngram, "attribution.min_span", self.min_span,
              f"must be >= attribution.ngram ({self.ngram}): the index hashes "
              f"{self.ngram}-token n-grams")
        check_range("attribution.max_holders", self.max_holders, 1, 10_000_000)


def attribution_config(spec: DatanetSpec) -> AttributionConfig:
    """The spec's attribution config."""
    return config_from_mapping(AttributionConfig, getattr(spec, "attribution", None) or {},
                               prefix="attribution")


def validate_spec_section(spec: DatanetSpec) -> None:
    """Spec hook for ``[attribution]``."""
    attribution_config(spec)
