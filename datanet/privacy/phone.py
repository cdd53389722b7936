"""Phone numbers as Presidio's PhoneRecognizer finds them, without parsing every number.

Presidio's ``PhoneRecognizer`` runs python-phonenumbers' ``PhoneNumberMatcher`` at leniency
VALID once per region (8 by default) over the text, and the matcher fully parses every run of
digits: years, order numbers, dates, amounts. :class:`PhoneFinder` gives the same matches
for one candidate window (see ``detector._phone_windows``) but first asks, per region, a
cheap question whose "no" proves the matcher cannot match there:

    A VALID match parses to (country code ``cc``, national significant number ``nsn``)
    with ``is_valid_number`` true, i.e. ``nsn`` has a number type (fixed line, mobile, …)
    in some region of ``cc``, and — when ``cc`` came from the default region — the
    national prefix is present if the region's format rule requires it.

Without a ``+`` / letters / non-ASCII characters / an international (IDD) prefix at the start
of a digit block, ``cc`` is the region's own code, the number starts at a digit block and
ends at one (the matcher's candidates, inner matches and extensions are cut at punctuation),
and ``nsn`` is that digit string, optionally minus the country code, optionally with the
national prefix stripped by the library's own ``_maybe_strip_national_prefix_carrier_code``.
The filter tries every such ``nsn`` against the metadata's general and number-type
descriptions (what ``_number_type_helper`` checks, precompiled); it answers "maybe" for
anything outside those assumptions, so it only ever removes regions in which the matcher has
nothing to find. Survivors run the real matcher, one region at a time, until one region's
match covers the whole window (see :meth:`PhoneFinder.find`).

Most candidates in prose are *whole candidates* (:data:`_WHOLE`: years, amounts, dates,
order numbers — digit blocks joined by single hyphens), which the matcher parses as one
string with no inner matches. For them only that whole digit string is tried, after a
vectorised, anchored RE2 screen of the batch: the string must fit a number-type pattern of
the calling code, start with the calling code / a national prefix followed by one, or start
with an international prefix (shorter than any national number: only the last). Blocks
joined by single blanks or full stops (:data:`_SPLIT`: cards, IPs, spaced phone numbers) are
parsed as single blocks or a block and the rest, so only those strings are tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["PhoneFinder"]

_BLOCK = re.compile(r"[0-9]+")
_SPECIAL = re.compile(r"[^0-9 ()\[\]./\-~]")  # anything but digits and plain punctuation
#: The matcher's digit blocks hold at most 20 digits (``_DIGIT_BLOCK_LIMIT``); a longer run
#: may be cut mid-block, which the filter does not model.
_MAX_BLOCK = 20


@dataclass
class _Region:
    """What the filter needs of one region: its code, metadata and the metadata of its
    country calling code's regions."""

    code: str
    cc: str
    idd: re.Pattern[str] | None
    metadata: tuple  # (default region metadata, main region of the calling code)
    main: Any  # metadata of the calling code's main region (None: unknown)
    cc_regions: tuple  # metadata of every region sharing the calling code
    np_prefix: re.Pattern[str] | None  # national_prefix_for_parsing of the main region
    np_conservative: bool
    #: necessary for any of ``cc_regions``' number types: a general-desc length and pattern
    lengths: frozenset[int] | None
    general: re.Pattern[str]
    #: national_prefix_for_parsing of each of ``metadata`` (None: cannot strip)
    np_parsing: tuple
    #: the nsn is always a substring of the number's digits (no digit-inserting transform)
    substring: bool
    #: per region of the calling code: its general desc and number-type descs, compiled
    type_checks: tuple
    #: RE2 pattern a whole-candidate core's digits must match (see :data:`_WHOLE`): a
    #: number-type pattern of the calling code in full, or a country code, national prefix
    #: or international prefix at the start (None: no such necessary condition)
    whole_screen: str | None = None
    #: ``^(?:international prefix)`` (None: the region has none)
    idd_screen: str | None = None


