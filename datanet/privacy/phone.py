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
The filter tries every such ``nsn`` with the library's ``_number_type_helper``; it answers
"maybe" for anything outside those assumptions, so it only ever removes regions in which the
matcher has nothing to find. Survivors run the real matcher, one region at a time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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
    cc_regions: tuple  # metadata of every region sharing the calling code
    np_prefix: re.Pattern[str] | None  # national_prefix_for_parsing of the main region
    np_conservative: bool


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
            self._info.append(_Region(
                code=code,
                cc=str(cc),
                idd=re.compile(md.international_prefix) if md.international_prefix else None,
                metadata=tuple(m for m in (md, main) if m is not None),
                cc_regions=others,
                np_prefix=re.compile(npfp) if npfp else None,
                np_conservative=bool(npfp and re.search(r"\$|\(\?[=!<]", npfp)),
            ))
        self._cache: dict[tuple[str, tuple[int, ...]], tuple[str, ...]] = {}

    # --- filter ------------------------------------------------------------------------
    def candidate_regions(self, core: str) -> tuple[str, ...]:
        """Regions whose matcher may match inside ``core`` (the window minus its context)."""
        if not self.filtering or _SPECIAL.search(core) or not core.isascii():
            return self.regions
        digits: list[str] = []
        starts: list[int] = []
        pos = 0
        for m in _BLOCK.finditer(core):
            block = m.group()
            if len(block) > _MAX_BLOCK:
                return self.regions
            starts.append(pos)
            digits.append(block)
            pos += len(block)
        key = ("".join(digits), tuple(starts))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            hit = tuple(r.code for r in self._info if self._may_match(r, key[0], starts))
            self._cache[key] = hit
        return hit

    def _may_match(self, region: _Region, digits: str, starts: list[int]) -> bool:
        from phonenumbers.phonenumberutil import (
            PhoneNumberType,
            _maybe_strip_national_prefix_carrier_code,
            _number_type_helper,
        )

        ends = [*starts[1:], len(digits)]
        for b in starts:
            if region.idd is not None and region.idd.match(digits, b):
                return True  # international prefix: any country code
            np_at_start = region.np_conservative or bool(
                region.np_prefix is not None and region.np_prefix.match(digits, b))
            for j in ends:
                if j - b < 2:
                    continue
                number = digits[b:j]
                # (nsn, came from the default country without a national prefix stripped)
                options: list[tuple[str, bool]] = [(number, True)]
                if number.startswith(region.cc):
                    options.append((number[len(region.cc):], False))
                nsns: list[tuple[str, bool]] = []
                for n, default in options:
                    nsns.append((n, default))
                    for md in region.metadata:
                        stripped = _maybe_strip_national_prefix_carrier_code(n, md)
                        if stripped[2]:
                            nsns.append((stripped[1], False))
                for nsn, unstripped_default in nsns:
                    if len(nsn) < 2:
                        continue
                    if not any(_number_type_helper(nsn, md) != PhoneNumberType.UNKNOWN
                               for md in region.cc_regions):
                        continue
                    if unstripped_default and not np_at_start and self._needs_np(region, nsn):
                        continue
                    return True
        return False

    @staticmethod
    def _needs_np(region: _Region, nsn: str) -> bool:
        """True when the matcher's ``_is_national_prefix_present_if_required`` would demand a
        national prefix for ``nsn`` (written without one)."""
        from phonenumbers.phonenumberutil import (
            _choose_formatting_pattern_for_number,
            _formatting_rule_has_first_group_only,
        )

        main = region.metadata[-1]
        rule = _choose_formatting_pattern_for_number(main.number_format, nsn)
        if rule is None or not rule.national_prefix_formatting_rule:
            return False
        if rule.national_prefix_optional_when_formatting:
            return False
        return not _formatting_rule_has_first_group_only(rule.national_prefix_formatting_rule)

    # --- matching ----------------------------------------------------------------------
    def find(self, window: str, regions: Sequence[str]) -> list[tuple[int, int]]:
        """Spans the recognizer reports in ``window`` (its regions, duplicates and
        contained spans removed as ``EntityRecognizer.remove_duplicates`` does)."""
        import phonenumbers

        spans: set[tuple[int, int]] = set()
        for region in regions:
            for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                spans.add((m.start, m.end))
        ordered = sorted(spans, key=lambda s: (s[0], -(s[1] - s[0])))
        kept: list[tuple[int, int]] = []
        for s, e in ordered:
            if any(ks <= s and e <= ke for ks, ke in kept):
                continue
            kept.append((s, e))
        return sorted(kept)
