"""Fast, evasion-hardened PII detection with Presidio's AnalyzerEngine.

Findings are those of ``AnalyzerEngine.analyze`` with the same recognizers, run on each
record's detection view (:mod:`datanet.privacy.evasion`), with offsets mapped back to the
original text. Speed comes from not running Presidio on text that cannot match:

1. vectorised RE2 passes over the batch select the records needing a rewrite (non-ASCII,
   spelled-out e-mail syntax, spaced digits; :func:`~datanet.privacy.evasion.rewrite_steps`);
2. one compiled pass over the views (:func:`datanet.privacy._kernels.scan_batch`) finds the
   phone candidate runs and flags the records that may hold an anchor of the digit-driven
   groups: as many digits as the group's entities hold at least (9: SSN, card), a dotted
   quad or ``h:h:`` for IP, ``CCdd`` for IBAN, a long alphanumeric run for wallets; ``@``
   (e-mail) is a literal pass. Each group's RE2 pass marks its anchors in those records only;
3. every anchor is widened by the longest match the group's recognizers can make around it,
   snapped to whitespace, and overlapping windows are merged;
4. all windows of the batch are joined with blank lines into one string and Presidio
   analyses it once per group (``entities=`` the group's entities), so the engine's fixed
   per-call cost is paid per batch, not per record; identical windows are analysed once
   (a per-worker cache keyed by the window text);
5. results are cut back into records and mapped view -> original (lazily: only findings
   are mapped, :class:`~datanet.privacy.offsets.MappedText`).

Phone windows skip the engine. The candidate runs' texts are cut from the batch's Arrow
buffer and screened in the batch (:meth:`datanet.privacy.phone.PhoneFinder.screen_array`:
each distinct digit string once, a table built at setup for up to 5 digits, RE2 for longer
ones), which proves from the phonenumbers metadata which of the recognizer's regions cannot
match (years, order numbers, dates, card and IP blocks); runs no region can match get no
window. In the others :class:`~datanet.privacy.phone.PhoneFinder` filters the regions again
per window and runs the recognizer's own matcher / leniency only where it may match,
stopping once one region's match covers the window.

Entities without an anchor group, the spec's own recognizers and NER (a spaCy model named in
the spec and installed) run on each record's whole detection view instead. One engine per
worker: :meth:`PiiDetector.setup`, which also loads the phone regions' metadata, builds the
screen table and turns on python-phonenumbers' own pattern cache (a process-wide switch).
The engine's context enhancer skips its deep copy of the results when it cannot change a
score (:class:`~datanet.privacy.recognizers.TokenlessContextEnhancer`). Nothing is
downloaded: the NLP engine is Presidio's ``NoOpNlpEngine`` unless the named spaCy model is
installed, and e-mail validation uses tldextract's bundled suffix list.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.errors import ValidatorError
from datanet.privacy._kernels import FLAGS, scan_batch
from datanet.privacy.evasion import detection_views, fold_table, rewrite_steps
from datanet.privacy.offsets import MappedText
from datanet.privacy.phone import PhoneFinder
from datanet.privacy.recognizers import (
    EthAddressRecognizer,
    Mastercard2SeriesRecognizer,
    OfflineEmailRecognizer,
    RecognizerSpec,
    TokenlessContextEnhancer,
    custom_recognizers,
    offline_tld_extractor,
)

__all__ = ["Finding", "AnchorGroup", "ANCHOR_GROUPS", "PiiDetector", "ner_model_available",
           "phone_context_findings", "PHONE_CONTEXT_SCORE"]

LANGUAGE = "en"
#: Joins windows in the batch buffer: blank lines end every Presidio pattern used here.
_SEPARATOR = "\n\n;;;;\n\n"


@dataclass(frozen=True, order=True)
class Finding:
    """One detected entity in the ORIGINAL text: type, ``[start, end)`` and Presidio score."""

    start: int
    end: int
    entity: str
    score: float


@dataclass(frozen=True)
class AnchorGroup:
    """A necessary substring of its entities' matches and how far a match can reach.

    ``pattern`` is valid in both RE2 (pyarrow) and Python ``re``; ``left`` / ``right`` are
    the characters a match of the group's recognizers can extend beyond an anchor.
    """

    name: str
    pattern: str
    entities: frozenset[str]
    left: int
    right: int
    #: ``margin``: anchor +- left/right snapped to whitespace; ``phone``: see _PhoneRuns.
    mode: str = "margin"
    #: the "digits" group: fewest digits in its anchor's chain (set by the plan)
    chain: int = 0


# Reaches: the longest match of the group's Presidio patterns around the anchor, with slack.
# Phone numbers with country code, brackets and extension are < 32 chars (E.164 has at most
# 15 digits); IBANs at most 34 chars + 8 separators; IPv6 at most 45 chars + prefix length.
ANCHOR_GROUPS: tuple[AnchorGroup, ...] = (
    AnchorGroup("at", r"@", frozenset({"EMAIL_ADDRESS"}), 0, 0),
    # python-phonenumbers' matcher: digit blocks joined by <= 4 punctuation characters (no
    # newline); a VALID number in Presidio's 8 default regions has >= 4 digits (DE's shortest
    # possible length, from the library's metadata).
    AnchorGroup("phone", r"[0-9](?:[^0-9\n]{0,4}[0-9]){3,}", frozenset({"PHONE_NUMBER"}),
                0, 0, mode="phone"),
    # Every pattern of these recognizers (and Mastercard2Series) is \b, digits joined by at
    # most one of "- .", \b: a match lies inside one maximal chain of digits, which is what
    # the anchor matches (greedy, and the separator class holds no digit), so the window
    # needs only the chain's words (the snap to whitespace keeps what \b looks at).
    AnchorGroup(
        "digits",
        r"[0-9](?:[^0-9A-Za-z]{0,3}[0-9]){4,}",
        frozenset({"CREDIT_CARD", "US_SSN", "US_ITIN", "US_BANK_NUMBER", "UK_NHS"}),
        0, 0,
    ),
    AnchorGroup(
        "ip",
        r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
        frozenset({"IP_ADDRESS"}),
        48, 48,
    ),
    AnchorGroup("iban", r"[A-Z]{2}[ \-]?[0-9]{2}(?:[ \-]?[A-Z0-9]){9}",
                frozenset({"IBAN_CODE"}), 0, 48),
    AnchorGroup("crypto", r"(?:bc1|[13])[a-zA-HJ-NP-Z0-9]{25}|0x[0-9a-fA-F]{40}",
                frozenset({"CRYPTO"}), 0, 64),
)


#: Fewest digits a match of Presidio's (2.2.366) patterns for the entity holds, its digits
#: joined by at most one separator: CreditCardRecognizer (4+3+3+3), Mastercard2Series (16),
#: UsSsnRecognizer (all 9), UsItinRecognizer (9), UsBankRecognizer (8-17), NhsRecognizer (10).
_MIN_DIGITS = {"CREDIT_CARD": 13, "US_SSN": 9, "US_ITIN": 9, "US_BANK_NUMBER": 8,
               "UK_NHS": 10}


def _digit_chain(n: int) -> str:
    """RE2 / ``re``: ``n`` or more digits joined by at most 3 non-alphanumerics each."""
    return rf"[0-9](?:[^0-9A-Za-z]{{0,3}}[0-9]){{{n - 1},}}"


def ner_model_available(name: str | None) -> bool:
    """True when ``name`` is an installed spaCy package or a model directory."""
    if not name:
        return False
    from pathlib import Path

    import spacy.util

    return bool(spacy.util.is_package(name) or Path(name).is_dir())


def _snap_left(text: str, pos: int) -> int:
    pos = max(pos, 0)
    while pos > 0 and not text[pos - 1].isspace():
        pos -= 1
    return pos


def _snap_right(text: str, pos: int) -> int:
    n = len(text)
    pos = min(pos, n)
    while pos < n and not text[pos].isspace():
        pos += 1
    return pos


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    windows.sort()
    out: list[tuple[int, int]] = []
    for s, e in windows:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


@dataclass
class _Stats:
    records: int = 0
    rewritten: int = 0
    windowed_records: int = 0
    window_chars: int = 0
    full_records: int = 0
    dropped_crossing: int = 0
    phone_windows: int = 0
    phone_region_runs: int = 0
    #: candidate runs the batch screen dropped before any window was built
    phone_runs_dropped: int = 0
    phone_context: int = 0


@dataclass
class PiiDetector:
    """Detect ``entities`` in batches of texts; picklable until :meth:`setup` runs."""

    entities: frozenset[str]
    score_threshold: float = 0.3
    ner_model: str | None = None
    recognizers: Mapping[str, RecognizerSpec] = field(default_factory=dict)
    phone_regions: tuple[str, ...] = ()
    windowed: bool = True
    #: Also report number-shaped strings right after a phone word (``phone_context_findings``)
    phone_context: bool = True
    _engine: Any = field(default=None, init=False, repr=False)
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _phones: Any = field(default=None, init=False, repr=False)
    stats: _Stats = field(default_factory=_Stats, init=False)

    # --- setup -----------------------------------------------------------------------
    @property
    def ner_enabled(self) -> bool:
        """NER runs only when a model is named and installed."""
        return ner_model_available(self.ner_model)

    def ner_status(self) -> str:
        """One sentence for the run's report / manifest."""
        if not self.ner_model:
            return "disabled: no spaCy model named in [validators.pii].ner_model; patterns only"
        if not self.ner_enabled:
            return (f"disabled: spaCy model {self.ner_model!r} is not installed "
                    "(install its package; nothing is downloaded at run time); patterns only")
        return f"enabled: spaCy model {self.ner_model!r}"

    def setup(self) -> None:
        """Build the analyzer engine and the per-worker tables (Unicode fold table, phone
        candidate classes and metadata filter) once per worker, not in the first batch."""
        if self._engine is None:
            self._engine = self._build_engine()
            fold_table()
            if "EMAIL_ADDRESS" in self.entities:
                offline_tld_extractor()("example.com")  # builds the suffix trie (~0.15 s)
            if "CRYPTO" in self.entities:
                import eth_utils  # noqa: F401  (EIP-55 checks; its first import takes ~0.2 s)
            if "PHONE_NUMBER" in self.entities:
                import phonenumbers

                # Keep every compiled metadata regex (python-phonenumbers' own switch, since
                # 9.0.x; the re module's 512-entry cache thrashes over 8 regions' metadata).
                # Process-wide; older releases simply lack it.
                cache_patterns = getattr(phonenumbers, "enable_pattern_cache", None)
                if cache_patterns is not None:
                    cache_patterns()
                _phone_run_re()
                # compile (or load from the on-disk cache) the candidate-run kernel
                _phone_window_lists(pa.array(["call 555-0100 now"]), ["call 555-0100 now"])
                finder = self._phone_finder()
                if finder is not None:
                    finder.warm_up()

    @property
    def engine(self) -> Any:
        """The Presidio AnalyzerEngine (built on first use)."""
        self.setup()
        return self._engine

    def _build_engine(self) -> Any:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        models = [{"lang_code": LANGUAGE, "model_name": self.ner_model or "no_op"}]
        nlp = SpacyNlpEngine(models=models) if self.ner_enabled else NoOpNlpEngine(models=models)
        nlp.load()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp)
        keep = []
        for rec in registry.recognizers:
            ents = set(rec.supported_entities)
            if type(rec).__name__ == "EmailRecognizer":
                rec = OfflineEmailRecognizer()
            if type(rec).__name__ == "PhoneRecognizer" and self.phone_regions:
                rec = PhoneRecognizer(supported_regions=self.phone_regions)
            if ents & self.entities or (self.ner_enabled and rec.name.endswith("SpacyRecognizer")):
                keep.append(rec)
        if "CRYPTO" in self.entities:
            keep.append(EthAddressRecognizer())
        if "CREDIT_CARD" in self.entities:
            keep.append(Mastercard2SeriesRecognizer())
        keep.extend(custom_recognizers(self.recognizers))
        registry.recognizers = keep
        supported = {e for r in keep for e in r.supported_entities}
        missing = sorted(self.entities - supported)
        if missing:
            raise ValidatorError(
                f"validators.pii.entities names {missing} but no recognizer supports them "
                f"(supported: {', '.join(sorted(supported))}); add a "
                f"[validators.pii.recognizers.{missing[0]}] table or a spaCy ner_model"
            )
        engine = AnalyzerEngine(registry=registry, nlp_engine=nlp,
                                supported_languages=[LANGUAGE])
        # In place of the default LemmaContextAwareEnhancer() (set after construction: the
        # constructor warns about any lemma enhancer passed alongside NoOpNlpEngine).
        engine.context_aware_enhancer = TokenlessContextEnhancer()
        return engine

    # --- routing ---------------------------------------------------------------------
    def _plan(self) -> tuple[list[tuple[AnchorGroup, list[str]]], list[str]]:
        """(anchor groups with the entities they serve, entities run on whole records)."""
        if not self.windowed or self.ner_enabled:
            return [], sorted(self.entities)
        groups = []
        covered: set[str] = set()
        for g in ANCHOR_GROUPS:
            ents = sorted((g.entities & self.entities) - set(self.recognizers))
            if ents and g.name == "digits":
                chain = min(_MIN_DIGITS.get(e, 5) for e in ents)
                g = replace(g, pattern=_digit_chain(chain), chain=chain)
            if ents:
                groups.append((g, ents))
                covered.update(ents)
        return groups, sorted(self.entities - covered)

    def _analyze(self, text: str, entities: Sequence[str]) -> list[Any]:
        return self.engine.analyze(text, language=LANGUAGE, entities=list(entities),
                                   score_threshold=self.score_threshold)

    # --- detection -------------------------------------------------------------------
    def views(self, texts: Sequence[str], rewrite: np.ndarray) -> list[MappedText]:
        """Detection views: the prefilter's rewrite steps per record (0: identity)."""
        return detection_views(texts, rewrite)

    def detect(self, texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> list[list[Finding]]:
        """Findings per text (original offsets, sorted), for a whole batch."""
        arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(
            list(texts), pa.string())
        arr = pc.fill_null(arr, "")
        py = arr.to_pylist()
        n = len(py)
        out: list[list[Finding]] = [[] for _ in range(n)]
        if n == 0 or not self.entities:
            return out
        self.setup()
        rewrite = rewrite_steps(arr)
        views = self.views(py, rewrite)
        self.stats.records += n
        self.stats.rewritten += int((rewrite != 0).sum())
        if any(not v.is_identity for v in views):
            view_arr = pa.array([v.text for v in views], pa.string())
        else:
            view_arr = arr
        groups, full = self._plan()
        # One compiled pass over the views finds the phone candidate runs and flags the
        # records that may hold an anchor of the digit-driven groups; each group's RE2 pass
        # then reads only those ("@" is a memchr-fast literal: its own pass reads all).
        scan = None
        if groups:
            chain = next((g.chain for g, _ in groups if g.name == "digits"), 1 << 30)
            scan = _scan_views(view_arr, chain)
        for group, ents in groups:
            rows = None
            if group.mode == "margin" and group.name in FLAGS and scan is not None:
                flagged = scan.flags[:, FLAGS.index(group.name)] | ~scan.is_ascii
                rows = np.flatnonzero(flagged)
            self._detect_group(group, ents, view_arr, views, out, rows, scan)
        if full:
            self.stats.full_records += n
            for i, v in enumerate(views):
                if v.text:
                    out[i].extend(self._to_findings(self._analyze(v.text, full), v, 0))
        if (self.phone_context and "PHONE_NUMBER" in self.entities
                and PHONE_CONTEXT_SCORE >= self.score_threshold):
            for i, found in phone_context_findings(view_arr, views, out).items():
                out[i].extend(found)
                self.stats.phone_context += len(found)
        for f in out:
            f.sort()
        return out

    def _to_findings(self, results: Iterable[Any], view: MappedText, shift: int) -> list[Finding]:
        found = []
        for r in results:
            s, e = view.span(r.start - shift, r.end - shift)
            found.append(Finding(s, e, r.entity_type, float(r.score)))
        return found

    def _windows(self, group: AnchorGroup, text: str,
                 marked: str | None = None) -> list[tuple[int, int, str]]:
        """``(start, end, key)`` windows of one view for a margin group: the text Presidio
        must see there (phone windows: :func:`_phone_window_lists`). ``marked``: the text
        with every anchor match wrapped in :data:`_MARK_START` / :data:`_MARK_END`."""
        if marked is None or _MARK_START in text or _MARK_END in text:
            anchors = [(m.start(), m.end()) for m in _compiled(group.pattern).finditer(text)]
        else:
            anchors = []
            pos = 0
            while (a := marked.find(_MARK_START, pos)) >= 0:
                b = marked.find(_MARK_END, a)
                shift = 2 * len(anchors)
                anchors.append((a - shift, b - shift - 1))
                pos = b + 1
        spans = [(_snap_left(text, s - group.left), _snap_right(text, e + group.right))
                 for s, e in anchors]
        return [(s, e, text[s:e]) for s, e in _merge(spans)]

    def _detect_group(self, group: AnchorGroup, entities: list[str], view_arr: Any,
                      views: list[MappedText], out: list[list[Finding]],
                      rows: np.ndarray | None = None, scan: _Scan | None = None) -> None:
        screened: dict[str, frozenset[str] | None] = {}
        if group.mode == "phone":
            lists, screened = _phone_window_lists(view_arr, [v.text for v in views],
                                                  self._phone_finder(), self.stats, scan)
            idx = [i for i, w in enumerate(lists) if w]
        else:
            if rows is None:
                rows = np.arange(len(views))
            if rows.size == 0:
                return
            sub = view_arr if rows.size == len(views) else pc.take(view_arr, pa.array(rows))
            # RE2 marks every anchor match (non-overlapping, leftmost-first, as re.finditer
            # reports them) in one pass; Python only finds the marks. Rows that grew hold an
            # anchor; a plain match pass first pays off only for the whole batch.
            if rows.size == len(views):
                mask = pc.fill_null(pc.match_substring_regex(sub, group.pattern), False)
                found = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
                sub = pc.take(sub, pa.array(found))
                rows = rows[found]
            marked_arr = pc.replace_substring_regex(sub, group.pattern,
                                                    f"{_MARK_START}\\0{_MARK_END}")
            grew = pc.greater(pc.binary_length(marked_arr), pc.binary_length(sub))
            found = np.flatnonzero(pc.fill_null(grew, False).to_numpy(zero_copy_only=False))
            idx = rows[found].tolist()
            marked = pc.take(marked_arr, pa.array(found)).to_pylist()
            lists = {i: self._windows(group, views[i].text, m) for i, m in zip(idx, marked,
                                                                              strict=True)}
        if not idx:
            return
        self.stats.windowed_records += len(idx)
        cache = self._cache.setdefault(group.name, {})
        if len(cache) > _CACHE_SIZE:
            cache.clear()
        todo: dict[str, list[tuple[int, int]]] = {}  # window key -> [(record, window start)]
        hits: list[tuple[int, int, tuple[tuple[int, int, str, float], ...]]] = []
        for i in idx:
            for start, _end, key in lists[i]:
                found = cache.get(key)
                if found is None:
                    todo.setdefault(key, []).append((i, start))
                elif found:
                    hits.append((i, start, found))
        if todo and group.mode == "phone" and self._phone_finder() is not None:
            for key, found in self._phone_keys(list(todo), screened).items():
                cache[key] = found
                hits.extend((rec, start, found) for rec, start in todo[key])
            todo = {}
        if todo:
            keys = list(todo)
            step = len(_SEPARATOR)
            starts = []
            offset = 0
            for k in keys:
                starts.append(offset)
                offset += len(k) + step
            buffer = _SEPARATOR.join(keys)
            self.stats.window_chars += len(buffer)
            per_key: list[list[tuple[int, int, str, float]]] = [[] for _ in keys]
            for r in self._analyze(buffer, entities):
                k = bisect.bisect_right(starts, r.start) - 1
                if k < 0 or r.end > starts[k] + len(keys[k]):
                    self.stats.dropped_crossing += 1
                    continue
                per_key[k].append((r.start - starts[k], r.end - starts[k], r.entity_type,
                                   float(r.score)))
            for k, key in enumerate(keys):
                found = tuple(per_key[k])
                cache[key] = found
                hits.extend((rec, start, found) for rec, start in todo[key])
        for rec, start, found in hits:
            view = views[rec]
            for s, e, entity, score in found:
                os_, oe = view.span(start + s, start + e)
                out[rec].append(Finding(os_, oe, entity, score))

    def _phone_finder(self) -> PhoneFinder | None:
        """The engine's PhoneRecognizer as a :class:`PhoneFinder` (None: not Presidio's own
        recognizer, so windows go through the engine)."""
        if self._phones is None:
            from presidio_analyzer.predefined_recognizers import PhoneRecognizer

            recs = [r for r in self.engine.registry.recognizers
                    if "PHONE_NUMBER" in r.supported_entities]
            if len(recs) == 1 and type(recs[0]) is PhoneRecognizer:
                rec = recs[0]
                self._phones = PhoneFinder(rec.supported_regions, rec.leniency, rec.SCORE,
                                           rec.supported_entities[0])
            else:
                self._phones = False
        return self._phones or None

    def _phone_keys(self, keys: list[str],
                    screened: Mapping[str, frozenset[str] | None] | None = None,
                    ) -> dict[str, tuple[tuple[int, int, str, float], ...]]:
        """Phone findings per window key, as the engine would report them there: regions
        that provably cannot match are skipped, the rest run python-phonenumbers directly.
        ``screened``: the batch screen's regions for keys it already decided."""
        finder = self._phone_finder()
        assert finder is not None
        if finder.score < self.score_threshold:  # Presidio drops scores below the threshold
            return {k: () for k in keys}
        out = {}
        screened = dict(screened or {})
        bounds = [_core_bounds(key) for key in keys]
        cores = [key[lo:hi] for key, (lo, hi) in zip(keys, bounds, strict=True)]
        todo = [k for k, key in enumerate(keys) if key not in screened]
        for k, regions in zip(todo, finder.screen([cores[k] for k in todo]), strict=True):
            screened[keys[k]] = regions
        runs = finder.runs
        for key, core, core_at in zip(keys, cores, bounds, strict=True):
            regions = screened[key]
            if regions is not None and not regions:
                out[key] = ()  # the batch screen left no region: nothing to match
                continue
            # Regions are filtered as the matcher asks for them: a match covering the window
            # ends both the matching and the filtering.
            found = finder.find(key, finder.iter_candidate_regions(core, regions), core_at)
            out[key] = tuple((s, e, finder.entity, finder.score) for s, e in found)
        self.stats.phone_windows += len(keys)
        self.stats.phone_region_runs += finder.runs - runs
        return out


_CACHE_SIZE = 200_000
#: Marks around anchor matches (control characters; a text holding one is scanned in Python).
_MARK_START, _MARK_END = "\x02", "\x03"


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=1)
def _phone_run_re() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[str]]:
    """Runs of python-phonenumbers candidate characters from their first digit on, its
    extension pattern and the candidate punctuation (all from the library's own classes).

    A candidate run is a maximal run of punctuation and digits holding >= 4 digits; the
    pattern starts at the run's first digit (so ``re`` skips to digits fast) and the run is
    widened left over punctuation in Python.
    """
    from phonenumbers.phonenumbermatcher import _LEAD_CLASS_CHARS
    from phonenumbers.phonenumberutil import (
        _EXTN_PATTERNS_FOR_MATCHING,
        _REGEX_FLAGS,
        _VALID_PUNCTUATION,
    )

    chars = f"{_VALID_PUNCTUATION}{_LEAD_CLASS_CHARS}"
    run = re.compile(f"\\d(?:[{chars}]*\\d){{3,}}[{chars}\\d]*", re.UNICODE)
    ext = re.compile(f"(?:{_EXTN_PATTERNS_FOR_MATCHING})", _REGEX_FLAGS)
    # a class of literal characters and ranges between them matches nothing outside its
    # lowest and highest character (a class escape such as \d or \w would: then all of
    # Unicode is scanned); ~20x less than scanning 1.1M code points in every process
    lo, hi = ((min(map(ord, chars)), max(map(ord, chars)) + 1)
              if not re.search(r"\\[A-Za-z]", chars) else (0, 0x110000))
    candidates = "".join(map(chr, range(lo, hi)))
    members = frozenset(re.findall(f"[{chars}]", candidates, re.UNICODE))
    return run, ext, members


