"""PII validator: Presidio detection with a per-entity policy (``[validators.pii]``).

Votes ``reject`` with reason ``pii:<ENTITY>`` when a finding's entity is set to ``reject``
(private by default: e-mail, phone, card, IBAN, IP, SSN, wallet); otherwise ``accept``,
returning the record's text with ``redact`` / ``pseudonymise`` findings rewritten
(:class:`~datanet.validators.base.ValidationResult` ``text``), which is what the store keeps.
Vote ``details`` carry entity types and original offsets only, never a matched value.
Detection: :class:`datanet.privacy.detector.PiiDetector` (fast, evasion-hardened).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from datanet.privacy.detector import Finding, PiiDetector
from datanet.privacy.policy import (
    DEFAULT_ENTITY_POLICY,
    PiiConfig,
    Pseudonymiser,
    apply_actions,
    contains_pii_reason,
    mask_findings,
    pii_reason,
)
from datanet.validators.base import ValidationResult, Validator, make_votes

__all__ = ["PiiValidator", "PiiConfig", "contains_pii_reason"]


class PiiValidator(Validator):
    """Rejects, redacts or pseudonymises personal data per the spec's entity policy."""

    name = "pii"
    config_cls = PiiConfig
    summary = ("PII (Presidio patterns on the normalised text): reject, redact, pseudonymise or "
               "allow per entity.")
    reason_codes = tuple(sorted(pii_reason(e) for e, a in DEFAULT_ENTITY_POLICY.items()
                                if a == "reject"))

    def __init__(self, config: PiiConfig, spec: Any = None):
        self.config = config
        self.policy = config.policy
        self.detector = PiiDetector(
            config.detected,
            score_threshold=config.score_threshold,
            ner_model=config.ner_model,
            recognizers=dict(config.recognizers),
            phone_regions=config.phone_regions,
            phone_context=config.phone_context,
        )
        self._pseudonymiser: Pseudonymiser | None = None
        self._anonymizer: Any = None

    def setup(self) -> None:
        """One analyzer / anonymizer engine per worker; read the pseudonym key."""
        from presidio_anonymizer import AnonymizerEngine

        self.detector.setup()
        if "pseudonymise" in self.policy.values() and self._pseudonymiser is None:
            self._pseudonymiser = Pseudonymiser.from_env(self.config.pseudonym_key_env)
        if self._anonymizer is None:
            self._anonymizer = AnonymizerEngine()

    def _vote(self, findings: list[Finding]) -> tuple[str, str | None, float | None, Any]:
        if not findings:
            return "accept", None, None, None
        spans = [[f.start, f.end, f.entity, self.policy.get(f.entity, "allow")]
                 for f in findings]
        # The reason names the most certain rejected finding (then the first in the text): a
        # valid SSN (0.5) also parses as a phone number (0.4), and is reported as the SSN.
        rejected = sorted((-f.score, f.start, f.entity) for f in findings
                          if self.policy.get(f.entity) == "reject")
        details = {"entities": sorted({f.entity for f in findings}), "spans": spans}
        score = max(f.score for f in findings)
        if rejected:
            return "reject", pii_reason(rejected[0][2]), score, details
        return "accept", None, score, details

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        if self._anonymizer is None:
            raise self._not_set_up()
        texts = batch.column("text")
        per_record = self.detector.detect(texts)
        n = len(per_record)
        verdicts: list[str] = ["accept"] * n
        reasons: list[str | None] = [None] * n
        scores: list[float | None] = [None] * n
        details: list[Any] = [None] * n
        new_text: list[str] | None = None
        for i, findings in enumerate(per_record):
            if not findings:
                continue
            verdict, reasons[i], scores[i], details[i] = self._vote(findings)
            verdicts[i] = verdict
            acted = [f for f in findings if self.policy.get(f.entity, "allow") != "allow"]
            if acted:
                if new_text is None:
                    new_text = texts.to_pylist()
                if all(self.policy[f.entity] == "reject" for f in acted):
                    # rejected for PII, text dropped before storage: a plain mask will do
                    new_text[i] = mask_findings(new_text[i], acted)
                else:
                    new_text[i] = apply_actions(new_text[i], acted, self.policy,
                                                self._pseudonymiser, anonymizer=self._anonymizer)
        votes = make_votes(batch.column("contribution_id"), self.name, verdicts,
                           scores=scores, reasons=reasons, details=details)
        text = None if new_text is None else pa.array(new_text, pa.string())
        return ValidationResult(votes, text=text)

    def report(self) -> dict[str, Any]:
        """Run-level facts for the manifest: NER status (said once), policy, recognizers."""
        return {
            "ner": self.detector.ner_status(),
            "entities": dict(sorted(self.policy.items())),
            "score_threshold": self.config.score_threshold,
            "spec_recognizers": sorted(self.config.recognizers),
        }
