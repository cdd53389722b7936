"""fastText supervised prediction (top-1) in numba, bit-for-bit as fastText 0.9.2 computes it.

Why: the language validator gave each record to fastText's C++ ``predict`` through pybind11,
one call per record (~55-90 µs for 300 characters, the largest single cost of a run). Here a
batch's UTF-8 buffer is read once by a compiled loop: no per-record Python, no strings.

What is reproduced, from fastText's sources (``src/dictionary.cc``, ``model.cc``,
``loss.cc``, ``productquantizer.cc``, ``quantmatrix.cc``, ``densematrix.cc`` of
facebookresearch/fastText 0.9.2, as packaged by ``fasttext-predict``):

- the model file: magic, version, ``Args``, the dictionary (entries, ``pruneidx``), a dense
  or product-quantised input matrix (with quantised norms), a dense or quantised output
  matrix; the hierarchical-softmax tree is rebuilt from the label counts as ``buildTree``;
- ``Dictionary::getLine`` as ``FastText::predict`` feeds it (the text plus ``"\\n"``): tokens
  split on `` \\n\\r\\t\\v\\f\\0``, the end-of-line token ``</s>`` (reading stops at a
  ``</s>`` token), tokens starting with ``__label__`` skipped, FNV-1a over *sign-extended*
  bytes, a known word's precomputed subwords, an unknown word's character n-grams of
  ``<word>`` (``minn..maxn`` code points, single-character n-grams at the ends excluded),
  bucket ``hash % bucket`` mapped through ``pruneidx`` (models with word n-grams,
  ``wordNgrams > 1``, are refused: none is at hand to verify that step against fastText);
- ``computeHidden``: rows added in input order in float32, then multiplied by
  ``float(1.0 / n)``; a quantised row is ``norm * centroid`` rounded to float32 per element,
  exactly what ``addcode`` adds;
- ``HierarchicalSoftmaxLoss::dfs`` with k = 1: float32 dot products in order, the sigmoid as
  ``1.0 / (1 + expf(-f))`` rounded to float32, ``std_log(x) = float(log(double(x) + 1e-5))``
  with ``x`` rounded to float32 first, the threshold and best-so-far pruning, ties won by the
  later leaf (``std::push_heap`` / ``pop_heap`` with ``comparePairs``); the probability is
  ``expf(score)``.

Tests compare label and probability bits with the C++ library on the benchmark corpus and
on hostile texts (labels, ``</s>``, control bytes, long tokens, every script).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

__all__ = ["FastTextModel", "load_model"]

_MAGIC = 793712314
_LOSS_HS = 1
_MODEL_SUP = 3
_KSUB = 256
_EOS = b"</s>"
_LABEL = b"__label__"


@dataclass(frozen=True, eq=False)
class FastTextModel:
    """A loaded supervised hierarchical-softmax model, as arrays for :func:`_predict`."""

    labels: tuple[str, ...]
    dim: int
    nwords: int
    minn: int
    maxn: int
    bucket: int
    prune_mode: int          # -1: not pruned, 0: pruned to nothing, 1: through ``prune``
    prune: np.ndarray        # int32 per bucket: pruned row index or -1 (prune_mode 1)
    vocab: np.ndarray        # uint8: every entry's bytes, concatenated
    vocab_off: np.ndarray    # int64 offsets into ``vocab`` (size + 1)
    vocab_type: np.ndarray   # int8: 0 word, 1 label
    table: np.ndarray        # int32 open-addressing slots (entry id or -1), power of two
    sub_off: np.ndarray      # int64 offsets into ``sub_ids`` per word
    sub_ids: np.ndarray      # int32: a word's id, then its n-gram rows (``initNgrams``)
    rows: np.ndarray         # float32 (rows, dim): input rows as ``addRowToVector`` adds
    out: np.ndarray          # float32 (nodes, dim): output rows (centroids if quantised)
    out_alpha: np.ndarray    # float32 per output row (norm; 1 for dense)
    left: np.ndarray         # int32 per tree node
    right: np.ndarray        # int32 per tree node

    def predict(self, data: np.ndarray, offsets: np.ndarray,
                threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Top label index (-1 when none passes ``threshold``) and its probability (float32)
        of each text (UTF-8 ``data`` split by ``offsets``), as ``model.predict(text, k=1,
        threshold)`` returns them."""
        log_thr = np.float32(np.log(np.float64(np.float32(threshold)) + 1e-5))
        return _predict(data, offsets, self.vocab, self.vocab_off, self.vocab_type,
                        self.table, self.sub_off, self.sub_ids, self.prune,
                        self.prune_mode, self.nwords, self.minn, self.maxn, self.bucket,
                        self.rows, self.out, self.out_alpha,
                        self.left, self.right, log_thr)