_TIME_SUFFIX = re.compile(r":[0-5]\d")


@lru_cache(maxsize=4096)
def _context_char(char: str) -> str:
    """The class of a neighbour that python-phonenumbers' VALID leniency looks at."""
    from phonenumbers.phonenumbermatcher import PhoneNumberMatcher as M

    if M._is_latin_letter(char):
        return "a"
    if M._is_invalid_punctuation_symbol(char):
        return "%"
    return "\n"


def _core_bounds(key: str) -> tuple[int, int]:
    """``[lo, hi)`` of the candidate run inside a phone window key (minus its context)."""
    lo = 1 if key[:1] in ("a", "%", "\n") else 0
    hi = len(key)
    t = _TIME_SUFFIX.search(key, lo)
    if t is not None and t.end() == hi:
        hi = t.start()
    elif hi > lo and key[-1] in ("a", "%", "\n"):
        hi -= 1
    return lo, hi


def _phone_windows(text: str) -> list[tuple[int, int, str, int]]:
    """Windows holding each candidate run whole, plus exactly the context the matcher reads:
    the characters just before and after (canonicalised to their class, so equal runs share
    a cache entry) and a ``:MM`` time-stamp suffix."""
    run_re, _, punct = _phone_run_re()
    out = []
    for m in run_re.finditer(text):
        s = m.start()
        while s > 0 and text[s - 1] in punct:
            s -= 1
        out.append(_phone_window(text, s, m.end()))
    return out


