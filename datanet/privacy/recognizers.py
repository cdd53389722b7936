"""Presidio recognizers datanet adds or adjusts: offline e-mail validation, Ethereum
wallets, and the spec's own regex / deny-list recognizers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar

from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from datanet.privacy.policy import RecognizerSpec

__all__ = [
    "OfflineEmailRecognizer",
    "EthAddressRecognizer",
    "Mastercard2SeriesRecognizer",
    "RecognizerSpec",
    "custom_recognizer",
    "offline_tld_extractor",
    "TokenlessContextEnhancer",
]


@lru_cache(maxsize=1)
def offline_tld_extractor() -> Any:
    """A tldextract extractor on the suffix list bundled with the package: never fetches.

    ``tldextract.extract`` (what Presidio's EmailRecognizer calls) downloads the Public Suffix
    List on first use; ``suffix_list_urls=()`` + no cache dir keeps it on the snapshot.
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's EmailRecognizer with the same pattern and check, minus the network."""

    def validate_result(self, pattern_text: str) -> bool:
        return offline_tld_extractor()(pattern_text).fqdn != ""


class TokenlessContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's lemma context enhancer, minus its deep copy of every result when it
    cannot change a score.

    Without NLP tokens (``NoOpNlpEngine``) and without request context the enhancer's only
    surrounding "word" is ``""``; the supportive word it can find there is ``""``, which
    it treats as none. No score changes, so the results are returned as they are instead
    of as a deep copy (which costs more than the pattern matching of a window).
    """

    def enhance_using_context(self, text: str, raw_results: list[Any], nlp_artifacts: Any,
                              recognizers: list[Any], context: list[str] | None = None,
                              ) -> list[Any]:
        if nlp_artifacts is not None and not nlp_artifacts.tokens and not context:
            return raw_results
        return super().enhance_using_context(text, raw_results, nlp_artifacts, recognizers,
                                             context)


class EthAddressRecognizer(PatternRecognizer):
    """Ethereum (EVM) wallet addresses as ``CRYPTO``; mixed case must pass EIP-55."""

    PATTERNS: ClassVar[list[Pattern]] = [Pattern("Ethereum address", r"\b0x[0-9a-fA-F]{40}\b", 0.5)]

    def __init__(self, supported_language: str = "en"):
        super().__init__(
            supported_entity="CRYPTO",
            patterns=self.PATTERNS,
            context=["wallet", "address", "eth", "ethereum"],
            supported_language=supported_language,
            name="EthAddressRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        body = pattern_text[2:]
        if body.lower() == body or body.upper() == body:
            return None  # not checksummed: keep the pattern score
        from eth_utils import is_checksum_address

        return bool(is_checksum_address(pattern_text))


class Mastercard2SeriesRecognizer(PatternRecognizer):
    """Mastercard's 2-series BINs (2221-2720, issued since 2017) as ``CREDIT_CARD``, Luhn
    checked; Presidio's card pattern only knows cards starting 1, 3, 4, 5 or 6."""

    PATTERNS: ClassVar[list[Pattern]] = [Pattern(
        "Mastercard 2-series",
        r"\b(2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))[- ]?(\d{4})[- ]?(\d{4})[- ]?(\d{4})\b",
        0.3,
    )]

    def __init__(self, supported_language: str = "en"):
        super().__init__(
            supported_entity="CREDIT_CARD",
            patterns=self.PATTERNS,
            context=["credit", "card", "mastercard", "cc"],
            supported_language=supported_language,
            name="Mastercard2SeriesRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool:
        digits = [int(c) for c in pattern_text if c.isdigit()]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
        return total % 10 == 0


def custom_recognizer(entity: str, spec: RecognizerSpec) -> PatternRecognizer:
    """A Presidio PatternRecognizer for one ``[validators.pii.recognizers.<ENTITY>]``."""
    patterns = [Pattern(f"{entity} pattern {i}", p, spec.score)
                for i, p in enumerate(spec.patterns)]
    return PatternRecognizer(
        supported_entity=entity,
        name=f"spec:{entity}",
        patterns=patterns or None,
        deny_list=list(spec.deny_list) or None,
        deny_list_score=spec.score,
        context=list(spec.context) or None,
    )


def custom_recognizers(specs: Mapping[str, RecognizerSpec]) -> list[PatternRecognizer]:
    """All of the spec's recognizers, in name order."""
    return [custom_recognizer(name, specs[name]) for name in sorted(specs)]


__all__ += ["custom_recognizers"]
