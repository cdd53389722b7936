"""Heuristic quality rules from Gopher (quality + repetition), C4 and FineWeb.

Each rule has its own reason code and its published default, cited where it is defined;
where a web-scale default would reject normal short datanet records (single Q&A
paragraphs of 40-200 words) the default is relaxed and the comment says so. Every rule is
tunable in ``[validators.<name>]`` and can be switched off with ``disable = ["<reason>"]``.
All statistics are computed over the whole batch with pyarrow / numpy
(:class:`~datanet.validators.textstats.TextStats`).

Sources: Rae et al. 2021, *Scaling Language Models: Methods, Analysis & Insights from
Training Gopher*, appendix A (and datatrove's ``GopherQualityFilter`` /
``GopherRepetitionFilter``); Raffel et al. 2020, *T5*, section 2.2 (C4; datatrove
``C4QualityFilter``); Penedo et al. 2024, *The FineWeb Datasets* (datatrove
``FineWebQualityFilter``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import check, check_range
from datanet.validators.base import RuleValidator, first_reason
from datanet.validators.textstats import STOP_WORDS, TextStats, max_per_doc

__all__ = [
    "GopherQualityConfig",
    "GopherQualityValidator",
    "GopherRepetitionConfig",
    "GopherRepetitionValidator",
    "C4QualityConfig",
    "C4QualityValidator",
    "FineWebQualityConfig",
    "FineWebQualityValidator",
    "STOP_WORDS",
]

#: C4's policy phrases (lines containing them are dropped by C4).
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                  "use of cookies", "use cookies")
_BULLETS = r"^\s*[•‣◦▪●○\-*–]"


def _check_disable(disable: Iterable[str], known: tuple[str, ...]) -> None:
    for i, reason in enumerate(disable):
        check(reason in known, f"disable[{i}]", reason, f"must be one of {', '.join(known)}")


class _Rules(RuleValidator):
    """A set of rules over :class:`TextStats`; subclasses implement :meth:`rules`."""

    def __init__(self, config: Any, spec: Any = None):
        self.config = config

    def rules(self, s: TextStats) -> list[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        s = TextStats.of(batch)
        off = set(self.config.disable)
        return first_reason([(r, m) for r, m in self.rules(s) if r not in off], s.n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


# --------------------------------------------------------------------------- Gopher quality

GOPHER_QUALITY_REASONS = (
    "gopher_min_words", "gopher_max_words", "gopher_mean_word_length", "gopher_symbol_ratio",
    "gopher_bullet_lines", "gopher_ellipsis_lines", "gopher_alpha_words", "gopher_stop_words",
)


@dataclass(frozen=True)
class GopherQualityConfig:
    """``[validators.gopher_quality]``."""

    #: Gopher: 50 words, for web pages. A datanet record can be one short tip or Q&A
    #: paragraph (length proper is ``[limits]``'s job), so 5: below that it is a phrase.
    min_words: int = 5
    #: Gopher: 100,000 words.
    max_words: int = 100_000
    #: Gopher: mean word length between 3 and 10 characters.
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    #: Gopher: symbol ('#', '...', '…') to word ratio at most 0.1.
    max_symbol_word_ratio: float = 0.1
    #: Gopher: at most 90 % of lines start with a bullet.
    max_bullet_lines_ratio: float = 0.9
    #: Gopher: at most 30 % of lines end with an ellipsis.
    max_ellipsis_lines_ratio: float = 0.3
    #: Gopher: at least 80 % of words contain an alphabetic character.
    min_alpha_words_ratio: float = 0.8
    #: Gopher: at least two of the stop words the, be, to, of, and, that, have, with.
    #: Relaxed to 1: short natural answers ("... if that matters. Thanks in advance!") can
    #: hold a single one; text without any is still caught (non-English, keyword lists).
    min_stop_words: int = 1
    #: ... checked from this many words on: a one-sentence tip ("Whisk egg whites in a
    #: clean, dry bowl; any fat stops them from whipping.") may have none.
    stop_words_min_words: int = 20
    disable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_range("min_words", self.min_words, 0)
        check_range("max_words", self.max_words, max(self.min_words, 1))
        check_range("min_mean_word_length", self.min_mean_word_length, 0)
        check_range("max_mean_word_length", self.max_mean_word_length, self.min_mean_word_length)
        for key in ("max_symbol_word_ratio", "max_bullet_lines_ratio",
                    "max_ellipsis_lines_ratio", "min_alpha_words_ratio"):
            check_range(key, getattr(self, key), 0.0, 1.0)
        check_range("min_stop_words", self.min_stop_words, 0)
        check_range("stop_words_min_words", self.stop_words_min_words, 0)
        _check_disable(self.disable, GOPHER_QUALITY_REASONS)


class GopherQualityValidator(_Rules):
    """Gopher quality filter: length, word length, symbols, bullets, alpha words, stop words."""

    name: ClassVar[str] = "gopher_quality"
    config_cls = GopherQualityConfig
    summary = ("Gopher quality rules: word counts and lengths, symbols, bullets, alphabetic and "
               "stop words.")
    reason_codes = GOPHER_QUALITY_REASONS

    def rules(self, s: TextStats) -> list[tuple[str, np.ndarray]]:
        c = self.config
        bare_len = s.bare_len
        real = bare_len > 0  # words that are not only symbols
        n_real = s.per_doc(s.word_doc[real])
        mean_len = _ratio(s.per_doc(s.word_doc[real], bare_len[real]), n_real)
        marks = s.marks("norm")  # '#', '...' and '…' (non-overlapping), as datatrove counts
        symbols = marks["hash"] + marks["dots"] + marks["ellipsis"]
        lines, line_doc = s.lines
        bullets = pc.match_substring_regex(lines, _BULLETS).to_numpy(zero_copy_only=False)
        ellipsis = pc.match_substring_regex(lines, r"(\.\.\.|…)$").to_numpy(zero_copy_only=False)
        alpha = s.has_letter
        stop = s.stop_word
        has_words = s.n_words > 0
        return [
            ("gopher_min_words", s.n_words < c.min_words),
            ("gopher_max_words", s.n_words > c.max_words),
            ("gopher_mean_word_length", has_words & ((mean_len < c.min_mean_word_length)
                                                     | (mean_len > c.max_mean_word_length))),
            ("gopher_symbol_ratio", _ratio(symbols.astype(float), s.n_words)
             > c.max_symbol_word_ratio),
            ("gopher_bullet_lines", _ratio(s.per_doc(line_doc[bullets]), s.n_lines)
             > c.max_bullet_lines_ratio),
            ("gopher_ellipsis_lines", _ratio(s.per_doc(line_doc[ellipsis]), s.n_lines)
             > c.max_ellipsis_lines_ratio),
            ("gopher_alpha_words", has_words & (_ratio(s.per_doc(s.word_doc[alpha]), s.n_words)
                                                < c.min_alpha_words_ratio)),
            ("gopher_stop_words", (s.n_words >= c.stop_words_min_words)
             & (s.per_doc(s.word_doc[stop]) < c.min_stop_words)),
        ]


# ------------------------------------------------------------------------ Gopher repetition

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
GOPHER_REPETITION_REASONS = (
    "gopher_dup_line_frac", "gopher_dup_para_frac", "gopher_dup_line_char_frac",
    "gopher_dup_para_char_frac",
    *(f"gopher_top_{n}_gram" for n in TOP_NGRAMS),
    *(f"gopher_dup_{n}_gram" for n in DUP_NGRAMS),
)


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """``[validators.gopher_repetition]``: Gopher table A1 thresholds."""

    #: Gopher: duplicate lines / lines <= 0.3; duplicate paragraphs / paragraphs <= 0.3.
    max_dup_line_frac: float = 0.3
    max_dup_para_frac: float = 0.3
    #: Gopher: characters in duplicate lines <= 0.2; in duplicate paragraphs <= 0.2.
    max_dup_line_char_frac: float = 0.2
    max_dup_para_char_frac: float = 0.2
    #: Gopher: most frequent 2-, 3-, 4-gram covers at most 20 %, 18 %, 16 % of characters.
    max_top_ngram_char_frac: tuple[float, ...] = (0.20, 0.18, 0.16)
    #: Gopher: repeated 5..10-grams cover at most 15 %, 14 %, 13 %, 12 %, 11 %, 10 %.
    max_dup_ngram_char_frac: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)
    #: The n-gram fractions apply from Gopher's own minimum document length (50 words) on:
    #: below it one repeated clause is already 20 % of a record, which is no signal.
    min_words_for_ngrams: int = 50
    disable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("max_dup_line_frac", "max_dup_para_frac", "max_dup_line_char_frac",
                    "max_dup_para_char_frac"):
            check_range(key, getattr(self, key), 0.0, 1.0)
        check(len(self.max_top_ngram_char_frac) == len(TOP_NGRAMS), "max_top_ngram_char_frac",
              self.max_top_ngram_char_frac, "must list 3 fractions (2-, 3-, 4-grams)")
        check(len(self.max_dup_ngram_char_frac) == len(DUP_NGRAMS), "max_dup_ngram_char_frac",
              self.max_dup_ngram_char_frac, "must list 6 fractions (5- to 10-grams)")
        for v in (*self.max_top_ngram_char_frac, *self.max_dup_ngram_char_frac):
            check_range("max_ngram_char_frac", v, 0.0, 1.0)
        check_range("min_words_for_ngrams", self.min_words_for_ngrams, 0)
        _check_disable(self.disable, GOPHER_REPETITION_REASONS)


class GopherRepetitionValidator(_Rules):
    """Gopher repetition filter: duplicate lines / paragraphs and repeated n-grams."""

    name: ClassVar[str] = "gopher_repetition"
    config_cls = GopherRepetitionConfig
    summary = "Gopher repetition rules: duplicate lines and paragraphs, repeated n-grams."
    reason_codes = GOPHER_REPETITION_REASONS

    def rules(self, s: TextStats) -> list[tuple[str, np.ndarray]]:
        c = self.config
        off = set(c.disable)
        text_chars = pc.utf8_length(s.text).to_numpy(zero_copy_only=False).astype(float)
        dup_lines, dup_line_chars = s.duplicates(s.lines)
        dup_paras, dup_para_chars = s.duplicates(s.paragraphs)
        out = [
            ("gopher_dup_line_frac", _ratio(dup_lines, s.n_lines) > c.max_dup_line_frac),
            ("gopher_dup_para_frac", _ratio(dup_paras, s.per_doc(s.paragraphs[1]))
             > c.max_dup_para_frac),
            ("gopher_dup_line_char_frac", _ratio(dup_line_chars, text_chars)
             > c.max_dup_line_char_frac),
            ("gopher_dup_para_char_frac", _ratio(dup_para_chars, text_chars)
             > c.max_dup_para_char_frac),
        ]
        top, dup = s.repetition_fracs(TOP_NGRAMS, DUP_NGRAMS,
                                      s.n_words >= c.min_words_for_ngrams)
        for j, (n, limit) in enumerate(zip(TOP_NGRAMS, c.max_top_ngram_char_frac,
                                           strict=True)):
            if f"gopher_top_{n}_gram" not in off:
                out.append((f"gopher_top_{n}_gram", top[:, j] > limit))
        for j, (n, limit) in enumerate(zip(DUP_NGRAMS, c.max_dup_ngram_char_frac,
                                           strict=True)):
            if f"gopher_dup_{n}_gram" not in off:
                out.append((f"gopher_dup_{n}_gram", dup[:, j] > limit))
        return out


# ----------------------------------------------------------------------------------- C4

C4_REASONS = ("c4_lorem_ipsum", "c4_curly_bracket", "c4_javascript", "c4_policy",
              "c4_word_length", "c4_min_sentences")


@dataclass(frozen=True)
class C4QualityConfig:
    """``[validators.c4_quality]``.

    C4 drops lines mentioning "javascript" or a cookie / privacy policy; rejecting a whole
    record for that is too coarse, so those two rules are off by default.
    """

    #: C4: lines with a word longer than 1000 characters are dropped.
    max_word_length: int = 1000
    #: C4: pages with fewer than 5 sentences are dropped. Relaxed to 1 for single Q&A
    #: paragraphs (a one-sentence answer is a normal record).
    min_sentences: int = 1
    disable: tuple[str, ...] = ("c4_javascript", "c4_policy")

    def __post_init__(self) -> None:
        check_range("max_word_length", self.max_word_length, 1)
        check_range("min_sentences", self.min_sentences, 0)
        _check_disable(self.disable, C4_REASONS)


class C4QualityValidator(_Rules):
    """C4 filters: lorem ipsum, curly brackets, javascript, policy text, long words."""

    name: ClassVar[str] = "c4_quality"
    config_cls = C4QualityConfig
    summary = ("C4 rules: lorem ipsum, curly brackets, javascript, policy boilerplate, word "
               "length, sentences.")
    reason_codes = C4_REASONS

    def rules(self, s: TextStats) -> list[tuple[str, np.ndarray]]:
        c = self.config
        off = set(c.disable)
        longest = max_per_doc(s.word_doc, s.word_len, s.n)
        policy = np.zeros(s.n, dtype=bool)
        for phrase in POLICY_PHRASES if "c4_policy" not in off else ():
            policy |= pc.match_substring(s.lower, phrase).to_numpy(zero_copy_only=False)
        # sentence ends: what count_substring_regex(norm, r"[.!?]+(\s|$)") counts
        sentences = s.marks("norm")["sentence"]
        javascript = (pc.match_substring(s.lower, "javascript")  # off by default: no scan
                      if "c4_javascript" not in off else np.zeros(s.n, dtype=bool))
        return [
            ("c4_lorem_ipsum", pc.match_substring(s.lower, "lorem ipsum")),
            ("c4_curly_bracket", s.marks("text")["curly"] > 0),
            ("c4_javascript", javascript),
            ("c4_policy", policy),
            ("c4_word_length", longest > c.max_word_length),
            ("c4_min_sentences", sentences < c.min_sentences),
        ]


# ------------------------------------------------------------------------------- FineWeb

FINEWEB_REASONS = ("fineweb_line_punct_ratio", "fineweb_short_line_ratio",
                   "fineweb_char_dup_ratio", "fineweb_list_ratio")


@dataclass(frozen=True)
class FineWebQualityConfig:
    """``[validators.fineweb_quality]``: FineWeb's custom filters and their thresholds."""

    #: FineWeb: at least 12 % of lines end with terminal punctuation (. ' " ! ?).
    min_line_punct_ratio: float = 0.12
    #: FineWeb: at most 67 % of lines are short (<= 30 characters).
    max_short_line_ratio: float = 0.67
    short_line_length: int = 30
    #: FineWeb: at most 1 % of characters are in duplicated lines.
    max_char_dup_ratio: float = 0.01
    #: FineWeb: newlines / words at most 0.3 (list-like pages).
    max_new_line_ratio: float = 0.3
    disable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("min_line_punct_ratio", "max_short_line_ratio", "max_char_dup_ratio"):
            check_range(key, getattr(self, key), 0.0, 1.0)
        check_range("short_line_length", self.short_line_length, 0)
        check_range("max_new_line_ratio", self.max_new_line_ratio, 0.0)
        _check_disable(self.disable, FINEWEB_REASONS)


