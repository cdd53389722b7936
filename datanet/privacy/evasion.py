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
and :func:`needs_rewrite` finds the records that need the Python rewrite with one vectorised
RE2 pass over the batch.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import regex

from datanet.privacy.normalise import INVISIBLE_RE
from datanet.privacy.offsets import Edit, MappedText

__all__ = ["detection_view", "needs_rewrite", "fold_table", "REWRITE_HINT_RE2"]

# A grapheme-ish cluster that NFKC / folding may change: a non-ASCII character with its
# combining marks, or an ASCII base followed by combining marks.
_CLUSTER_RE = regex.compile(r"[^\x00-\x7f]\p{M}*|[\x00-\x7f]\p{M}+")
_INVISIBLE = re.compile(INVISIBLE_RE)

_AT_OBF = r"\s*[\(\[\{<]\s*at\s*[\)\]\}>]\s*|\s+@\s*|\s*@\s+"
# A dot with a blank before it ("example . com"); ". " alone is a sentence end, not a dot.
_DOT_OBF = r"\s*[\(\[\{<]\s*dot\s*[\)\]\}>]\s*|\s+dot\s+|\s+\.\s*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_LOCAL = r"[a-z0-9][a-z0-9._%+-]*"
#: local part, an at (plain ``' at '`` or obfuscated), then labels joined by dots.
_EMAIL_OBF = re.compile(
    rf"(?<![\w.@])(?P<local>{_LOCAL}(?:(?:{_DOT_OBF}){_LOCAL})*)(?P<at>{_AT_OBF}|\s+at\s+)"
    rf"(?P<domain>{_LABEL}(?:(?:{_DOT_OBF}|\.){_LABEL})+)(?![\w@])"
    rf"(?!(?:{_AT_OBF}|\s+at\s+)[a-z0-9])",  # "a line at ravi dot walker at gmail dot com"
    re.IGNORECASE,
)
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

#: RE2 (pyarrow) pattern true for every record whose view may differ from the record.
REWRITE_HINT_RE2 = (
    r"(?i)[^\x00-\x7f]|[\(\[\{<]\s*(?:at|dot)\s*[\)\]\}>]|\sdot\s|\s@|@\s|\w\s+\.\s*\w"
    r"|\d[ \t]+\d[ \t]+\d"
    r"|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)[\s,-]+"
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)[\s,-]+"
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b"
)


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


def _fold_cluster(cluster: str) -> str:
    out = unicodedata.normalize("NFKC", cluster).translate(fold_table())
    return _INVISIBLE.sub("", out)


def _unicode_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    for m in _CLUSTER_RE.finditer(text):
        cluster = m.group()
        folded = _fold_cluster(cluster)
        if folded != cluster:
            edits.append((m.start(), m.end(), folded))
    return edits


def _email_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    for m in _EMAIL_OBF.finditer(text):
        at = m.group("at")
        at_obfuscated = at.strip().lower() != "at"
        dots = [(m.start(part) + d.start(), m.start(part) + d.end())
                for part in ("local", "domain")
                for d in _DOT_ANY.finditer(m.group(part)) if d.group() != "."]
        labels = _DOT_ANY.split(m.group("domain"))
        if not (at_obfuscated or dots) or not _TLD.fullmatch(labels[-1]):
            continue  # plain "at example.com" prose, or no TLD-like last label
        edits.append((m.start("at"), m.end("at"), "@"))
        edits.extend((s, e, ".") for s, e in dots)
    return edits


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


def detection_view(text: str) -> MappedText:
    """The detection view of one original text, with offsets back to it."""
    view = MappedText.identity(text)
    if not text.isascii():
        view = view.apply(_unicode_edits(text))
    view = view.apply(_spelled_edits(view.text))
    view = view.apply(_email_edits(view.text))
    return view.apply(_digit_edits(view.text))


def needs_rewrite(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Vectorised: records whose detection view may differ from the text (RE2 prefilter)."""
    return pc.fill_null(pc.match_substring_regex(texts, REWRITE_HINT_RE2), False)