#: A core that python-phonenumbers' matcher reads as ONE candidate and no inner match: digit
#: blocks (<= 20 digits, the matcher's _DIGIT_BLOCK_LIMIT) joined by single ASCII hyphens
#: (no blank beside them, so _INNER_MATCHES' hyphen rule does not apply), at most 20 of them
#: (its _BLOCK_LIMIT), with blanks / full stops only around it (trimmed: never part of a
#: candidate). The matcher then parses exactly the whole digit string, so the filter only
#: asks about that string, not about every block-aligned substring.
_WHOLE = re.compile(r"[ .]*[0-9]{1,20}(?:-[0-9]{1,20}){0,19}[ .]*")
#: Longest number-type union put in an RE2 screen: beyond it (the 25 regions of +1) RE2's
#: per-string cost grows past the Python work it saves; the general descs stand in.
_TYPES_RE2_MAX = 4000
#: A core of digit blocks joined by single blanks, or by single full stops (blanks / stops
#: around it): the matcher's candidate is the whole run; its inner matches (_INNER_MATCHES
#: ``\s+(\S+)`` / ``\.+\s*([^.]+)``) are the first block and each later block alone, and
#: after an inner match the next candidate is the rest of the run. So the digit strings
#: parsed are one block, or a block and all blocks after it (mode ``_SPLIT_MODE``).
_SPLIT = re.compile(r"[ .]*[0-9]{1,20}(?:(?: [0-9]{1,20}){1,19}|(?:\.[0-9]{1,20}){1,19})[ .]*")
_ANY_MODE, _WHOLE_MODE, _SPLIT_MODE = -1, -2, -3
_WHOLE_RE2 = r"^[ .]*[0-9]{1,20}(?:-[0-9]{1,20}){0,19}[ .]*$"


@dataclass(frozen=True)
class _Lib:
    """The python-phonenumbers internals the filter reuses (imported once)."""

    strip_np: Any
    choose_format: Any
    first_group_only: Any


@lru_cache(maxsize=1)
def _lib() -> _Lib:
    from phonenumbers.phonenumberutil import (
        _choose_formatting_pattern_for_number,
        _formatting_rule_has_first_group_only,
        _maybe_strip_national_prefix_carrier_code,
    )

    return _Lib(_maybe_strip_national_prefix_carrier_code,
                _choose_formatting_pattern_for_number, _formatting_rule_has_first_group_only)


#: The number types ``_number_type_helper`` tries after the general desc; any match makes
#: the type known (the mobile test is kept even when the library skips it: a superset).
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail", "fixed_line", "mobile")

_Desc = tuple  # (possible lengths or None for any, compiled national_number_pattern)