class FineWebQualityValidator(_Rules):
    """FineWeb filters: line punctuation, short lines, duplicated line characters, lists."""

    name: ClassVar[str] = "fineweb_quality"
    config_cls = FineWebQualityConfig
    summary = ("FineWeb rules: line punctuation, short lines, duplicated line characters, list-"
               "like text.")
    reason_codes = FINEWEB_REASONS

    def rules(self, s: TextStats) -> list[tuple[str, np.ndarray]]:
        c = self.config
        lines, line_doc = s.lines
        punct = pc.match_substring_regex(lines, r"[.'\"!?]$").to_numpy(zero_copy_only=False)
        short = (pc.utf8_length(lines).to_numpy(zero_copy_only=False)
                 <= c.short_line_length)
        _, dup_chars = s.duplicates(s.lines)
        line_chars = s.per_doc(line_doc, pc.utf8_length(lines).to_numpy(zero_copy_only=False))
        newlines = s.marks("text")["newline"]
        has_lines = s.n_lines > 0
        return [
            ("fineweb_line_punct_ratio", has_lines & (_ratio(s.per_doc(line_doc[punct]),
                                                             s.n_lines) < c.min_line_punct_ratio)),
            ("fineweb_short_line_ratio", _ratio(s.per_doc(line_doc[short]), s.n_lines)
             > c.max_short_line_ratio),
            ("fineweb_char_dup_ratio", _ratio(dup_chars, line_chars) > c.max_char_dup_ratio),
            ("fineweb_list_ratio", _ratio(newlines.astype(float), s.n_words)
             > c.max_new_line_ratio),
        ]
