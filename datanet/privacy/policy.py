"""Per-entity PII policy: reject, redact, pseudonymise or allow; and applying it to text.

``[validators.pii]`` in a spec::

    [validators.pii]
    score_threshold = 0.3
    ner_model = "en_core_web_sm"            # optional; NER only if installed
    phone_regions = ["US", "GB"]            # optional; default: Presidio's 8 regions
    pseudonym_key_env = "DATANET_PII_KEY"   # HMAC key for pseudonymise, from the env
    [validators.pii.entities]                # merged over DEFAULT_ENTITY_POLICY
    PHONE_NUMBER = "pseudonymise"
    PERSON = "redact"
    [validators.pii.recognizers.EMPLOYEE_ID]
    patterns = ["EMP-[0-9]{6}"]
    context = ["employee"]

Redaction uses presidio-anonymizer's ``replace`` operator (``<ENTITY>``); pseudonyms are
``<ENTITY:hex16>``, the first 64 bits of HMAC-SHA256(key, entity + canonical value), so the
same value gets the same token in every batch while the key stays secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datanet.errors import SpecError, ValidatorError
from datanet.privacy.detector import Finding
from datanet.privacy.evasion import detection_view
from datanet.privacy.reasons import (
    PII_REASON_PREFIX,
    contains_pii_reason,
    drop_pii_text,
    pii_reason,
)
from datanet.privacy.recognizers import RecognizerSpec
from datanet.schemas.config import check, check_choice, check_range

__all__ = [
    "ACTIONS",
    "DEFAULT_ENTITY_POLICY",
    "PiiConfig",
    "PII_REASON_PREFIX",
    "contains_pii_reason",
    "drop_pii_text",
    "pii_reason",
    "Pseudonymiser",
    "apply_actions",
    "mask_findings",
]

ACTIONS = ("reject", "redact", "pseudonymise", "allow")

#: Private by default (issue 4): contact details, payment and national identifiers, network
#: addresses and wallets are rejected; URLs are allowed.
DEFAULT_ENTITY_POLICY: Mapping[str, str] = types.MappingProxyType({
    "EMAIL_ADDRESS": "reject",
    "PHONE_NUMBER": "reject",
    "CREDIT_CARD": "reject",
    "IBAN_CODE": "reject",
    "IP_ADDRESS": "reject",
    "US_SSN": "reject",
    "CRYPTO": "reject",
    "URL": "allow",
})

_ENTITY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

#: Entities the English pattern recognizers detect without a NER model: Presidio 2.2's
#: predefined recognizers for "en" (tests/privacy/test_entity_names.py compares this with
#: Presidio's registry) plus ours (CRYPTO / CREDIT_CARD additions reuse those names).
PATTERN_ENTITIES = frozenset({
    "CREDIT_CARD", "CRYPTO", "DATE_TIME", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS",
    "MAC_ADDRESS", "MEDICAL_LICENSE", "PHONE_NUMBER", "UK_NHS", "URL", "US_BANK_NUMBER",
    "US_DRIVER_LICENSE", "US_ITIN", "US_PASSPORT", "US_SSN", "UUID",
})
#: Entities Presidio's SpacyRecognizer maps spaCy NER labels to (need ``ner_model``).
NER_ENTITIES = frozenset({"DATE_TIME", "NRP", "LOCATION", "PERSON", "ORGANIZATION"})


def _check_entity_known(entity: str, config: PiiConfig) -> None:
    """An entity of the policy must be one something detects: a typo (``PHONE``) would
    otherwise pass the spec and fail inside the pipeline, or silently detect nothing."""
    if entity in PATTERN_ENTITIES or entity in config.recognizers:
        return
    if entity in NER_ENTITIES:
        check(config.ner_model is not None, f"entities.{entity}", entity,
              "is found by NER only: set [validators.pii].ner_model to an installed spaCy "
              "model, or add a [validators.pii.recognizers." + entity + "] table")
        return
    import difflib

    known = sorted(PATTERN_ENTITIES | NER_ENTITIES | set(config.recognizers))
    close = difflib.get_close_matches(entity, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise SpecError(f"entities.{entity}", entity,
                    f"is not an entity any recognizer detects; {hint}known: "
                    f"{', '.join(known)} (or add a [validators.pii.recognizers.{entity}] table)")
_NUMERIC_ENTITIES = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                               "US_ITIN", "US_BANK_NUMBER", "UK_NHS"})


@dataclass(frozen=True)
class PiiConfig:
    """``[validators.pii]``: policy per entity type, detection settings, pseudonym key."""

    entities: Mapping[str, str] = field(default_factory=dict)
    # Drops Presidio's "very weak" patterns (SSN 0.05, bare "::" 0.1), which Presidio scores
    # that low because they need context; keeps every validated (1.0) or medium (>=0.3)
    # pattern of the default entities (card 0.3 before Luhn, phone 0.4, SSN 0.5, IP 0.6).
    score_threshold: float = 0.3
    ner_model: str | None = None
    recognizers: Mapping[str, RecognizerSpec] = field(default_factory=dict)
    pseudonym_key_env: str = "DATANET_PII_KEY"
    # Regions python-phonenumbers tries for numbers without a country code; empty = Presidio's
    # default ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"). Phone matching costs one
    # parse per digit run per region, so fewer regions is proportionally faster.
    phone_regions: tuple[str, ...] = ()
    # Privacy first: a number-shaped string right after a phone word ("call me on …") is a
    # PHONE_NUMBER even when python-phonenumbers rejects it (unassigned area code or range).
    # Measured on examples/cooking-qa: 0 extra findings (README, "PII").
    phone_context: bool = True

    def __post_init__(self) -> None:
        check_range("score_threshold", self.score_threshold, 0.0, 1.0)
        for entity, action in self.entities.items():
            check(bool(_ENTITY_RE.match(entity)), f"entities.{entity}", entity,
                  "entity types are Presidio names in UPPER_SNAKE_CASE, e.g. EMAIL_ADDRESS")
            check_choice(f"entities.{entity}", action, ACTIONS)
            _check_entity_known(entity, self)
        for entity in self.recognizers:
            check(bool(_ENTITY_RE.match(entity)), f"recognizers.{entity}", entity,
                  "recognizer tables are named by their entity type in UPPER_SNAKE_CASE")
        check(bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", self.pseudonym_key_env)),
              "pseudonym_key_env", self.pseudonym_key_env, "must be an environment variable name")
        import phonenumbers

        for i, region in enumerate(self.phone_regions):
            check(region in phonenumbers.SUPPORTED_REGIONS, f"phone_regions[{i}]", region,
                  "must be an ISO 3166 region code python-phonenumbers knows, e.g. 'US'")
        if self.ner_model is not None:
            check(bool(self.ner_model), "ner_model", self.ner_model,
                  "must name an installed spaCy model package (or be omitted)")

    @property
    def policy(self) -> dict[str, str]:
        """Effective action per entity: defaults, the spec's recognizers (reject), overrides."""
        out = dict(DEFAULT_ENTITY_POLICY)
        out.update({e: "reject" for e in self.recognizers})
        out.update(self.entities)
        return out

    @property
    def detected(self) -> frozenset[str]:
        """Entities worth detecting: every one whose action is not ``allow``."""
        return frozenset(e for e, a in self.policy.items() if a != "allow")