class _Reader:
    def __init__(self, raw: bytes):
        self.raw = raw
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.raw):
            raise ValueError("fastText model file is truncated")
        out = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += size
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self.pos + size > len(self.raw):
            raise ValueError("fastText model file is truncated")
        out = np.frombuffer(self.raw, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out


def _pq(r: _Reader) -> tuple[int, int, int, int, np.ndarray]:
    dim, nsubq, dsub, lastdsub = r.take("<iiii")
    return dim, nsubq, dsub, lastdsub, r.array("<f4", dim * _KSUB)


def _centroid(pq: tuple, m: int, code: np.ndarray) -> np.ndarray:
    """``get_centroids(m, code)`` for a column of codes: (len(code), d) float32."""
    _, nsubq, dsub, lastdsub, cent = pq
    d = lastdsub if m == nsubq - 1 else dsub
    start = m * _KSUB * dsub + code.astype(np.int64) * d
    return cent[start[:, None] + np.arange(d)]


def _matrix(r: _Reader, quantised: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float32 rows without the norm, float32 norm per row) of a dense or quantised
    matrix; for a quantised one the rows are the concatenated centroids of its codes."""
    if not quantised:
        m, n = r.take("<qq")
        return r.array("<f4", m * n).reshape(m, n), np.ones(m, np.float32)
    qnorm, m, n, codesize = r.take("<?qqi")
    codes = r.array("u1", codesize)
    pq = _pq(r)
    nsubq = pq[1]
    codes = codes.reshape(m, nsubq)
    rows = np.concatenate([_centroid(pq, j, codes[:, j]) for j in range(nsubq)], axis=1)
    norm = np.ones(m, np.float32)
    if qnorm:
        norm_codes = r.array("u1", m)
        npq = _pq(r)
        norm = _centroid(npq, 0, norm_codes)[:, 0].copy()
    return rows.astype(np.float32), norm


def _tree(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``HierarchicalSoftmaxLoss::buildTree``: children of every node (leaves first)."""
    osz = len(counts)
    size = 2 * osz - 1
    count = [10**15] * size
    count[:osz] = counts
    left = np.full(size, -1, np.int32)
    right = np.full(size, -1, np.int32)
    leaf, node = osz - 1, osz
    for i in range(osz, size):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j] = leaf
                leaf -= 1
            else:
                mini[j] = node
                node += 1
        left[i], right[i] = mini
        count[i] = count[mini[0]] + count[mini[1]]
    return left, right


