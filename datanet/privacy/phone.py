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

Without a ``+`` / letters / non-ASCII characters at the start of a digit block, ``cc`` is
the region's own code (or, after the region's international prefix, a known calling code
that starts the rest: then the rest must be a valid nsn of it), the number starts at a
digit block and ends at one (the matcher's candidates, inner matches and extensions are cut
at punctuation), and ``nsn`` is that digit string, optionally minus the country code,
optionally with the national prefix stripped by the library's own
``_maybe_strip_national_prefix_carrier_code``.
The filter tries every such ``nsn`` against the metadata's general and number-type
descriptions (what ``_number_type_helper`` checks, precompiled); it answers "maybe" for
anything outside those assumptions, so it only ever removes regions in which the matcher has
nothing to find. Survivors run the real matcher, one region at a time, until one region's
match covers the whole window (see :meth:`PhoneFinder.find`).

Most candidates in prose are *whole candidates* (:data:`_WHOLE`: years, amounts, dates,
order numbers — digit blocks joined by single hyphens), which the matcher parses as one
string with no inner matches. For them only that whole digit string is tried. Blocks
joined by single blanks or full stops (:data:`_SPLIT`: cards, IPs, spaced phone numbers) are
parsed as the whole run, each block alone, or a block and the rest — the last only after a
match of the block before it, which the filter would already have accepted — so only the
whole run and the single blocks are tried.

Both kinds are first screened for the whole batch (:meth:`PhoneFinder.screen_array`), each
distinct digit string once: strings of up to 5 digits (years, amounts: most of them) by a
table of every such string built at setup, longer ones by anchored RE2 passes (the string
fits a number-type pattern of the calling code and, written without a national prefix, its
format rule does not require one; or it starts with the calling code / a national prefix
followed by one, or with an international prefix). A run no region survives gets no window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PhoneFinder"]

_BLOCK = re.compile(r"[0-9]+")
_SPECIAL = re.compile(r"[^0-9 ()\[\]./\-~]")  # anything but digits and plain punctuation
#: The matcher's digit blocks hold at most 20 digits (``_DIGIT_BLOCK_LIMIT``); a longer run
#: may be cut mid-block, which the filter does not model.
_MAX_BLOCK = 20


@dataclass(frozen=True)
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
    #: every number-type pattern of the calling code in one regex (a necessary condition,
    #: one fullmatch instead of one per region and type)
    types_any: re.Pattern[str]
    #: RE2 screens for a whole-candidate core's digits N (see :data:`_WHOLE`), None: no
    #: screen. ``rest_screen``: N is a calling code / national prefix(es) followed by a
    #: number-type pattern of the calling code, or starts with a prefix that can lead to one
    #: (a transform rule's or an international prefix). ``t_screen``: N itself fits a
    #: number-type pattern; then ``np_screen`` (N starts with a national prefix; None: the
    #: region has none, or its prefix pattern is not RE2) or the rule of N's format
    #: (``formats``) must allow it.
    rest_screen: str | None = None
    t_screen: str | None = None
    np_screen: str | None = None
    #: ``(leading digits, pattern, national prefix required)`` per format of the main
    #: region, as RE2 (empty: no format requires the national prefix)
    formats: tuple = ()
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
#: Digit strings this short are screened by table lookup (:meth:`PhoneFinder.short_table`);
#: their table index is value + _SHORT_BASE[length].
_SHORT = 5
_SHORT_BASE = np.array([0] + [sum(10 ** k for k in range(1, n)) for n in range(1, _SHORT + 1)],
                       dtype=np.int64)
#: The same, anchored, for RE2 over a batch (both patterns are valid in RE2 and ``re``).
_WHOLE_RE2 = f"^{_WHOLE.pattern}$"
_SPLIT_RE2 = f"^{_SPLIT.pattern}$"


@dataclass(frozen=True)
class _Lib:
    """The python-phonenumbers internals the filter reuses (imported once)."""

    strip_np: Any
    choose_format: Any
    first_group_only: Any
    calling_codes: Any
    region_for_code: Any