class Pseudonymiser:
    """Keyed, stable pseudonyms: ``<ENTITY:hex16>`` from HMAC-SHA256."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValidatorError("the pseudonymisation key must be at least 16 bytes long")
        self._key = key

    @classmethod
    def from_env(cls, name: str) -> Pseudonymiser:
        """Read the key from environment variable ``name`` (never from the spec)."""
        value = os.environ.get(name)
        if not value:
            raise ValidatorError(
                f"validators.pii pseudonymises an entity but ${name} is not set; export a "
                f"secret of >= 16 characters, e.g. {name}=$(openssl rand -hex 32)"
            )
        return cls(value.encode("utf-8"))

    @staticmethod
    def canonical(entity: str, value: str) -> str:
        """The value as detected (evasions undone), case- and separator-insensitive."""
        text = detection_view(value).text.casefold()
        if entity in _NUMERIC_ENTITIES:
            text = re.sub(r"[^0-9a-z+]", "", text)
        return text

    def token(self, entity: str, value: str) -> str:
        """The pseudonym of one value."""
        msg = f"{entity}\x00{self.canonical(entity, value)}".encode()
        digest = hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:16]
        return f"<{entity}:{digest}>"


def apply_actions(
    text: str,
    findings: Sequence[Finding],
    actions: Mapping[str, str],
    pseudonymiser: Pseudonymiser | None,
    *,
    anonymizer: Any = None,
) -> str:
    """Rewrite ``text`` with presidio-anonymizer: ``redact`` -> ``<ENTITY>``,
    ``pseudonymise`` -> keyed token; ``reject`` findings are redacted too (belt and braces:
    a rejected row's text never carries the value), ``allow`` is left as is."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    todo = [f for f in findings if actions.get(f.entity, "allow") != "allow"]
    if not todo:
        return text
    operators: dict[str, Any] = {}
    for entity in {f.entity for f in todo}:
        if actions[entity] == "pseudonymise":
            if pseudonymiser is None:
                raise ValidatorError("pseudonymise needs a key (Pseudonymiser)")
            operators[entity] = OperatorConfig(
                "custom", {"lambda": lambda v, _e=entity: pseudonymiser.token(_e, v)})
        else:
            operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
    engine = anonymizer or AnonymizerEngine()
    results = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in todo]
    return engine.anonymize(text=text, analyzer_results=results, operators=operators).text


def mask_findings(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with every finding's span (overlaps merged) replaced by ``<ENTITY>``.

    The cheap redaction of a record whose findings are all ``reject``: its text is dropped
    before it is stored (:func:`drop_pii_text`) but must not carry the values on the way
    (scratch spills); presidio-anonymizer is kept for ``redact`` / ``pseudonymise``."""
    spans: list[list[Any]] = []
    for f in sorted(findings):
        if spans and f.start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], f.end)
        else:
            spans.append([f.start, f.end, f.entity])
    pieces = []
    pos = 0
    for start, end, entity in spans:
        pieces.append(text[pos:start])
        pieces.append(f"<{entity}>")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)
