"""Normalised tokens and their n-gram hashes, for records (vectorised) and outputs (with offsets).

A token is a maximal run of alphanumeric characters of the *folded* text: the Unicode step of
the PII detection view (:func:`datanet.privacy.evasion.folded_view`: NFKC per cluster,
invisible / bidi characters removed, TR39 homoglyphs, digits and spaces folded to ASCII), then
lower-cased; every other character (punctuation, whitespace) separates tokens. So a re-cased,
re-spaced or re-punctuated quote, or one typed with Cyrillic look-alikes, has the same tokens.

Hashes (stable on disk, scheme :data:`TOKENIZER`): a token is FNV-1a 64 over its UTF-8 bytes,
an n-gram is the polynomial ``sum(tok_j * P**(n-1-j))`` mod 2**64, both finalised with
MurmurHash3's ``fmix64``. ASCII records never leave the Arrow buffers (one compiled pass);
records with non-ASCII characters are folded in Python first (rare in most datanets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.privacy.evasion import fold_unicode, folded_view
from datanet.privacy.offsets import MappedText
from datanet.validators._kernels import radix_sort_pairs

__all__ = ["TOKENIZER", "OutputTokens", "clean_folded", "record_grams", "output_tokens",
           "gram_hashes", "sort_pairs", "dedup_sorted_pairs"]

#: Identifies the token and hash scheme; stored in every shard, checked at load.
TOKENIZER = "fold-lower-alnum/fnv1a64/poly64"

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_POLY = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, inline="always")
def _fmix64(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB93FE1A85EC5)
    h ^= h >> np.uint64(33)
    return h


def _byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per byte: whether it belongs to a token (ASCII letters and digits; any byte of a
    non-ASCII character: cleaned text keeps only alphanumeric non-ASCII characters, see
    :func:`clean_folded`), and its lower-case form (ASCII ``A-Z`` only)."""
    b = np.arange(256)
    word = (((b >= 48) & (b <= 57)) | ((b >= 65) & (b <= 90)) | ((b >= 97) & (b <= 122))
            | (b >= 128)).astype(np.uint8)
    lower = np.where((b >= 65) & (b <= 90), b + 32, b).astype(np.uint8)
    return word, lower


_WORD, _LOWER = _byte_tables()


@numba.njit(cache=True)
def _tokenize(data: np.ndarray, offsets: np.ndarray, word: np.ndarray, lower: np.ndarray,
              tok_offsets: np.ndarray, hashes: np.ndarray, starts: np.ndarray,
              ends: np.ndarray, spans: bool) -> int:
    # One pass into arrays sized for the most tokens the bytes can hold (a token and its
    # separator take >= 2 bytes): counting first doubled the time. Table lookups, not range
    # tests, per byte. ``spans`` False: ``starts`` / ``ends`` are not written (the index needs
    # only the hashes). The tokens written.
    n = len(offsets) - 1
    t = 0
    for r in range(n):
        tok_offsets[r] = t
        base = offsets[r]
        inside = np.uint8(0)
        h = _FNV_OFFSET
        for i in range(base, offsets[r + 1]):
            w = word[data[i]]
            if w:
                if not inside:
                    h = _FNV_OFFSET
                    if spans:
                        starts[t] = i - base
                h = (h ^ np.uint64(lower[data[i]])) * _FNV_PRIME
            elif inside:
                hashes[t] = _fmix64(h)
                if spans:
                    ends[t] = i - base
                t += 1
            inside = w
        if inside:
            hashes[t] = _fmix64(h)
            if spans:
                ends[t] = offsets[r + 1] - base
            t += 1
    tok_offsets[n] = t
    return t


@numba.njit(cache=True)
def _grams(tok: np.ndarray, tok_offsets: np.ndarray, k: int, out_offsets: np.ndarray,
           grams: np.ndarray, rows: np.ndarray) -> None:
    # rolling: h' = (h - first * P**(k-1)) * P + next, exact in uint64 (mod 2**64)
    top = np.uint64(1)
    for _ in range(k - 1):
        top = top * _POLY
    n = len(tok_offsets) - 1
    for r in range(n):
        lo = tok_offsets[r]
        m = tok_offsets[r + 1] - lo - k + 1
        if m <= 0:
            continue
        o = out_offsets[r]
        h = np.uint64(0)
        for j in range(k):
            h = h * _POLY + tok[lo + j]
        grams[o] = _fmix64(h)
        rows[o] = r
        for i in range(1, m):
            h = (h - tok[lo + i - 1] * top) * _POLY + tok[lo + i + k - 1]
            grams[o + i] = _fmix64(h)
            rows[o + i] = r


@numba.njit(cache=True)
def dedup_sorted_pairs(keys: np.ndarray, vals: np.ndarray) -> int:
    """Drop adjacent duplicate ``(key, val)`` pairs in place; the count kept."""
    n = len(keys)
    if n == 0:
        return 0
    w = 1
    for i in range(1, n):
        if keys[i] != keys[w - 1] or vals[i] != vals[w - 1]:
            keys[w] = keys[i]
            vals[w] = vals[i]
            w += 1
    return w