def _phone_window(text: str, s: int, e: int, extend: bool = True) -> tuple[int, int, str, int]:
    """The window of the candidate run ``text[s:e]``: the run, the extension the matcher
    reads after it (``extend``: one may start there), and its context (see
    :func:`_phone_windows`), as ``(start, end, key, length of the context before)``."""
    if extend:
        ext = _phone_run_re()[1].match(text, e)
        if ext and ext.end() > e:
            e = ext.end()
    prefix = _context_char(text[s - 1]) if s > 0 else ""
    suffix = ""
    if e < len(text):
        t = _TIME_SUFFIX.match(text, e)
        suffix = t.group() if t else _context_char(text[e])
    return s - len(prefix), e, prefix + text[s:e] + suffix, len(prefix)


#: ASCII characters at which the matcher's extension pattern can start (read off
#: ``_EXTN_PATTERNS_FOR_MATCHING``: ``;ext=``, ``[ \t,]*`` then ``e?xt`` / ``anexo`` / ``x``
#: / ``#`` / ``~`` / ``int``, or ``[- ]+``; matched case-insensitively).
_EXT_FIRST = frozenset(";\t ,-#~eExXaAiI")


@lru_cache(maxsize=1)
def _ascii_classes() -> np.ndarray:
    """Byte classes for ASCII views (0: ends a candidate run, 1: run punctuation, 2: digit),
    from the library's own sets."""
    _, _, punct = _phone_run_re()
    cls = np.zeros(256, dtype=np.uint8)
    for char in punct:
        if char.isascii():
            cls[ord(char)] = 1
    cls[ord("0"):ord("9") + 1] = 2
    return cls