def load_model(path: str | Path) -> FastTextModel:
    """Read a fastText ``.bin`` / ``.ftz`` supervised model with hierarchical softmax."""
    r = _Reader(Path(path).read_bytes())
    magic, version = r.take("<ii")
    if magic != _MAGIC or version > 12:
        raise ValueError(f"{path}: not a fastText model file (magic {magic}, "
                         f"version {version})")
    (dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn,
     _lr_update, _t) = r.take("<12id")
    if model != _MODEL_SUP or loss != _LOSS_HS:
        raise ValueError(f"{path}: only supervised hierarchical-softmax models are "
                         f"supported (model {model}, loss {loss})")
    if word_ngrams != 1:
        # word n-gram buckets (addWordNgrams) are not reproduced: no such model is at hand
        # to verify them against fastText bit for bit
        raise ValueError(f"{path}: models with word n-grams (wordNgrams={word_ngrams}) "
                         "are not supported")
    if version == 11:
        maxn = 0
    size, nwords, nlabels, _ntokens, prune_size = r.take("<iiiqq")
    words: list[bytes] = []
    counts: list[int] = []
    types = np.empty(size, np.int8)
    raw = r.raw
    for i in range(size):
        end = raw.index(b"\0", r.pos)
        words.append(raw[r.pos:end])
        r.pos = end + 1
        count, kind = r.take("<qb")
        counts.append(count)
        types[i] = kind
    if size != nwords + nlabels or nlabels < 1:
        raise ValueError(f"{path}: dictionary of {size} entries is not {nwords} words and "
                         f"{nlabels} labels")
    prune = np.full(bucket if prune_size > 0 else 0, -1, np.int32)
    if prune_size > 0:
        pairs = r.array("<i4", 2 * prune_size).reshape(-1, 2)
        prune[pairs[:, 0]] = pairs[:, 1]
    (quant_input,) = r.take("<?")
    rows, norm = _matrix(r, quant_input)
    (qout,) = r.take("<?")
    out, out_alpha = _matrix(r, quant_input and qout)
    if r.pos != len(raw):
        raise ValueError(f"{path}: {len(raw) - r.pos} bytes after the model")
    # addcode adds float32(norm * centroid) per element: the same values, rounded once here
    rows = (rows * norm[:, None]).astype(np.float32)
    if _EOS not in words:
        raise ValueError(f"{path}: the dictionary has no {_EOS!r} entry")
    vocab_off = np.zeros(size + 1, np.int64)
    vocab_off[1:] = np.cumsum([len(w) for w in words])
    vocab = np.frombuffer(b"".join(words), np.uint8)
    slots = 1 << max(4, int(2 * size).bit_length())
    table = _build_table(vocab, vocab_off, slots)
    prune_mode = -1 if prune_size < 0 else (0 if prune_size == 0 else 1)
    sub_off, sub_ids = _init_ngrams(vocab, vocab_off, nwords, minn, maxn, bucket, prune,
                                    prune_mode)
    left, right = _tree(counts[nwords:])
    labels = tuple(w.decode("utf-8", "replace") for w in words[nwords:])
    return FastTextModel(
        labels=labels, dim=dim, nwords=nwords, minn=minn, maxn=maxn, bucket=bucket,
        prune_mode=prune_mode, prune=prune, vocab=vocab,
        vocab_off=vocab_off, vocab_type=types, table=table, sub_off=sub_off,
        sub_ids=sub_ids, rows=np.ascontiguousarray(rows), out=np.ascontiguousarray(out),
        out_alpha=out_alpha, left=left, right=right)


@numba.njit(cache=True, nogil=True)
def _fnv(data: np.ndarray, lo: int, hi: int) -> np.uint64:
    """``Dictionary::hash``: FNV-1a 32 over the bytes as *signed* chars."""
    h = np.uint64(2166136261)
    for i in range(lo, hi):
        h = _fnv_step(h, data[i])
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _fnv_step(h: np.uint64, byte: np.uint8) -> np.uint64:
    """One FNV-1a step on 32 bits (numba widens uint32 products, so masked in uint64)."""
    b = np.uint64(byte)
    if b >= 128:
        b |= np.uint64(0xFFFFFF00)
    return ((h ^ b) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)


@numba.njit(cache=True)
def _build_table(vocab: np.ndarray, off: np.ndarray, slots: int) -> np.ndarray:
    table = np.full(slots, -1, np.int32)
    mask = slots - 1
    for w in range(len(off) - 1):
        s = int(_fnv(vocab, off[w], off[w + 1])) & mask
        while table[s] != -1:
            s = (s + 1) & mask
        table[s] = w
    return table


@numba.njit(cache=True, nogil=True)
def _lookup(data: np.ndarray, lo: int, hi: int, h: np.uint64, vocab: np.ndarray,
            off: np.ndarray, table: np.ndarray) -> int:
    """Entry id of the token ``data[lo:hi]`` (hash ``h``), or -1."""
    mask = len(table) - 1
    s = int(h) & mask
    n = hi - lo
    while True:
        w = table[s]
        if w < 0:
            return -1
        a = off[w]
        if off[w + 1] - a == n:
            same = True
            for k in range(n):
                if vocab[a + k] != data[lo + k]:
                    same = False
                    break
            if same:
                return w
        s = (s + 1) & mask