@lru_cache(maxsize=1)
def _lib() -> _Lib:
    from phonenumbers.phonenumberutil import (
        COUNTRY_CODE_TO_REGION_CODE,
        _choose_formatting_pattern_for_number,
        _formatting_rule_has_first_group_only,
        _maybe_strip_national_prefix_carrier_code,
        region_code_for_country_code,
    )

    return _Lib(_maybe_strip_national_prefix_carrier_code,
                _choose_formatting_pattern_for_number, _formatting_rule_has_first_group_only,
                COUNTRY_CODE_TO_REGION_CODE, region_code_for_country_code)


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


def _re2(arr: Any, rows: Any, pattern: str) -> Any:
    """Numpy mask: ``pattern`` (RE2) matches ``arr[rows]`` (``rows`` None: every row)."""
    if rows is None:
        sub = arr
    elif rows.size == 0:
        return np.zeros(0, dtype=bool)
    else:
        sub = arr if rows.size == len(arr) else pc.take(arr, pa.array(rows))
    return pc.fill_null(pc.match_substring_regex(sub, pattern), False).to_numpy(
        zero_copy_only=False)


def _format_screens(main: Any) -> tuple:
    """``(leading digits, pattern, national prefix required)`` per number format of
    ``main``, as anchored RE2 patterns; empty when no format requires the prefix."""
    if main is None:
        return ()
    out = []
    for nf in main.number_format:
        ldp = f"^(?:{nf.leading_digits_pattern[-1]})" if nf.leading_digits_pattern else None
        out.append((ldp, f"^(?:{nf.pattern})$", _requires_prefix(nf)))
    return tuple(out) if any(needs for *_, needs in out) else ()


def _requires_prefix(nf: Any) -> bool:
    """Whether a number written in format ``nf`` without its national prefix fails the
    matcher's ``_is_national_prefix_present_if_required``."""
    rule = nf.national_prefix_formatting_rule
    return bool(rule) and not nf.national_prefix_optional_when_formatting and not (
        _lib().first_group_only(rule))


def _format_needs_np(formats: tuple, digits: Any, rows: Any) -> Any:
    """Numpy mask over ``rows``: the format ``_choose_formatting_pattern_for_number``
    picks for the digit string (the first whose last leading-digits pattern matches at the
    start and whose pattern matches in full) requires the national prefix."""
    sub = digits if rows.size == len(digits) else pc.take(digits, pa.array(rows))
    needs = np.zeros(rows.size, dtype=bool)
    open_ = np.ones(rows.size, dtype=bool)
    for k, (ldp, pattern, required) in enumerate(formats):
        if not open_.any() or not any(r for *_, r in formats[k:]):
            break  # no later format requires the prefix
        chosen = open_ & _re2(sub, None, pattern)
        if ldp is not None:
            chosen &= _re2(sub, None, ldp)
        needs[chosen] = required
        open_ &= ~chosen
    return needs