#: ASCII characters an extension match can hold before its first digit (read off the same
#: pattern: ``;ext=``, blanks / tabs / commas, ``extensión`` / ``anexo`` / ``int`` / ``x`` /
#: ``#`` / ``~``, ``:`` / ``.``, hyphens; case-insensitive).
_EXT_BODY = frozenset(" \t,;=:.-#~extnsioaEXTNSIOA")


@lru_cache(maxsize=1)
def _ext_tables() -> tuple[np.ndarray, np.ndarray]:
    first = np.zeros(256, dtype=bool)
    first[[ord(c) for c in _EXT_FIRST]] = True
    body = np.zeros(256, dtype=bool)
    body[[ord(c) for c in _EXT_BODY]] = True
    return first, body


@dataclass
class _Scan:
    """:func:`~datanet.privacy._kernels.scan_batch` over a batch's views."""

    arr: pa.Array  # the views as large_string, nulls as ""
    is_ascii: np.ndarray
    offsets: np.ndarray  # relative to ``base``
    base: int
    rec: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    ext: np.ndarray
    flags: np.ndarray  # per record, the anchor groups of FLAGS


def _scan_views(view_arr: pa.Array | pa.ChunkedArray, chain: int = 1 << 30) -> _Scan:
    """One compiled pass over the ASCII views: phone candidate runs and anchor flags."""
    arr = view_arr.combine_chunks() if isinstance(view_arr, pa.ChunkedArray) else view_arr
    arr = pc.fill_null(arr.cast(pa.large_string()), "")
    n = len(arr)
    is_ascii = pc.string_is_ascii(arr).to_numpy(zero_copy_only=False)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    base = int(offsets[0]) if n else 0
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[base:int(offsets[-1])] if n else (
        np.zeros(0, dtype=np.uint8))
    offsets = offsets - base
    cls_table = _ascii_classes()
    first, body = _ext_tables()
    rec, lo, hi, ext, flags = scan_batch(data, offsets, np.flatnonzero(is_ascii), cls_table,
                                         first, body, chain)
    return _Scan(arr, is_ascii, offsets, base, rec, lo, hi, ext, flags)


