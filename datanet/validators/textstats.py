"""Per-batch text statistics shared by the quality and spam rules, vectorised.

Words come from the normalised text (whitespace split by pyarrow), lines and paragraphs from
the original text (normalisation folds newlines). Per-record sums are ``np.bincount`` over
the flat word / line arrays; repeated n-grams are found with numpy over 64-bit n-gram keys
folded from dictionary-encoded word ids, never one Python object per word.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TextStats", "group_keys", "max_per_doc"]

_U64 = np.uint64
_FNV_OFFSET = _U64(0xCBF29CE484222325)
_FNV_PRIME = _U64(0x100000001B3)
_MIX = _U64(0x9E3779B97F4A7C15)
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»“”‘’…–—¿¡"


def _np(a: pa.Array | pa.ChunkedArray, dtype: type | None = None) -> np.ndarray:
    out = a.to_numpy(zero_copy_only=False) if isinstance(a, (pa.Array, pa.ChunkedArray)) else a
    return np.asarray(out, dtype=dtype) if dtype is not None else np.asarray(out)


def _flat(lists: pa.Array | pa.ChunkedArray, n: int) -> tuple[pa.Array, np.ndarray]:
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    counts = _np(pc.fill_null(pc.list_value_length(lists), 0), np.int64)
    return lists.flatten(), np.repeat(np.arange(n), counts)


def group_keys(keys: np.ndarray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hash-group ``keys`` in O(n): (group id per key, size per group, first-occurrence mask).

    Arrow's dictionary encoding numbers groups in order of first appearance, so an element
    is a group's first occurrence exactly when its id exceeds every id before it.
    """
    arr = keys if isinstance(keys, pa.Array) else pa.array(keys)
    idx = _np(pc.dictionary_encode(arr).indices, np.int64)
    if len(idx) == 0:
        return idx, np.zeros(0, np.int64), np.zeros(0, bool)
    first = np.empty(len(idx), dtype=bool)
    first[0] = True
    first[1:] = idx[1:] > np.maximum.accumulate(idx)[:-1]
    return idx, np.bincount(idx), first