@cache
def _region_info(code: str) -> _Region | None:
    """What the filter needs of region ``code`` (None: no metadata or calling code);
    shared by every finder, so never modified."""
    from phonenumbers.phonemetadata import PhoneMetadata
    from phonenumbers.phonenumberutil import (
        COUNTRY_CODE_TO_REGION_CODE,
        country_code_for_region,
        region_code_for_country_code,
    )

    md = PhoneMetadata.metadata_for_region(code, None)
    cc = country_code_for_region(code)
    if md is None or cc == 0:
        return None
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
    types_all = [d.national_number_pattern for m in others for t in _TYPES
                 if (d := getattr(m, t, None)) is not None and d.national_number_pattern]
    types_any = "|".join(f"(?:{t})" for t in types_all) or "(?!)"
    np_conservative = bool(npfp and re.search(r"\$|\(\?[=!<]", npfp))
    rest_screen = t_screen = np_screen = None
    formats: tuple = ()
    if substring and general:
        # _number_ok's ways to a valid nsn from the whole digit string N, each of which
        # needs the nsn to fit one number-type pattern T of the calling code: N itself
        # (then the national prefix must be present if the format rule requires it,
        # see ``formats``); N minus a national prefix; N minus the calling code, then
        # minus a national prefix once or twice (_cc_path_ok). A prefix is stripped
        # by some npfp (RE2 asks whether any match length works); a transform rule
        # may take the nsn from inside the prefix match, so then only the prefix is
        # required. Or N starts with an international prefix (then any calling code
        # follows). T is written once per pattern (RE2 compiles per call).
        t_any = f"(?:{types_any})"
        if len(t_any) > _TYPES_RE2_MAX:  # a valid nsn fits the general desc too
            t_any = f"(?:{general})"
        t_screen = f"^{t_any}$"
        heads = [f"(?:{cc})"]
        prefix_only = []
        npfps = [(m.national_prefix_for_parsing, bool(m.national_prefix_transform_rule))
                 for m in mds if m.national_prefix_for_parsing]
        for npfp, transform in npfps:
            (prefix_only if transform else heads).extend(
                [f"(?:{npfp})", f"(?:{cc})(?:{npfp})"])
            for npfp2, transform2 in ([] if transform else npfps):
                (prefix_only if transform2 else heads).append(
                    f"(?:{cc})(?:{npfp})(?:{npfp2})")
        alts = [f"^(?:{'|'.join(dict.fromkeys(heads))}){t_any}$"]
        if prefix_only:
            alts.append(f"^(?:{'|'.join(dict.fromkeys(prefix_only))})")
        if md.international_prefix:
            alts.append(f"^(?:{md.international_prefix})")
        rest_screen = "|".join(alts)
        if npfp and not np_conservative:
            np_screen = f"^(?:{npfp})"
        formats = _format_screens(main)
    return _Region(
        code=code,
        cc=str(cc),
        idd=re.compile(md.international_prefix) if md.international_prefix else None,
        metadata=mds,
        main=main,
        cc_regions=others,
        np_prefix=re.compile(npfp) if npfp else None,
        np_conservative=np_conservative,
        lengths=lengths,
        general=re.compile(general or "(?!)"),
        np_parsing=tuple(re.compile(m.national_prefix_for_parsing)
                         if m.national_prefix_for_parsing else None for m in mds),
        rest_screen=rest_screen,
        t_screen=t_screen,
        np_screen=np_screen,
        formats=formats,
        idd_screen=f"^(?:{md.international_prefix})" if md.international_prefix else None,
        substring=substring,
        type_checks=tuple(_type_checks(m) for m in others),
        types_any=re.compile(types_any),
    )