def _phone_window_lists(view_arr: pa.Array | pa.ChunkedArray, texts: Sequence[str],
                        finder: PhoneFinder | None = None, stats: _Stats | None = None,
                        scan: _Scan | None = None) -> tuple[list[list[tuple[int, int, str]]],
                                   dict[str, frozenset[str] | None]]:
    """:func:`_phone_windows` of every text of the batch: ASCII texts are segmented by the
    compiled pass over the Arrow buffer (:func:`_scan_views`; a candidate run is a maximal
    run of digits and run punctuation holding >= 4 digits), the others with the regex.

    With a ``finder``, runs of ASCII texts are screened before any Python touches them: the
    run's text is cut from the Arrow buffer (zero copy) and :meth:`PhoneFinder.screen_array`
    asked; a run no region can match, and after which no extension can start, yields no
    window. Also returned: the screen's region set per window key it decided.
    """
    n = len(texts)
    out: list[list[tuple[int, int, str]]] = [[] for _ in range(n)]
    screened: dict[str, frozenset[str] | None] = {}
    if n == 0:
        return out, screened
    if scan is None:
        scan = _scan_views(view_arr)
    arr, is_ascii, offsets, base = scan.arr, scan.is_ascii, scan.offsets, scan.base
    rec, lo, hi, ext = scan.rec, scan.lo, scan.hi, scan.ext
    # Texts with non-ASCII characters: the regex finds their windows (byte offsets are not
    # character offsets there); their cores join the batch screen below.
    other = [(int(i), s, e, key) for i in np.flatnonzero(~is_ascii)
             for s, e, key, _ in _phone_windows(texts[i])]
    sets: list[frozenset[str] | None] | None = None
    if finder is not None and finder.filtering and (rec.size or other):
        # Run texts straight from the buffer: offsets lo0, hi0, lo1, hi1, ... make the runs
        # the even elements (runs are disjoint and in buffer order).
        bounds = np.empty(2 * lo.size, dtype=np.int64)
        bounds[0::2] = lo + base
        bounds[1::2] = hi + base
        cores = [pa.array([key[slice(*_core_bounds(key))] for *_, key in other],
                          pa.large_string())]
        if lo.size:
            both = pa.Array.from_buffers(pa.large_string(), bounds.size - 1,
                                         [None, pa.py_buffer(bounds), arr.buffers()[2]])
            cores.insert(0, both.take(pa.array(np.arange(0, bounds.size, 2))))
        mask = finder.screen_array(pa.chunked_array(cores).combine_chunks())
        runs = lo.size
        live = mask.any(axis=1)
        live[:runs] |= ext
        if stats is not None:
            stats.phone_runs_dropped += int((~live).sum())
        for (r, s, e, key), keep, regions in zip(other, live[runs:].tolist(),
                                                 finder.region_sets(mask[runs:]), strict=True):
            if keep:
                out[r].append((s, e, key))
                screened[key] = regions
        alive = np.flatnonzero(live[:runs])
        sets = finder.region_sets(mask[alive])
        rec, lo, hi, ext = rec[alive], lo[alive], hi[alive], ext[alive]
    else:
        for r, s, e, key in other:
            out[r].append((s, e, key))
    lo, hi = lo - offsets[rec], hi - offsets[rec]
    for k, (r, s, e, may_extend) in enumerate(zip(rec.tolist(), lo.tolist(), hi.tolist(),
                                                  ext.tolist(), strict=True)):
        start, end, key, _ = _phone_window(texts[r], s, e, may_extend)
        out[r].append((start, end, key))
        if sets is not None and end == e:  # no extension: the screened core is the key's
            screened[key] = sets[k]
    return out, screened


