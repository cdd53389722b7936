"""The detection view of a record: the text PII detection actually reads.

Cheap evasions are undone before detection, with every character mapped back to the
original text (:class:`~datanet.privacy.offsets.MappedText`):

* Unicode: NFKC per grapheme cluster (fullwidth digits, ligatures, circled digits),
  invisible / bidi controls removed (:data:`~datanet.privacy.normalise.INVISIBLE_RE`),
  homoglyphs folded to the ASCII character they imitate (Unicode TR39 confusables, shipped
  by ``confusable-homoglyphs``), any decimal digit to ASCII, non-ASCII spaces to ``' '``.
* Spelled-out e-mail syntax: ``john at example dot com``, ``john [at] example [dot] com``,
  ``john @ example . com`` become ``john@example.com``.
* Spaced-out digits: ``4 1 1 1 1 1 1 1 …`` loses the spaces (separators ``-./`` stay);
  seven or more spelled-out digits (``five zero three five …``) become digits.

The view of a plain ASCII record without such patterns is the record itself (identity map),
and :func:`rewrite_steps` finds the records (and the steps) that need the Python rewrite
with vectorised RE2 passes over the batch.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from datanet._memo import ArrayMemo
from datanet.privacy.normalise import INVISIBLE_RE
from datanet.privacy.offsets import Edit, MappedText

__all__ = ["detection_view", "folded_view", "detection_views", "needs_rewrite",
           "rewrite_steps", "fold_table", "STEP_HINTS_RE2", "fold_unicode", "dedup_keys"]

# A grapheme-ish cluster that NFKC / folding may change: a non-ASCII character with its
# combining marks, or an ASCII base followed by combining marks.
_CLUSTER_RE = regex.compile(r"[^\x00-\x7f]\p{M}*|[\x00-\x7f]\p{M}+")
_INVISIBLE = re.compile(INVISIBLE_RE)

_AT_OBF = r"\s*[\(\[\{<]\s*at\s*[\)\]\}>]\s*|\s+@\s*|\s*@\s+"
# A dot with a blank before it ("example . com"); ". " alone is a sentence end, not a dot.
_DOT_OBF = r"\s*[\(\[\{<]\s*dot\s*[\)\]\}>]\s*|\s+dot\s+|\s+\.\s*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_LOCAL = r"[a-z0-9][a-z0-9._%+-]*"
_AT_ANY = re.compile(rf"{_AT_OBF}|\s+at\s+", re.IGNORECASE)
#: What every _AT_ANY match holds; before it, only blanks and one opening bracket.
_AT_CORE = re.compile(r"at|@", re.IGNORECASE)
_AT_LEAD = frozenset("([{<")
#: the local part right before an at: words joined by (obfuscated) dots, ending the text.
_LOCAL_BEFORE = re.compile(rf"(?<![\w.@]){_LOCAL}(?:(?:{_DOT_OBF}){_LOCAL})*\Z", re.IGNORECASE)
#: the domain right after an at; not itself followed by another at
#: ("a line at ravi dot walker at gmail dot com" is ravi.walker@gmail.com).
_DOMAIN_AFTER = re.compile(
    rf"{_LABEL}(?:(?:{_DOT_OBF}|\.){_LABEL})+(?![\w@])(?!(?:{_AT_OBF}|\s+at\s+)[a-z0-9])",
    re.IGNORECASE,
)
_LOCAL_REACH = 128
_DOT_ANY = re.compile(rf"{_DOT_OBF}|\.", re.IGNORECASE)
_TLD = re.compile(r"[a-z]{2,24}", re.IGNORECASE)
#: at least seven single digits separated by blanks (and optionally - . /).
_SPACED_DIGITS = re.compile(r"(?<!\w)\d(?:[ \t]*[-./]?[ \t]*\d(?!\d)){6,}(?!\w)")
_BLANKS = re.compile(r"[ \t]+")
_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_WORD = "(?:" + "|".join(_DIGIT_WORDS) + ")"
#: at least seven spelled-out digits in a row ("five zero three five five five ...").
_SPELLED_DIGITS = re.compile(rf"\b{_WORD}(?:[\s,-]+{_WORD}){{6,}}\b", re.IGNORECASE)
_ONE_WORD = re.compile(_WORD, re.IGNORECASE)



@lru_cache(maxsize=1)
def fold_table() -> dict[int, str]:
    """``str.translate`` table: homoglyphs, non-ASCII digits and spaces to ASCII."""
    from confusable_homoglyphs import confusables

    table: dict[int, str] = {}
    for target, glyphs in confusables.confusables_data.items():
        if len(target) != 1 or not target.isascii() or not target.isprintable():
            continue
        if target.isspace():
            continue
        for glyph in glyphs:
            char = glyph["c"]
            if len(char) == 1 and not char.isascii():
                table[ord(char)] = target
    for code in range(0x80, 0x30000):
        char = chr(code)
        cat = unicodedata.category(char)
        if cat == "Nd":
            table[code] = str(unicodedata.decimal(char))
        elif cat == "Zs" or char in "\u0085\u2028\u2029":
            table[code] = " "
    return table


@lru_cache(maxsize=65536)
def _fold_cluster(cluster: str) -> str:
    out = unicodedata.normalize("NFKC", cluster).translate(fold_table())
    return _INVISIBLE.sub("", out)


_MARK_RE = regex.compile(r"\p{M}")  # the same Unicode data as _CLUSTER_RE


@lru_cache(maxsize=65536)
def _char_info(char: str) -> tuple[str, bool]:
    """A non-ASCII character's fold when it stands alone, and whether it is a combining
    mark (then it joins a cluster)."""
    return _fold_cluster(char), _MARK_RE.match(char) is not None


def _unicode_edits(text: str, runs: tuple[list[int], list[int]] | None = None) -> list[Edit]:
    """Edits folding the non-ASCII characters of ``text``; ``runs``: the starts and ends
    of its runs of non-ASCII characters, if known (:func:`_non_ascii_runs`)."""
    edits: list[Edit] = []
    starts, ends = runs if runs is not None else _non_ascii_runs([text])[0]
    # Combining marks are non-ASCII, so every cluster lies in a run of non-ASCII characters
    # or starts at the ASCII character just before one.
    for lo, hi in zip(starts, ends, strict=True):
        infos = [_char_info(char) for char in text[lo:hi]]
        if any(mark for _, mark in infos):
            for m in _CLUSTER_RE.finditer(text, max(lo - 1, 0), hi):
                cluster = m.group()
                folded = _fold_cluster(cluster)
                if folded != cluster:
                    edits.append((m.start(), m.end(), folded))
        else:  # no combining mark: every character is a cluster of its own
            for pos, (folded, _) in enumerate(infos, lo):
                if folded != text[pos]:
                    edits.append((pos, pos + 1, folded))
    return edits


def _non_ascii_runs(texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """Per text, the starts and ends of its runs of non-ASCII characters: one numpy pass
    over the code points of all the texts (not a regex scan per text)."""
    points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    bounds = np.cumsum([0, *map(len, texts)])
    where = np.flatnonzero(points > 0x7F)
    # a run ends where the next non-ASCII character is not adjacent or in another text
    doc = np.searchsorted(bounds, where, side="right") - 1
    cut = np.flatnonzero((np.diff(where) != 1) | (np.diff(doc) != 0))
    first = np.concatenate(([0], cut + 1)) if where.size else where
    last = np.concatenate((cut, [where.size - 1])) if where.size else where
    run_doc = doc[first].tolist()
    run_lo = (where[first] - bounds[doc[first]]).tolist()
    run_hi = (where[last] + 1 - bounds[doc[first]]).tolist()
    out: list[tuple[list[int], list[int]]] = [([], []) for _ in texts]
    for d, lo, hi in zip(run_doc, run_lo, run_hi, strict=True):
        out[d][0].append(lo)
        out[d][1].append(hi)
    return out


def _at_matches(text: str) -> Iterator[re.Match[str]]:
    """``_AT_ANY.finditer(text)``, without trying the pattern at every position: a match
    holds an "at" / "@" and starts in the blanks and bracket right before it, so only
    those starts are tried (leftmost first, then on after the match, as finditer does)."""
    pos = 0
    while (core := _AT_CORE.search(text, pos)) is not None:
        p = core.start()
        lo = p
        while lo > pos and (text[lo - 1].isspace() or text[lo - 1] in _AT_LEAD):
            lo -= 1
        for start in range(lo, p + 1):
            m = _AT_ANY.match(text, start)
            if m is not None:
                yield m
                pos = m.end()
                break
        else:
            pos = p + 1


def _email_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    last = 0
    for at in _at_matches(text):
        if at.start() < last:
            continue
        dom = _DOMAIN_AFTER.match(text, at.end())
        if dom is None:
            continue
        lo = max(last, at.start() - _LOCAL_REACH)
        local = _LOCAL_BEFORE.search(text[lo:at.start()])
        if local is None:
            continue
        at_obfuscated = at.group().strip().lower() != "at"
        dots = [(lo + local.start() + d.start(), lo + local.start() + d.end())
                for d in _DOT_ANY.finditer(local.group()) if d.group() != "."]
        dots += [(dom.start() + d.start(), dom.start() + d.end())
                 for d in _DOT_ANY.finditer(dom.group()) if d.group() != "."]
        labels = _DOT_ANY.split(dom.group())
        if not (at_obfuscated or dots) or not _TLD.fullmatch(labels[-1]):
            continue  # plain "at example.com" prose, or no TLD-like last label
        edits.append((at.start(), at.end(), "@"))
        edits.extend((s, e, ".") for s, e in sorted(dots))
        last = dom.end()
    return sorted(edits)


def _digit_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    for m in _SPACED_DIGITS.finditer(text):
        base = m.start()
        edits.extend((base + b.start(), base + b.end(), "") for b in _BLANKS.finditer(m.group()))
    return edits


def _spelled_edits(text: str) -> list[Edit]:
    return [(m.start(), m.end(),
             "".join(_DIGIT_WORDS[w.lower()] for w in _ONE_WORD.findall(m.group())))
            for m in _SPELLED_DIGITS.finditer(text)]


#: Rewrite steps, as bits: which cheap evasions a record may contain.
UNICODE, SPELLED, EMAIL, SPACED = 1, 2, 4, 8
ALL_STEPS = UNICODE | SPELLED | EMAIL | SPACED
_WORDS_RE2 = "(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
#: RE2 (pyarrow) hint per step: true for every record the step could change.
STEP_HINTS_RE2 = {
    UNICODE: r"[^\x00-\x7f]",
    SPELLED: rf"(?i)\b{_WORDS_RE2}[\s,-]+{_WORDS_RE2}[\s,-]+{_WORDS_RE2}\b",
    EMAIL: r"(?i)[\(\[\{<]\s*(?:at|dot)\s*[\)\]\}>]|\sdot\s|\s@|@\s|\s\.",
    SPACED: r"\d[ \t]+\d[ \t]+\d|\d[ \t]*[-./][ \t]*\d[ \t]+\d",
}


_STEP_HINTS_PY = {bit: re.compile(p) for bit, p in STEP_HINTS_RE2.items() if bit != UNICODE}
#: Runs of the characters RE2 and Python's ``re`` read alike in the hint patterns: ASCII
#: but for \v and \x1c-\x1f (only ``re``'s ``\s`` has them). What is left once they are
#: removed is engine-specific (non-ASCII: Unicode ``\s`` / ``\d`` / ``\w`` / case folding).
_ENGINE_ALIKE_RUNS = r"[\x00-\x0a\x0c-\x1b\x20-\x7f]+"


@lru_cache(maxsize=1 << 16)
def _neutral_char(ch: str) -> str | None:
    r"""An ASCII stand-in that RE2 reads, in every hint pattern, as Python's ``re`` reads
    ``ch``; None when there is none (the text is then searched with ``re``).

    The hint patterns test a character only for: an ASCII letter under ``(?i)``, the
    ASCII punctuation and blanks they spell out, ``\s``, ``\d`` and ``\w`` (``\b``).
    ``ch``'s answers are asked of ``re`` itself, so its Unicode rules (``ſ`` is ``s`` under
    ``(?i)``, ``٣`` is ``\d``, ``\x1c`` is ``\s``) are what the stand-in copies:
    the letter itself, ``\f`` (only ``\s``), ``0`` (``\d``, ``\w``), ``_`` (only ``\w``)
    or ``#`` (none of them).
    """
    if _ANY_PUNCTUATION.fullmatch(ch):
        return None
    letters = ([x for x in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch("(?i)" + x, ch)]
               if _ANY_LETTER.fullmatch(ch) else [])
    space, digit, word = (re.fullmatch(c, ch) is not None for c in (r"\s", r"\d", r"\w"))
    if letters:
        return letters[0] if len(letters) == 1 and word and not space and not digit else None
    if space:
        return "\f" if not word and not digit else None
    if digit:
        return "0" if word else None
    return "_" if word else "#"


#: The ASCII punctuation and blanks a hint pattern may spell out (a stand-in is none of them).
_HINT_PUNCTUATION = string.punctuation + " \t"
#: One test each instead of one per character: over all of Unicode, ``(?i)[a-z]`` matches
#: exactly what one of ``(?i)a`` .. ``(?i)z`` matches, and likewise for the punctuation class.
_ANY_LETTER = re.compile("(?i)[a-z]")
_ANY_PUNCTUATION = re.compile("(?i)[" + re.escape(_HINT_PUNCTUATION) + "]")


def _engine_neutral(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``texts`` with every engine-specific character replaced by its :func:`_neutral_char`
    stand-in (one RE2 pass per stand-in), and per text whether that was possible for all of
    its characters: where it was, RE2's hint search on the result is ``re``'s on the text."""
    exact = np.ones(len(texts), dtype=bool)
    rest = pc.replace_substring_regex(texts, _ENGINE_ALIKE_RUNS, "")
    chars = sorted(set("".join(x for x in rest.to_pylist() if x)))
    if not chars:
        return texts, exact
    groups: dict[str | None, list[str]] = {}
    for ch in chars:
        groups.setdefault(_neutral_char(ch), []).append(ch)
    out = texts
    for stand_in, members in groups.items():
        cls = "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in members) + "]"
        if stand_in is None:
            hit = pc.fill_null(pc.match_substring_regex(texts, cls), False)
            exact &= ~np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
        else:
            out = pc.replace_substring_regex(out, cls, stand_in)
    return out, exact


