"""Per-batch text statistics shared by the quality and spam rules, vectorised.

Words come from the normalised text (whitespace split by pyarrow), lines and paragraphs from
the original text (normalisation folds newlines). Per-record sums are ``np.bincount`` over
the flat word / line arrays; repeated n-grams are grouped by 64-bit keys folded from
dictionary-encoded word ids in one compiled pass, never one Python object per word.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TextStats", "group_keys", "max_per_doc", "utf8_buffers", "STOP_WORDS"]

#: Gopher's stop words (Rae et al. 2021, appendix A): the, be, to, of, and, that, have, with.
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»“”‘’…–—¿¡"


def _np(a: pa.Array | pa.ChunkedArray, dtype: type | None = None) -> np.ndarray:
    out = a.to_numpy(zero_copy_only=False) if isinstance(a, (pa.Array, pa.ChunkedArray)) else a
    return np.asarray(out, dtype=dtype) if dtype is not None else np.asarray(out)


def _flat(lists: pa.Array | pa.ChunkedArray, n: int) -> tuple[pa.Array, np.ndarray]:
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    counts = _np(pc.fill_null(pc.list_value_length(lists), 0), np.int64)
    return lists.flatten(), np.repeat(np.arange(n), counts)


def utf8_buffers(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, offsets relative to the first byte) of a string array, zero-copy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1]
    buf = arr.buffers()[2]
    lo = int(offsets[0])
    data = (np.frombuffer(buf, dtype=np.uint8)[lo:int(offsets[-1])] if buf is not None
            else np.zeros(0, np.uint8))
    return data, (offsets - lo).astype(np.int64)


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


_LAST = threading.local()


class TextStats:
    """Lazily computed statistics of one batch (``text`` and ``text_norm`` columns)."""

    @classmethod
    def of(cls, batch: pa.RecordBatch) -> TextStats:
        """The statistics of ``batch``, shared by the validators that run on it one after
        the other (the words are split and encoded once per batch, not once per validator);
        one batch per thread is kept."""
        last = getattr(_LAST, "stats", None)
        if last is None or last.batch is not batch:
            last = _LAST.stats = cls(batch)
        return last

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self.n = batch.num_rows
        self.text = pc.fill_null(batch.column("text"), "")
        self.norm = pc.fill_null(batch.column("text_norm"), "")
        self._marks: dict[str, dict[str, np.ndarray]] = {}

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

    def marks(self, column: str) -> dict[str, np.ndarray]:
        """Per record counts of ``#``, ``...``, ``…``, ``{``, newlines and sentence ends in
        ``"text"`` or ``"norm"`` (:func:`~datanet.validators._kernels.text_marks`: one pass
        for what were six Arrow scans)."""
        from datanet.validators._kernels import MARKS, text_marks

        if column not in self._marks:
            counts = text_marks(*utf8_buffers(self.text if column == "text" else self.norm))
            self._marks[column] = {name: counts[:, i] for i, name in enumerate(MARKS)}
        return self._marks[column]

    @functools.cached_property
    def _words(self) -> tuple[pa.Array, np.ndarray]:
        from datanet.validators._kernels import space_split

        norm = self.norm
        if isinstance(norm, pa.ChunkedArray):
            norm = norm.combine_chunks()
        if norm.type == pa.string() and not norm.null_count:
            # normalised text has no whitespace but single spaces: one compiled pass (the
            # Unicode split, list array and empty-piece filter took ~5x as long)
            data, offsets, doc, ok = space_split(*utf8_buffers(norm))
            if ok:
                return pa.StringArray.from_buffers(len(doc), pa.py_buffer(offsets),
                                                   pa.py_buffer(data)), doc
        flat, doc = _flat(pc.utf8_split_whitespace(self.norm), self.n)
        if isinstance(flat, pa.ChunkedArray):
            flat = flat.combine_chunks()
        # empty pieces (leading / trailing whitespace): equal offsets, no length kernel
        keep = np.diff(utf8_buffers(flat)[1]) > 0
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
    def bare_codes(self) -> tuple[np.ndarray, pa.Array]:
        """Lowercased words with surrounding punctuation trimmed, dictionary-encoded: an id
        per word (ids in order of first appearance) and the distinct bare words. The words
        are encoded first and only the distinct ones (~4 % of a batch's words) lowered and
        trimmed, then encoded again (lowering and trimming every word took ~2x as long); the
        per-word properties of a bare word are likewise computed once per distinct word."""
        words = self.words
        if isinstance(words, pa.ChunkedArray):  # one dictionary, not one per chunk
            words = words.combine_chunks()
        raw = pc.dictionary_encode(words)
        bare = pc.dictionary_encode(pc.utf8_trim(pc.utf8_lower(raw.dictionary), _PUNCT))
        # a bare word first appears where the first of its raw words does: same ids and order
        return (_np(bare.indices, np.int64)[_np(raw.indices, np.int64)], bare.dictionary)

    @functools.cached_property
    def bare_len(self) -> np.ndarray:
        """Characters per bare word (0: the word is only punctuation)."""
        ids, distinct = self.bare_codes
        return _np(pc.utf8_length(distinct), np.int64)[ids]

    @functools.cached_property
    def stop_word(self) -> np.ndarray:
        """Whether each bare word is one of :data:`STOP_WORDS`."""
        ids, distinct = self.bare_codes
        return _np(pc.is_in(distinct, value_set=pa.array(STOP_WORDS)), bool)[ids]

    @functools.cached_property
    def word_ids(self) -> np.ndarray:
        """A 64-bit id per word: equal words, equal ids (a hash of the word's bytes)."""
        from datanet.validators._kernels import string_hashes

        return string_hashes(*utf8_buffers(self.words))

    @functools.cached_property
    def has_letter(self) -> np.ndarray:
        """Whether each word holds a letter (``\\pL``): ASCII letters in one compiled pass,
        RE2 only for the words with non-ASCII bytes and no ASCII letter."""
        from datanet.validators._kernels import ascii_letter_scan

        letter, wide = ascii_letter_scan(*utf8_buffers(self.words))
        check = wide & ~letter
        if check.any():
            idx = np.flatnonzero(check)
            letter[idx] = _np(pc.match_substring_regex(self.words.take(pa.array(idx)),
                                                       r"\pL"), bool)
        return letter

    @functools.cached_property
    def _text_lf(self) -> pa.Array:
        return pc.replace_substring(self.text, "\r", "")

    def _lines(self, pattern: str | None) -> tuple[pa.Array, np.ndarray]:
        # pattern None: split on each newline (the empty pieces between newlines are
        # dropped below, so this is the split on runs of newlines, without a regex)
        parts = (pc.split_pattern(self._text_lf, "\n") if pattern is None
                 else pc.split_pattern_regex(self._text_lf, pattern))
        flat, doc = _flat(parts, self.n)
        flat = pc.utf8_trim_whitespace(flat)
        keep = _np(pc.greater(pc.utf8_length(flat), 0), bool)
        return flat.filter(pa.array(keep)), doc[keep]

    @functools.cached_property
    def lines(self) -> tuple[pa.Array, np.ndarray]:
        """Non-empty stripped lines of the original text and their record index."""
        return self._lines(None)

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

    def repetition_fracs(self, top_ns: tuple[int, ...], dup_ns: tuple[int, ...],
                         eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gopher's repeated n-gram fractions of the ``eligible`` records (zeros elsewhere):
        per n of ``top_ns``, the characters of the most frequent repeated n-gram (words joined
        by spaces, times its count) / the characters of the text, as datatrove's
        ``find_top_duplicate``; per n of ``dup_ns``, the characters of the words covered by
        repeated occurrences of n-grams / the characters of the text (datatrove's
        ``find_all_duplicate``, without its skip). One compiled pass over the words
        (:func:`~datanet.validators._kernels.repetition_chars`)."""
        from datanet.validators._kernels import repetition_chars

        offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.word_doc, minlength=self.n)[: self.n], out=offsets[1:])
        top, dup = repetition_chars(
            self.word_ids, offsets, self.word_len,
            np.ascontiguousarray(eligible, dtype=np.bool_),
            np.asarray(top_ns, dtype=np.int64), np.asarray(dup_ns, dtype=np.int64))
        chars = np.maximum(self.chars, 1)[:, None]
        return top / chars, dup / chars