# --- phone numbers by context --------------------------------------------------------------

#: Words that say the next number is a phone number (Presidio's PhoneRecognizer context words
#: plus the verbs and channels people write before one).
_PHONE_WORDS = ("phone|telephone|tel|mobile|cell|cellphone|call|calling|called|text|texting|"
                "sms|whatsapp|fax|number|contact|reach|dial|ring")
#: Number-shaped: optional +country code, optional (area) code, then 2-4 digit groups joined
#: by one space, dot or hyphen; 7-15 digits in all (E.164 allows at most 15), not inside a
#: longer word or number, not an ISO date.
_PHONE_SHAPE = (r"(?<![\w+.,-])(?!\d{4}[-./]\d{1,2}[-./]\d{1,2}(?!\d))"
                r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}"
                r"(?![\w]|[.,-]\d)")
#: The score of PhoneRecognizer's matches (Presidio's ``PhoneRecognizer.SCORE``).
PHONE_CONTEXT_SCORE = 0.4
_PHONE_PREFILTER_RE2 = rf"(?i)\b(?:{_PHONE_WORDS})\b[^\n0-9]{{0,40}}[+(]?[0-9]{{2,4}}[ .)-]"


@lru_cache(maxsize=1)
def _phone_context_re() -> Any:
    import regex

    # a phone word, then up to 40 characters without digits or a line break, then the number
    # (variable-length look-behind: ``regex``, as Presidio's patterns use)
    return regex.compile(rf"(?i)(?<=\b(?:{_PHONE_WORDS})\b[^\n\d]{{0,40}}){_PHONE_SHAPE}")