def detection_view(text: str, steps: int = ALL_STEPS) -> MappedText:
    """The detection view of one original text, with offsets back to it.

    ``steps`` (from :func:`rewrite_steps`) skips rewrites a record cannot need; for a record
    with non-ASCII characters the hints are re-checked on the folded text (fullwidth
    ``［ａｔ］`` only shows its hint once folded).
    """
    if not text.isascii():
        view = _folded(text)
        steps = sum(bit for bit, hint in _STEP_HINTS_PY.items() if hint.search(view.text))
        return _rewrite(view, steps)
    return _rewrite(MappedText.identity(text), steps)


def folded_view(text: str) -> MappedText:
    """Only the Unicode step of :func:`detection_view` (NFKC per cluster, invisible characters
    removed, homoglyphs / digits / spaces folded to ASCII), with offsets back to ``text``."""
    return _folded(text) if not text.isascii() else MappedText.identity(text)


def _folded(text: str, runs: tuple[list[int], list[int]] | None = None) -> MappedText:
    return MappedText.identity(text).apply(_unicode_edits(text, runs))


def _rewrite(view: MappedText, steps: int) -> MappedText:
    if steps & SPELLED:
        view = view.apply(_spelled_edits(view.text))
    if steps & EMAIL:
        view = view.apply(_email_edits(view.text))
    if steps & SPACED:
        view = view.apply(_digit_edits(view.text))
    return view