def _desc(desc: Any) -> _Desc | None:
    """``_is_number_matching_desc`` precompiled: None when the desc can match nothing."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = frozenset(desc.possible_length) if desc.possible_length else None
    return lengths, re.compile(desc.national_number_pattern)


def _type_checks(md: Any) -> tuple[_Desc | None, tuple[_Desc, ...]]:
    types = tuple(d for d in (_desc(getattr(md, t, None)) for t in _TYPES) if d is not None)
    return _desc(md.general_desc), types


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    return (lengths is None or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _has_type(nsn: str, checks: tuple[_Desc | None, tuple[_Desc, ...]]) -> bool:
    """``_number_type_helper(nsn, md) != UNKNOWN`` (or a superset of it)."""
    general, types = checks
    return general is not None and _matches(nsn, general) and any(
        _matches(nsn, d) for d in types)


class PhoneFinder:
    """``PhoneNumberMatcher`` results for windows, with a proven-superset region filter."""

    def __init__(self, regions: Sequence[str], leniency: int, score: float, entity: str):
        from phonenumbers import Leniency
        from phonenumbers.phonemetadata import PhoneMetadata
        from phonenumbers.phonenumberutil import (
            COUNTRY_CODE_TO_REGION_CODE,
            country_code_for_region,
            region_code_for_country_code,
        )

        self.regions = tuple(regions)
        self.leniency = leniency
        self.score = score
        self.entity = entity
        #: the filter's reasoning is about VALID; other leniencies run every region.
        self.filtering = leniency == Leniency.VALID
        self._info: list[_Region] = []
        for code in self.regions:
            md = PhoneMetadata.metadata_for_region(code, None)
            cc = country_code_for_region(code)
            if md is None or cc == 0:
                self.filtering = False
                break
            main = PhoneMetadata.metadata_for_region(region_code_for_country_code(cc), None)
            others = tuple(m for m in (PhoneMetadata.metadata_for_region(r, None)
                                       for r in COUNTRY_CODE_TO_REGION_CODE.get(cc, ()))
                           if m is not None)
            npfp = main.national_prefix_for_parsing if main is not None else None
            lengths: frozenset[int] | None = frozenset(
                n for m in others for n in m.general_desc.possible_length)
            if any(not m.general_desc.possible_length for m in others):
                lengths = None  # some region does not restrict lengths
            general = "|".join(f"(?:{m.general_desc.national_number_pattern})" for m in others
                               if m.general_desc.national_number_pattern)
            mds = (md,) if main is None or main is md else (md, main)
            # nsn is a substring of the digits unless a transform rule inserts digits (a
            # lone group reference such as BR's "\\2" keeps a substring).
            substring = all(not m.national_prefix_transform_rule
                            or re.fullmatch(r"[\\$]\d", m.national_prefix_transform_rule)
                            for m in mds)
            whole_screen = None
            if substring and general:
                # _number_ok's ways to a valid nsn from the whole digit string N, each of which
                # needs the nsn to fit one number-type pattern T of the calling code: N itself;
                # N minus a national prefix; N minus the calling code, then minus a national
                # prefix once or twice (_cc_path_ok). A prefix is stripped by some npfp (RE2
                # asks whether any match length works); a transform rule may take the nsn from
                # inside the prefix match, so then only the prefix is required. Or N starts
                # with an international prefix (then any calling code follows).
                types = [d.national_number_pattern for m in others for t in _TYPES
                         if (d := getattr(m, t, None)) is not None and d.national_number_pattern]
                t_any = "(?:" + "|".join(f"(?:{t})" for t in types) + ")" if types else "(?!)"
                if len(t_any) > _TYPES_RE2_MAX:  # a valid nsn fits the general desc too
                    t_any = f"(?:{general})"
                heads = ["", f"(?:{cc})"]
                alts = [f"^{h}{t_any}$" for h in heads]
                npfps = [(m.national_prefix_for_parsing, bool(m.national_prefix_transform_rule))
                         for m in mds if m.national_prefix_for_parsing]
                for npfp, transform in npfps:
                    tail = "" if transform else f"{t_any}$"
                    alts += [f"^{h}(?:{npfp}){tail}" for h in heads]
                    for npfp2, transform2 in ([] if transform else npfps):
                        tail2 = "" if transform2 else f"{t_any}$"
                        alts.append(f"^(?:{cc})(?:{npfp})(?:{npfp2}){tail2}")
                if md.international_prefix:
                    alts.append(f"^(?:{md.international_prefix})")
                whole_screen = "|".join(alts)
            self._info.append(_Region(
                code=code,
                cc=str(cc),
                idd=re.compile(md.international_prefix) if md.international_prefix else None,
                metadata=mds,
                main=main,
                cc_regions=others,
                np_prefix=re.compile(npfp) if npfp else None,
                np_conservative=bool(npfp and re.search(r"\$|\(\?[=!<]", npfp)),
                lengths=lengths,
                general=re.compile(general or "(?!)"),
                np_parsing=tuple(re.compile(m.national_prefix_for_parsing)
                                 if m.national_prefix_for_parsing else None for m in mds),
                whole_screen=whole_screen,
                idd_screen=f"^(?:{md.international_prefix})" if md.international_prefix else None,
                substring=substring,
                type_checks=tuple(_type_checks(m) for m in others),
            ))
        self._cache: dict[tuple[str, tuple[int, ...], str], bool] = {}
        self._types: dict[str, dict[str, bool]] = {}
        self._strips: dict[str, dict[str, tuple[str, ...]]] = {}
        self._numbers: dict[str, dict[tuple[str, bool], bool]] = {}
        #: matcher runs so far (one per window and region)
        self.runs = 0

    def warm_up(self) -> None:
        """Load the regions' metadata and compile their patterns once per worker: filter
        and match each region's example numbers, then forget the results."""
        import phonenumbers
        from phonenumbers import PhoneNumberFormat, PhoneNumberType

        cores = []
        for code in self.regions:
            for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
                num = phonenumbers.example_number_for_type(code, kind)
                if num is not None:
                    for fmt in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL):
                        cores.append(f" {phonenumbers.format_number(num, fmt)} ")
        cores += [" 2019-03-12 ", " 45123 "]
        for core, screened in zip(cores, self.screen(cores), strict=True):
            self.find(core, self.candidate_regions(core, screened))
        self._cache.clear()
        self._types.clear()
        self._strips.clear()
        self._numbers.clear()
        self.runs = 0

    # --- filter ------------------------------------------------------------------------
    def screen(self, cores: Sequence[str]) -> list[frozenset[str] | None]:
        """Vectorised (RE2 over the batch) first cut per core: for a whole-candidate core
        (:data:`_WHOLE`), the regions in which its digit string fits a number type or starts
        with a prefix that can lead to one; ``None``: not screened (all regions)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.filtering or not cores:
            return [None] * len(cores)
        arr = pa.array(cores, pa.string())
        digits = pc.replace_substring_regex(arr, r"[^0-9]+", "")
        whole = pc.match_substring_regex(arr, _WHOLE_RE2).to_numpy(zero_copy_only=False)
        # Cores that are not whole candidates go unscreened: an unanchored RE2 search of the
        # general descs costs more per core than the Python filter it would spare.
        keep = np.ones((len(cores), len(self._info)), dtype=bool)
        rows = np.flatnonzero(whole)
        if rows.size:
            keep[rows] = self._screen_whole(pc.take(digits, pa.array(rows)))
        out: list[frozenset[str] | None] = []
        codes = [r.code for r in self._info]
        every = (1 << len(codes)) - 1
        sets: dict[int, frozenset[str] | None] = {every: None}
        weights = 1 << np.arange(len(codes), dtype=np.int64)
        for bits in (keep.astype(np.int64) @ weights).tolist():
            got = sets.get(bits, ())
            if got == ():
                got = sets[bits] = frozenset(c for k, c in enumerate(codes) if bits >> k & 1)
            out.append(got)
        return out

    def _screen_whole(self, digits: Any) -> Any:
        """Region mask for the digit strings of whole-candidate cores."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = np.ones((len(digits), len(self._info)), dtype=bool)
        lengths = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
        done: dict[tuple[str, int], np.ndarray] = {}  # regions of one calling code alike
        for k, region in enumerate(self._info):
            if region.whole_screen is None:
                continue
            # Shorter than any nsn (a substring of the number): only an international prefix
            # can still lead to a valid number (as in _may_match).
            shortest = max(2, min(region.lengths)) if region.substring and region.lengths else 0
            key = (region.whole_screen, shortest)
            if key not in done:
                short = lengths < shortest
                hit = np.zeros(len(digits), dtype=bool)
                try:
                    for mask, pattern in ((~short, region.whole_screen),
                                          (short, region.idd_screen)):
                        rows = np.flatnonzero(mask)
                        if rows.size and pattern:
                            sub = pc.take(digits, pa.array(rows))
                            hit[rows] = pc.match_substring_regex(sub, pattern).to_numpy(
                                zero_copy_only=False)
                except pa.ArrowInvalid:  # not RE2-compatible: no screen for this region
                    region.whole_screen = None
                    continue
                done[key] = hit
            keep[:, k] = done[key]
        return keep

    def candidate_regions(self, core: str,
                          screened: frozenset[str] | None = None) -> tuple[str, ...]:
        """Regions whose matcher may match inside ``core`` (the window minus its context);
        ``screened``: the regions :meth:`screen` left for it."""
        return tuple(self.iter_candidate_regions(core, screened))

    def iter_candidate_regions(self, core: str, screened: frozenset[str] | None = None,
                               ) -> Iterator[str]:
        """:meth:`candidate_regions`, each region decided only when it is asked for (so
        :meth:`find` stopping early also skips the filter of the remaining regions)."""
        if not self.filtering or _SPECIAL.search(core) or not core.isascii():
            yield from self.regions
            return
        if screened is not None and not screened:
            return
        digits: list[str] = []
        starts: list[int] = []
        pos = 0
        for m in _BLOCK.finditer(core):
            block = m.group()
            if len(block) > _MAX_BLOCK:
                yield from self.regions
                return
            starts.append(pos)
            digits.append(block)
            pos += len(block)
        joined = "".join(digits)
        if _WHOLE.fullmatch(core):
            starts = [0]  # the matcher parses the whole string only: _may_match's b = 0, j = end
            mode = _WHOLE_MODE
        elif _SPLIT.fullmatch(core):
            mode = _SPLIT_MODE
        else:
            mode = _ANY_MODE
        at = (*starts, mode)
        if len(self._cache) > 200_000:
            self._cache.clear()
        for region in self._info:
            if screened is not None and region.code not in screened:
                continue
            key = (joined, at, region.code)
            ok = self._cache.get(key)
            if ok is None:
                ok = self._cache[key] = self._may_match(region, joined, starts, mode)
            if ok:
                yield region.code

    def _may_match(self, region: _Region, digits: str, starts: list[int],
                   mode: int = _ANY_MODE) -> bool:
        """Whether some digit string the matcher parses in the core can be valid for
        ``region``: the digits from block start ``b`` to block end ``j`` (``mode``: which
        ``(b, j)`` the matcher can produce, see :data:`_SPLIT`)."""
        n = len(digits)
        ends = [n] if mode == _WHOLE_MODE else [*starts[1:], n]
        # Without digit-inserting transform rules the nsn is a substring of the number, so
        # the number is at least as long as the shortest possible nsn.
        shortest = 2
        if region.substring and region.lengths:
            shortest = max(2, min(region.lengths))
        for i, b in enumerate(starts):
            if region.idd is not None and region.idd.match(digits, b):
                return True  # international prefix: any country code
            np_at_start = region.np_conservative or bool(
                region.np_prefix is not None and region.np_prefix.match(digits, b))
            for j in ((ends[i], n) if mode == _SPLIT_MODE else ends):
                if j - b >= shortest and self._number_ok(region, digits[b:j], np_at_start):
                    return True
        return False

    def _number_ok(self, region: _Region, number: str, np_at_start: bool) -> bool:
        """Whether ``number`` (a candidate's digits without an international prefix) can
        parse to a valid number for ``region`` (memoised: dates and years repeat)."""
        memo = self._numbers.setdefault(region.code, {})
        key = (number, np_at_start)
        ok = memo.get(key)
        if ok is not None:
            return ok
        ok = False
        # (nsn, came from the default country with no national prefix stripped)
        if self._nsn_ok(region, number) and (
                np_at_start or not self._needs_np(region, number)):
            ok = True
        elif number.startswith(region.cc) and self._cc_path_ok(region,
                                                                number[len(region.cc):]):
            ok = True
        elif any(self._nsn_ok(region, n) for n in self._stripped(region, number)):
            ok = True
        if len(memo) > 100_000:
            memo.clear()
        memo[key] = ok
        return ok

    def _cc_path_ok(self, region: _Region, rest: str) -> bool:
        """Whether the digits after a leading calling code (no plus sign) can be a valid nsn:
        ``parse`` strips a national prefix there (``_maybe_extract_country_code``) and may
        strip one again (``parse`` itself): ``4900283217839419`` is DE ``283217839419``."""
        if self._nsn_ok(region, rest):
            return True
        for once in self._stripped(region, rest):
            if self._nsn_ok(region, once) or any(
                    self._nsn_ok(region, twice) for twice in self._stripped(region, once)):
                return True
        return False

    def _stripped(self, region: _Region, number: str) -> tuple[str, ...]:
        """``number`` minus a national prefix / carrier code, as the library strips it with
        the default or the main region's metadata."""
        memo = self._strips.setdefault(region.code, {})
        hit = memo.get(number)
        if hit is not None:
            return hit
        out = []
        for md, npfp in zip(region.metadata, region.np_parsing, strict=True):
            if npfp is None or not npfp.match(number):
                continue  # the library would not strip either
            stripped = _lib().strip_np(number, md)
            if stripped[2]:
                out.append(stripped[1])
        if len(memo) > 100_000:
            memo.clear()
        memo[number] = hit = tuple(out)
        return hit

    def _nsn_ok(self, region: _Region, nsn: str) -> bool:
        """``_number_type_helper(nsn) != UNKNOWN`` in some region of the calling code."""
        if len(nsn) < 2 or (region.lengths is not None and len(nsn) not in region.lengths):
            return False  # the general desc's possible lengths
        memo = self._types.setdefault(region.cc, {})
        ok = memo.get(nsn)
        if ok is None:
            ok = bool(region.general.fullmatch(nsn)) and any(
                _has_type(nsn, checks) for checks in region.type_checks)
            if len(memo) > 100_000:
                memo.clear()
            memo[nsn] = ok
        return ok

    @staticmethod
    def _needs_np(region: _Region, nsn: str) -> bool:
        """True when the matcher's ``_is_national_prefix_present_if_required`` would demand a
        national prefix for ``nsn`` (written without one)."""
        if region.main is None:
            return False
        lib = _lib()
        rule = lib.choose_format(region.main.number_format, nsn)
        if rule is None or not rule.national_prefix_formatting_rule:
            return False
        if rule.national_prefix_optional_when_formatting:
            return False
        return not lib.first_group_only(rule.national_prefix_formatting_rule)

    # --- matching ----------------------------------------------------------------------
    def find(self, window: str, regions: Iterable[str],
             core: tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """Spans the recognizer reports in ``window`` (its regions, duplicates and
        contained spans removed as ``EntityRecognizer.remove_duplicates`` does).

        ``core``: the ``[lo, hi)`` holding every candidate of the window. A match starts at a
        candidate's first character (lead class or digit) or inside it, and ends at a digit,
        letter or ``#`` (the matcher trims the rest), so once one region's match spans from
        the core's first such start to its last such end, every other region's matches lie
        inside it and would be dropped as contained: the remaining regions are skipped.
        """
        import phonenumbers

        first = last = -1
        if core is not None:
            lo, hi = core
            starts = [i for i in range(lo, hi) if _can_start(window[i])]
            ends = [i + 1 for i in range(lo, hi) if _can_end(window[i])]
            if starts and ends:
                first, last = starts[0], ends[-1]
        spans: set[tuple[int, int]] = set()
        for region in regions:
            self.runs += 1
            for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                spans.add((m.start, m.end))
            if first >= 0 and any(s <= first and e >= last for s, e in spans):
                break
        ordered = sorted(spans, key=lambda s: (s[0], -(s[1] - s[0])))
        kept: list[tuple[int, int]] = []
        for s, e in ordered:
            if any(ks <= s and e <= ke for ks, ke in kept):
                continue
            kept.append((s, e))
        return sorted(kept)


@lru_cache(maxsize=1)
def _lead_class() -> re.Pattern[str]:
    from phonenumbers.phonenumbermatcher import _LEAD_CLASS_CHARS

    return re.compile(f"[{_LEAD_CLASS_CHARS}]|\\d", re.UNICODE)


def _can_start(char: str) -> bool:
    """May a match of the matcher start here (its candidates start at a lead-class
    character or a digit; inner matches start later)."""
    return _lead_class().match(char) is not None


def _can_end(char: str) -> bool:
    """May a match end with this character (a superset of ``[\\p{N}\\p{L}#]``)."""
    return char.isalpha() or char.isnumeric() or char == "#"