def phone_context_findings(view_arr: pa.Array, views: Sequence[MappedText],
                           found: Sequence[Sequence[Finding]]) -> dict[int, list[Finding]]:
    """PHONE_NUMBER findings for number-shaped strings that follow a phone word ("the number
    on file is 348-989-4905") where no phone number was found: python-phonenumbers rejects
    numbers of unassigned area codes or ranges, which still are someone's number or a
    typo of one. Privacy first: such a string is treated as a phone number. One RE2 pass
    selects the records; the Python pass runs on those only."""
    hit = pc.fill_null(pc.match_substring_regex(view_arr, _PHONE_PREFILTER_RE2), False)
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    out: dict[int, list[Finding]] = {}
    pattern = _phone_context_re()
    for i in rows.tolist():
        view = views[i]
        for m in pattern.finditer(view.text):
            digits = sum(c.isdigit() for c in m.group())
            if not 7 <= digits <= 15:
                continue
            start, end = view.span(m.start(), m.end())
            # a span already found (a phone number, or an SSN / card written after "call")
            # is not reported twice
            if any(f.start < end and start < f.end for f in found[i]):
                continue
            out.setdefault(i, []).append(
                Finding(start, end, "PHONE_NUMBER", PHONE_CONTEXT_SCORE))
    return out