@numba.njit(cache=True, nogil=True)
def _push_hash(out: np.ndarray, n: int, h: int, prune: np.ndarray, prune_mode: int,
               nwords: int) -> int:
    """``Dictionary::pushHash``: append bucket ``h``'s row; returns the new length."""
    if prune_mode == 0 or h < 0:
        return n
    if prune_mode == 1:
        h = prune[h]
        if h < 0:
            return n
    out[n] = nwords + h
    return n + 1


@numba.njit(cache=True, nogil=True)
def _subwords(word: np.ndarray, length: int, minn: int, maxn: int, bucket: int,
              prune: np.ndarray, prune_mode: int, nwords: int, out: np.ndarray,
              n: int) -> int:
    """``computeSubwords`` of ``word[:length]`` (``<token>``), appended to ``out``."""
    for i in range(length):
        if (word[i] & 0xC0) == 0x80:
            continue
        h = np.uint64(2166136261)
        j = i
        k = 1
        while j < length and k <= maxn:
            while True:
                h = _fnv_step(h, word[j])
                j += 1
                if j >= length or (word[j] & 0xC0) != 0x80:
                    break
            if k >= minn and not (k == 1 and (i == 0 or j == length)):
                n = _push_hash(out, n, int(h % np.uint64(bucket)), prune, prune_mode,
                               nwords)
            k += 1
    return n