def max_per_doc(doc: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-record maximum of ``values`` (0 where none); ``doc`` must be non-decreasing."""
    out = np.zeros(n)
    if len(doc) == 0:
        return out
    starts = np.concatenate([[0], np.flatnonzero(np.diff(doc)) + 1])
    out[doc[starts]] = np.maximum.reduceat(values, starts)
    return out


class TextStats:
    """Lazily computed statistics of one batch (``text`` and ``text_norm`` columns)."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self.n = batch.num_rows
        self.text = pc.fill_null(batch.column("text"), "")
        self.norm = pc.fill_null(batch.column("text_norm"), "")

    def on_subset(self, mask: np.ndarray, stat: str, *args: object) -> np.ndarray:
        """``stat(*args)`` computed only for the records in ``mask`` (zeros elsewhere)."""
        out = np.zeros(self.n)
        if mask.any():
            sub = TextStats(self.batch.filter(pa.array(mask)))
            out[mask] = getattr(sub, stat)(*args)
        return out

    def per_doc(self, doc: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (or count) per record."""
        return np.bincount(doc, weights=weights, minlength=self.n)[: self.n].astype(np.float64)

    @functools.cached_property
    def chars(self) -> np.ndarray:
        """Characters of the normalised text."""
        return _np(pc.utf8_length(self.norm), np.float64)

    @functools.cached_property
    def lower(self) -> pa.Array:
        """Lowercased original text."""
        return pc.utf8_lower(self.text)

    @functools.cached_property
    def _words(self) -> tuple[pa.Array, np.ndarray]:
        flat, doc = _flat(pc.utf8_split_whitespace(self.norm), self.n)
        keep = _np(pc.greater(pc.utf8_length(flat), 0), bool)
        if not keep.all():
            flat, doc = flat.filter(pa.array(keep)), doc[keep]
        return flat, doc

    @property
    def words(self) -> pa.Array:
        """Flat whitespace-separated words of every record."""
        return self._words[0]

    @property
    def word_doc(self) -> np.ndarray:
        """Record index of each flat word."""
        return self._words[1]

    @functools.cached_property
    def word_len(self) -> np.ndarray:
        """Characters per word."""
        return _np(pc.utf8_length(self.words), np.int64)

    @functools.cached_property
    def n_words(self) -> np.ndarray:
        """Words per record."""
        return self.per_doc(self.word_doc)

    @functools.cached_property
    def bare_words(self) -> pa.Array:
        """Lowercased words with surrounding punctuation trimmed."""
        return pc.utf8_trim(pc.utf8_lower(self.words), _PUNCT)

    @functools.cached_property
    def word_ids(self) -> np.ndarray:
        """Dictionary ids of the words (equal words, equal ids) as uint64."""
        return _np(pc.dictionary_encode(self.words).indices, np.int64).astype(np.uint64)

    def _lines(self, pattern: str) -> tuple[pa.Array, np.ndarray]:
        parts = pc.split_pattern_regex(pc.replace_substring(self.text, "\r", ""), pattern)
        flat, doc = _flat(parts, self.n)
        flat = pc.utf8_trim_whitespace(flat)
        keep = _np(pc.greater(pc.utf8_length(flat), 0), bool)
        return flat.filter(pa.array(keep)), doc[keep]

    @functools.cached_property
    def lines(self) -> tuple[pa.Array, np.ndarray]:
        """Non-empty stripped lines of the original text and their record index."""
        return self._lines(r"\n+")

    @functools.cached_property
    def paragraphs(self) -> tuple[pa.Array, np.ndarray]:
        """Non-empty paragraphs (split on blank lines) and their record index."""
        return self._lines(r"\n\s*\n")

    @functools.cached_property
    def n_lines(self) -> np.ndarray:
        """Non-empty lines per record."""
        return self.per_doc(self.lines[1])

    def duplicates(self, items: tuple[pa.Array, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per record: (number, characters) of items that repeat an earlier item of it."""
        flat, doc = items
        if len(flat) == 0:
            return np.zeros(self.n), np.zeros(self.n)
        ids = _np(pc.dictionary_encode(flat).indices, np.int64)
        key = doc.astype(np.int64) * (int(ids.max()) + 1) + ids
        repeat = ~group_keys(key)[2]
        length = _np(pc.utf8_length(flat), np.float64)
        return self.per_doc(doc[repeat]), self.per_doc(doc[repeat], length[repeat])

    def ngram_keys(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """64-bit keys of every word n-gram inside one record, and their start positions."""
        ids, doc = self.word_ids, self.word_doc
        m = len(ids) - n + 1
        if m <= 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        starts = np.flatnonzero(doc[:m] == doc[n - 1:])
        h = np.full(m, _FNV_OFFSET, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                h ^= ids[j:j + m] + _U64(1)
                h *= _FNV_PRIME
            h ^= doc[:m].astype(np.uint64) * _MIX
        return h[starts], starts

    def top_ngram_char_frac(self, n: int) -> np.ndarray:
        """Gopher: characters of the most frequent repeated n-gram (words joined by spaces,
        times its count) / characters of the text, as datatrove's ``find_top_duplicate``."""
        keys, starts = self.ngram_keys(n)
        out = np.zeros(self.n)
        if len(keys) == 0:
            return out
        inverse, counts, _ = group_keys(keys)
        cum = np.concatenate([[0], np.cumsum(self.word_len)])
        gram_len = cum[starts + n] - cum[starts] + (n - 1)
        score = np.where(counts[inverse] > 1, counts[inverse] * gram_len, 0).astype(np.float64)
        out = max_per_doc(self.word_doc[starts], score, self.n)
        return out / np.maximum(self.chars, 1)

    def dup_ngram_char_frac(self, n: int) -> np.ndarray:
        """Gopher: characters of the words covered by repeated occurrences of n-grams / the
        characters of the text (datatrove's ``find_all_duplicate``, without its skip)."""
        keys, starts = self.ngram_keys(n)
        if len(keys) == 0:
            return np.zeros(self.n)
        repeat = ~group_keys(keys)[2]
        size = len(self.word_ids) + 1
        mark = (np.bincount(starts[repeat], minlength=size)
                - np.bincount(starts[repeat] + n, minlength=size))
        covered = np.cumsum(mark)[:-1] > 0
        dup = self.per_doc(self.word_doc[covered], self.word_len[covered])
        return dup / np.maximum(self.chars, 1)