def sort_pairs(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, vals)`` sorted by key, stable (fresh arrays; the inputs are consumed)."""
    return radix_sort_pairs(keys, vals)


_NON_ASCII = re.compile("[^\x00-\x7f]")


@lru_cache(maxsize=65536)
def _clean_char(c: str) -> str:
    if c.isalnum():
        low = c.lower()
        return low if len(low) == 1 else c
    return " "


def _clean(folded: str) -> str:
    """Non-ASCII non-alphanumerics of a folded text blanked, non-ASCII letters lower-cased
    (one for one); one Python call per non-ASCII character, not per character."""
    return folded if folded.isascii() else _NON_ASCII.sub(lambda m: _clean_char(m.group()),
                                                          folded)


def clean_folded(text: str) -> MappedText:
    """The folded view of ``text`` with non-ASCII non-alphanumerics blanked and non-ASCII
    letters lower-cased (one character for one, so the view's offsets still hold)."""
    view = folded_view(text)
    folded = view.text
    if not folded.isascii():
        folded = _clean(folded)
        view = MappedText(folded, view.original_length, view.parent, view.edits,
                          view.edit_starts)
    return view


def _as_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    texts = texts.cast(pa.large_string()) if texts.type != pa.large_string() else texts
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    _, off_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(off_buf, np.int64, len(texts) + 1, texts.offset * 8)
    data = (np.frombuffer(data_buf, np.uint8) if data_buf is not None
            else np.zeros(0, np.uint8))
    return data, offsets


def _tokens_of(texts: pa.Array, spans: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token hashes, per-record token offsets, and byte starts / ends within each text
    (``spans`` False: empty arrays instead of the starts / ends)."""
    data, offsets = _as_buffers(texts)
    n = len(offsets) - 1
    bound = (len(data) + n) // 2 + 1  # pages past the tokens written are never touched
    hashes = np.empty(bound, np.uint64)
    starts = np.empty(bound if spans else 0, np.int64)
    ends = np.empty(bound if spans else 0, np.int64)
    tok_offsets = np.empty(n + 1, np.int64)
    total = _tokenize(data, offsets, _WORD, _LOWER, tok_offsets, hashes, starts, ends, spans)
    return hashes[:total], tok_offsets, starts[:total], ends[:total]


def _fold_rows(texts: pa.Array) -> pa.Array:
    """ASCII rows as they are; rows with non-ASCII characters as :func:`clean_folded` makes
    them: the batch fold (:func:`~datanet.privacy.evasion.fold_unicode`, whose row is
    ``folded_view(text).text``) then the blanking / lower-casing of what stays non-ASCII."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = texts.cast(pa.string())
    non_ascii = pc.invert(pc.string_is_ascii(pc.fill_null(texts, "")))
    if not pc.any(non_ascii).as_py():
        return texts
    folded = pc.filter(fold_unicode(texts), non_ascii).to_pylist()
    subset = pa.array([_clean(t) for t in folded], pa.string())
    return pc.replace_with_mask(texts, non_ascii, subset)


def gram_hashes(tok: np.ndarray, tok_offsets: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(grams, rows)``: every k-gram hash of every record and the record's row number."""
    per = np.maximum(np.diff(tok_offsets) - k + 1, 0)
    out_offsets = np.zeros(len(per) + 1, np.int64)
    np.cumsum(per, out=out_offsets[1:])
    grams = np.empty(int(out_offsets[-1]), np.uint64)
    rows = np.empty(int(out_offsets[-1]), np.uint32)
    _grams(tok, tok_offsets, k, out_offsets, grams, rows)
    return grams, rows


def record_grams(texts: pa.Array | pa.ChunkedArray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(grams, rows, n_tokens)`` of a column of record texts (index build)."""
    folded = _fold_rows(texts)
    tok, tok_offsets, _, _ = _tokens_of(folded, spans=False)
    grams, rows = gram_hashes(tok, tok_offsets, k)
    return grams, rows, len(tok)


@dataclass(frozen=True)
class OutputTokens:
    """A model output's tokens: hashes and each token's character span in the original text."""

    hashes: np.ndarray
    #: (n, 2) int64: [start, end) of each token in the original output text
    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)


def output_tokens(text: str) -> OutputTokens:
    """Tokens of one output with their offsets in the original ``text``."""
    view = clean_folded(text)
    hashes, _, bstarts, bends = _tokens_of(pa.array([view.text], pa.large_string()))
    folded = view.text
    if folded.isascii():
        cstarts, cends = bstarts, bends
    else:
        raw = np.frombuffer(folded.encode("utf-8"), np.uint8)
        # character index of every byte offset (continuation bytes are 10xxxxxx)
        char_at = np.concatenate([[0], np.cumsum((raw & 0xC0) != 0x80)])
        cstarts, cends = char_at[bstarts], char_at[bends]
    spans = np.empty((len(hashes), 2), np.int64)
    if view.is_identity:
        spans[:, 0], spans[:, 1] = cstarts, cends
    else:
        for i, (s, e) in enumerate(zip(cstarts.tolist(), cends.tolist(), strict=True)):
            spans[i] = view.span(s, e)
    return OutputTokens(hashes, spans)