def detection_views(texts: Sequence[str], steps: np.ndarray) -> list[MappedText]:
    """:func:`detection_view` of a batch, ``steps`` from :func:`rewrite_steps`: the
    re-check of the hints on folded non-ASCII records is one vectorised RE2 pass."""
    out = [MappedText.identity(t) for t in texts]
    todo = np.flatnonzero(steps)
    if todo.size == 0:
        return out
    folded = [int(i) for i in todo if steps[i] & UNICODE]
    for i, runs in zip(folded, _non_ascii_runs([texts[i] for i in folded]), strict=True):
        out[i] = _folded(texts[i], runs)
    new_steps = {int(i): int(steps[i]) for i in todo}
    if folded:
        mapped, exact = _engine_neutral(pa.array([out[i].text for i in folded], pa.string()))
        again = _hint_steps(mapped, ascii=True)
        for i, bits, same in zip(folded, again, exact, strict=True):
            if not same:
                text = out[i].text
                bits = sum(bit for bit, hint in _STEP_HINTS_PY.items() if hint.search(text))
            new_steps[i] = int(bits)
    for i, bits in new_steps.items():
        if bits & ~UNICODE:
            out[i] = _rewrite(out[i], bits)
    return out


def rewrite_steps(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Vectorised: per record, the bitmask of rewrite steps it may need (RE2 prefilters)."""
    return _hint_steps(texts, ascii=False)


#: One RE2 pass finds the records with any ASCII hint; the per-step passes run on those only.
_ANY_HINT_RE2 = "|".join(f"(?:{STEP_HINTS_RE2[bit]})" for bit in (SPELLED, EMAIL, SPACED))


def _hint_steps(texts: pa.Array | pa.ChunkedArray, ascii: bool) -> np.ndarray:
    """Step bits per record; ``ascii``: skip the UNICODE test (texts already folded)."""
    out = np.zeros(len(texts), dtype=np.int64)
    if len(texts) == 0:
        return out
    if not ascii:
        non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(texts), True))
        out |= np.asarray(non_ascii.to_numpy(zero_copy_only=False), dtype=np.int64) * UNICODE
    hit = pc.fill_null(pc.match_substring_regex(texts, _ANY_HINT_RE2), False)
    idx = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    if idx.size:
        sub = pc.take(texts, pa.array(idx))
        for bit in (SPELLED, EMAIL, SPACED):
            mask = pc.fill_null(pc.match_substring_regex(sub, STEP_HINTS_RE2[bit]), False)
            out[idx] |= np.asarray(mask.to_numpy(zero_copy_only=False), dtype=np.int64) * bit
    return out


def needs_rewrite(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vectorised: records whose detection view may differ from the text."""
    return pa.array(rewrite_steps(texts) != 0)


_FOLDED: ArrayMemo[pa.Array] = ArrayMemo()


def fold_unicode(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The Unicode step of the detection view over a batch: per grapheme cluster NFKC,
    homoglyphs to the ASCII letter they imitate, any decimal digit to ASCII, invisible
    characters removed. ASCII rows are returned as they are (the fold is the identity there);
    the rest go through the very code PII detection uses. The last batch's fold is kept per
    thread (near-duplicate, flood and exact dedup fold the same column)."""
    return _FOLDED.get(texts, None, _fold_unicode)


def _fold_unicode(texts: pa.Array) -> pa.Array:
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(texts), True))
    idx = np.flatnonzero(non_ascii.to_numpy(zero_copy_only=False))
    if idx.size == 0:
        return texts
    subset = pc.take(texts, pa.array(idx)).to_pylist()
    folded = [None if t is None else _folded(t, runs).text
              for t, runs in zip(subset, _non_ascii_runs([t or "" for t in subset]),
                                 strict=True)]
    return pc.replace_with_mask(texts, non_ascii, pa.array(folded, pa.string()))


def dedup_keys(text_norm: pa.Array | pa.ChunkedArray,
               content_hash: pa.Array | pa.ChunkedArray, *,
               folded: pa.Array | None = None) -> pa.Array:
    """Exact-duplicate keys: keccak256 of the :func:`fold_unicode` of the normalised text.

    A Cyrillic look-alike copy with zero-width spaces gets the key of its original. Where the
    fold changes nothing (every ASCII record) the key is the record's ``content_hash``, which
    is keccak256 of the same text, so ids, leaves and roots never depend on the fold.
    ``folded``: :func:`fold_unicode` of ``text_norm`` when the caller has it already.
    """
    from datanet.schemas.ids import content_hashes

    if isinstance(text_norm, pa.ChunkedArray):
        text_norm = text_norm.combine_chunks()
    if isinstance(content_hash, pa.ChunkedArray):
        content_hash = content_hash.combine_chunks()
    folded = fold_unicode(text_norm) if folded is None else folded
    changed = pc.fill_null(pc.not_equal(folded, text_norm), False)
    idx = np.flatnonzero(changed.to_numpy(zero_copy_only=False))
    if idx.size == 0:
        return content_hash
    keys = content_hashes(pc.take(folded, pa.array(idx)).to_pylist())
    return pc.replace_with_mask(content_hash, changed, pa.array(keys, pa.string()))