class PhoneFinder:
    """``PhoneNumberMatcher`` results for windows, with a proven-superset region filter."""

    def __init__(self, regions: Sequence[str], leniency: int, score: float, entity: str):
        from phonenumbers import Leniency

        self.regions = tuple(regions)
        self.leniency = leniency
        self.score = score
        self.entity = entity
        #: the filter's reasoning is about VALID; other leniencies run every region.
        self.filtering = leniency == Leniency.VALID
        self._info: list[_Region] = []
        for code in self.regions:
            info = _region_info(code)
            if info is None:
                self.filtering = False
                break
            self._info.append(info)
        #: regions whose screen patterns RE2 rejected (screened in Python only)
        self._unscreenable: set[str] = set()
        self._short: Any = None
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
        if self.filtering:
            self.short_table()
        self._cache.clear()
        self._types.clear()
        self._strips.clear()
        self._numbers.clear()
        self.runs = 0

    # --- filter ------------------------------------------------------------------------
    def screen(self, cores: Sequence[str]) -> list[frozenset[str] | None]:
        """Vectorised (RE2 over the batch) first cut per core: for a whole-candidate core
        (:data:`_WHOLE`), the regions in which its digit string fits a number type or starts
        with a prefix that can lead to one; for a split core (:data:`_SPLIT`), those of the
        whole run or any block; ``None``: not screened (all regions)."""
        if not self.filtering or not cores:
            return [None] * len(cores)
        return self.region_sets(self.screen_array(pa.array(cores, pa.string())))

    def region_sets(self, keep: Any) -> list[frozenset[str] | None]:
        """Rows of a :meth:`screen_array` mask as region sets (None: every region)."""
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

    def screen_array(self, cores: Any) -> Any:
        """:meth:`screen` of an Arrow string array, as a (core, region) numpy mask (rows of
        cores that are neither whole candidates nor split ones: all True)."""
        keep = np.ones((len(cores), len(self._info)), dtype=bool)
        if not self.filtering or len(cores) == 0:
            return keep
        whole = _re2(cores, None, _WHOLE_RE2)
        split = ~whole & _re2(cores, None, _SPLIT_RE2)
        rows = np.flatnonzero(whole | split)
        if rows.size == 0:
            # Other cores go unscreened: an unanchored RE2 search of the general descs costs
            # more per core than the Python filter it would spare.
            return keep
        # The digit strings the matcher parses (see _WHOLE, _SPLIT): a whole candidate's
        # digits; for blocks joined by blanks or full stops, the whole run and every block.
        sub = pc.take(cores, pa.array(rows))
        digits = sub
        for sep in "-. ":  # the only non-digits of these cores (literal passes, no regex)
            digits = pc.replace_substring(digits, sep, "")
        strings = [digits]
        owners = [np.arange(rows.size)]
        split_rows = np.flatnonzero(split[rows])
        if split_rows.size:
            blocks = pc.split_pattern_regex(pc.take(sub, pa.array(split_rows)), r"[ .]+")
            flat = pc.list_flatten(blocks)
            parent = split_rows[pc.list_parent_indices(blocks).to_numpy()]
            nonempty = np.flatnonzero(pc.utf8_length(flat).to_numpy(zero_copy_only=False))
            strings.append(pc.take(flat, pa.array(nonempty)))
            owners.append(parent[nonempty])
        # each distinct digit string once (years and dates repeat)
        distinct = pa.chunked_array(strings).combine_chunks().dictionary_encode()
        masks = self._screen_distinct(distinct.dictionary)[
            distinct.indices.to_numpy(zero_copy_only=False)]
        found = np.zeros((rows.size, len(self._info)), dtype=bool)
        np.logical_or.at(found, np.concatenate(owners), masks)
        keep[rows] = found
        return keep

    def _screen_distinct(self, digits: Any) -> Any:
        """:meth:`_screen_whole`, from :meth:`short_table` for strings of up to
        :data:`_SHORT` digits (most of them: years, amounts)."""
        lengths = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
        short = np.flatnonzero(lengths <= _SHORT)
        if short.size == 0:
            return self._screen_whole(digits)
        keep = np.empty((len(digits), len(self._info)), dtype=bool)
        values = pc.cast(pc.take(digits, pa.array(short)), pa.int64()).to_numpy()
        keep[short] = self.short_table()[values + _SHORT_BASE[lengths[short]]]
        long = np.flatnonzero(lengths > _SHORT)
        if long.size:
            keep[long] = self._screen_whole(pc.take(digits, pa.array(long)))
        return keep

    def short_table(self) -> Any:
        """The screen of every digit string of 1 to :data:`_SHORT` digits, built once
        (setup): a pure function of the regions' metadata, looked up by value and length."""
        if self._short is None:
            strings = [f"{v:0{n}d}" for n in range(1, _SHORT + 1) for v in range(10 ** n)]
            self._short = self._screen_whole(pa.array(strings, pa.string()))
        return self._short

    def _screen_whole(self, digits: Any) -> Any:
        """Region mask for the digit strings of whole-candidate cores (what
        :meth:`_may_match` can accept, as a superset)."""
        keep = np.ones((len(digits), len(self._info)), dtype=bool)
        lengths = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
        done: dict[tuple, np.ndarray] = {}  # regions of one calling code alike
        for k, region in enumerate(self._info):
            if region.rest_screen is None or region.code in self._unscreenable:
                continue
            # Shorter than any nsn (a substring of the number): only an international prefix
            # can still lead to a valid number (as in _may_match).
            shortest = max(2, min(region.lengths)) if region.substring and region.lengths else 0
            key = (region.rest_screen, region.t_screen, region.np_screen, region.formats,
                   region.idd_screen, shortest)
            if key not in done:
                try:
                    done[key] = self._screen_region(region, digits, lengths < shortest)
                except pa.ArrowInvalid:  # not RE2-compatible: no screen for this region
                    self._unscreenable.add(region.code)
                    continue
            keep[:, k] = done[key]
        return keep

    @staticmethod
    def _screen_region(region: _Region, digits: Any, short: Any) -> Any:
        """Region mask of ``_screen_whole`` for one region (``short``: shorter than its
        shortest nsn)."""
        hit = np.zeros(len(digits), dtype=bool)
        if region.idd_screen:
            rows = np.flatnonzero(short)
            hit[rows] = _re2(digits, rows, region.idd_screen)
        rows = np.flatnonzero(~short)
        hit[rows] = _re2(digits, rows, region.rest_screen)
        rows = rows[~hit[rows]]
        if rows.size and region.t_screen:
            rows = rows[_re2(digits, rows, region.t_screen)]
            if rows.size and region.formats and not region.np_conservative:
                # N itself is the nsn and came from the default country: the national prefix
                # must be present if N's format rule requires it (_needs_np).
                no_np = rows if region.np_screen is None else rows[
                    ~_re2(digits, rows, region.np_screen)]
                rows = np.setdiff1d(rows, no_np[_format_needs_np(region.formats, digits,
                                                                 no_np)])
            hit[rows] = True
        return hit

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
            np_at_start = region.np_conservative or bool(
                region.np_prefix is not None and region.np_prefix.match(digits, b))
            if mode != _SPLIT_MODE:
                spans = ends
            elif i == 0:
                spans = [ends[0], n]  # the first block alone, the whole run
            else:
                # A later block alone; the block and the rest of the run would be the next
                # candidate only after a match of the previous block alone, which returned.
                spans = [ends[i]]
            for j in spans:
                number = digits[b:j]
                if region.idd is not None and self._idd_ok(region, number):
                    return True
                if j - b >= shortest and self._number_ok(region, number, np_at_start):
                    return True
        return False

    def _idd_ok(self, region: _Region, number: str) -> bool:
        """Whether ``number`` can parse, through ``region``'s international prefix, to a
        valid number (``_maybe_extract_country_code``: the prefix is stripped unless a 0
        follows, more than 2 digits must remain, a known calling code must start them, and
        the rest be a valid nsn of it, possibly after a national prefix)."""
        m = region.idd.match(number) if region.idd is not None else None
        if m is None:
            return False
        rest = number[m.end():]
        if len(rest) <= 2 or rest[0] == "0":
            return False  # too short after the prefix, or parsed as a national number
        lib = _lib()
        for k in (1, 2, 3):
            if int(rest[:k]) in lib.calling_codes:
                break
        else:
            return False  # no calling code
        target = _region_info(lib.region_for_code(int(rest[:k])))
        if target is None:
            return True  # a non-geographic calling code: not modelled
        return self._cc_path_ok(target, rest[k:])

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
            ok = (region.types_any.fullmatch(nsn) is not None
                  and region.general.fullmatch(nsn) is not None
                  and any(_has_type(nsn, checks) for checks in region.type_checks))
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
        return rule is not None and _requires_prefix(rule)

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

        first = last = None
        spans: set[tuple[int, int]] = set()
        for region in regions:
            self.runs += 1
            for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                spans.add((m.start, m.end))
            if spans and core is not None:
                if first is None:
                    first, last = _core_reach(window, *core)
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


def _core_reach(window: str, lo: int, hi: int) -> tuple[int, int]:
    """The first position in ``window[lo:hi]`` a match can start at and the last it can end
    at (``(-1, -1)``: none)."""
    starts = [i for i in range(lo, hi) if _can_start(window[i])]
    ends = [i + 1 for i in range(lo, hi) if _can_end(window[i])]
    return (starts[0], ends[-1]) if starts and ends else (-1, -1)


def _can_start(char: str) -> bool:
    """May a match of the matcher start here (its candidates start at a lead-class
    character or a digit; inner matches start later)."""
    return _lead_class().match(char) is not None


def _can_end(char: str) -> bool:
    """May a match end with this character (a superset of ``[\\p{N}\\p{L}#]``)."""
    return char.isalpha() or char.isnumeric() or char == "#"