@numba.njit(cache=True)
def _init_ngrams(vocab: np.ndarray, off: np.ndarray, nwords: int, minn: int, maxn: int,
                 bucket: int, prune: np.ndarray, prune_mode: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``initNgrams`` for the words: each word's id, then its n-gram rows (none for
    ``</s>``); CSR offsets and ids."""
    size = len(off) - 1
    longest = 0
    for w in range(size):
        longest = max(longest, off[w + 1] - off[w])
    word = np.empty(longest + 2, np.uint8)
    buf = np.empty((longest + 2) * max(maxn, 1) + 1, np.int32)
    sub_off = np.zeros(size + 1, np.int64)
    parts = []
    for w in range(size):
        a, b = off[w], off[w + 1]
        buf[0] = w
        n = 1
        if maxn > 0 and not _starts(vocab, a, b, _EOS_BYTES, True):
            n = _subwords(word, _bracketed(word, vocab, a, b), minn, maxn, bucket, prune,
                          prune_mode, nwords, buf, 1)
        parts.append(buf[:n].copy())
        sub_off[w + 1] = sub_off[w] + n
    sub_ids = np.empty(sub_off[size], np.int32)
    for w in range(size):
        sub_ids[sub_off[w]:sub_off[w + 1]] = parts[w]
    return sub_off, sub_ids


@numba.njit(cache=True, nogil=True, inline="always")
def _starts(tok: np.ndarray, lo: int, hi: int, pat: np.ndarray, whole: bool) -> bool:
    """Whether ``tok[lo:hi]`` starts with (``whole``: is) the bytes ``pat``."""
    n = len(pat)
    if hi - lo < n or (whole and hi - lo != n):
        return False
    for k in range(n):
        if tok[lo + k] != pat[k]:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _bracketed(word: np.ndarray, tok: np.ndarray, lo: int, hi: int) -> int:
    """``word[:n] = "<" + tok[lo:hi] + ">"`` (``BOW + token + EOW``); its length ``n``."""
    word[0] = 60
    word[1:hi - lo + 1] = tok[lo:hi]
    word[hi - lo + 1] = 62
    return hi - lo + 2


@numba.njit(cache=True, nogil=True)
def _is_space(b: int) -> bool:
    return b == 32 or b == 10 or b == 13 or b == 9 or b == 11 or b == 12 or b == 0


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row(hidden: np.ndarray, rows: np.ndarray, r: int) -> None:
    """``hidden += rows[r]`` in float32, element by element (``addRowToVector``)."""
    for j in range(hidden.shape[0]):
        hidden[j] += rows[r, j]


@numba.njit(cache=True, nogil=True)
def _predict(data: np.ndarray, offsets: np.ndarray, vocab: np.ndarray, vocab_off: np.ndarray,
             vocab_type: np.ndarray, table: np.ndarray, sub_off: np.ndarray,
             sub_ids: np.ndarray, prune: np.ndarray, prune_mode: int, nwords: int, minn: int,
             maxn: int, bucket: int, rows: np.ndarray, out: np.ndarray,
             out_alpha: np.ndarray, left: np.ndarray, right: np.ndarray,
             log_thr: np.float32) -> tuple[np.ndarray, np.ndarray]:
    n_docs = len(offsets) - 1
    dim = rows.shape[1]
    osz = (len(left) + 1) // 2
    best_label = np.full(n_docs, -1, np.int32)
    best_prob = np.zeros(n_docs, np.float32)
    longest = 0
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    # rows are added to the hidden vector as fastText lists them (its ``words``, in order):
    # only one unknown token's n-gram rows are held at a time (<= maxn per byte of <token>)
    tok_ids = np.empty((longest + 2) * max(maxn, 1) + 1, np.int32)
    word = np.empty(longest + 2, np.uint8)
    hidden = np.zeros(dim, np.float32)
    stack_node = np.empty(len(left) + 1, np.int32)
    stack_score = np.empty(len(left) + 1, np.float32)
    for d in range(n_docs):
        lo = offsets[d]
        hi = offsets[d + 1]
        n = 0
        i = lo
        hidden[:] = 0
        while True:
            # readWord: skip separators; the "\n" appended by predict() gives </s>
            while i < hi and data[i] != 10 and _is_space(data[i]):
                i += 1
            if i < hi and data[i] != 10:
                a = i
                while i < hi and not _is_space(data[i]):
                    i += 1
                tok, tlo, thi = data, a, i
            else:
                # a newline (or the end, where predict() appends one) read with no word
                # pending; a newline right after a word is read back (sungetc) and lands here
                tok, tlo, thi = _EOS_BYTES, 0, 4
                i += 1
            h = _fnv(tok, tlo, thi)
            wid = _lookup(tok, tlo, thi, h, vocab, vocab_off, table)
            is_eos = _starts(tok, tlo, thi, _EOS_BYTES, True)
            if wid >= 0:
                is_word = vocab_type[wid] == 0
            else:  # an unknown token is a label when it starts with the label prefix
                is_word = not _starts(tok, tlo, thi, _LABEL_BYTES, False)
            if is_word:
                if wid < 0:
                    if not is_eos:
                        m = _subwords(word, _bracketed(word, tok, tlo, thi), minn, maxn,
                                      bucket, prune, prune_mode, nwords, tok_ids, 0)
                        for k in range(m):
                            _add_row(hidden, rows, tok_ids[k])
                        n += m
                elif maxn <= 0:
                    _add_row(hidden, rows, wid)
                    n += 1
                else:
                    for k in range(sub_off[wid], sub_off[wid + 1]):
                        _add_row(hidden, rows, sub_ids[k])
                    n += sub_off[wid + 1] - sub_off[wid]
            if is_eos:
                break
        if n == 0:
            continue
        scale = np.float32(1.0 / n)
        for j in range(dim):
            hidden[j] *= scale
        # hierarchical softmax, depth first, left child first (k = 1)
        found = False
        best = np.float32(0)
        label = -1
        stack_node[0] = len(left) - 1
        stack_score[0] = np.float32(0)
        top = 1
        while top > 0:
            top -= 1
            node = stack_node[top]
            score = stack_score[top]
            if score < log_thr:
                continue
            if found and score < best:
                continue
            if left[node] == -1 and right[node] == -1:
                best = score
                label = node
                found = True
                continue
            row = node - osz
            f = np.float32(0)
            for j in range(dim):
                f += hidden[j] * out[row, j]
            f = f * out_alpha[row]
            f = np.float32(1.0 / np.float64(np.float32(1) + np.exp(-f)))
            s_left = score + np.float32(np.log(np.float64(np.float32(1.0 - np.float64(f)))
                                               + 1e-5))
            s_right = score + np.float32(np.log(np.float64(f) + 1e-5))
            stack_node[top] = right[node]
            stack_score[top] = s_right
            stack_node[top + 1] = left[node]
            stack_score[top + 1] = s_left
            top += 2
        if found:
            best_label[d] = label
            best_prob[d] = np.exp(best)
    return best_label, best_prob


_LABEL_BYTES = np.frombuffer(_LABEL, np.uint8).copy()
_EOS_BYTES = np.frombuffer(_EOS, np.uint8).copy()
