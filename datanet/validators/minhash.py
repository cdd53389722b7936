"""MinHash near-duplicate detection: vectorised signatures, bit-identical to datasketch.

Signatures are computed for a whole Arrow batch at once (shingling with pyarrow.compute and
numpy; word hashing, the affine permutations' minimum and shingle sets in compiled loops,
:mod:`datanet.validators._kernels`), and equal what ``datasketch.MinHash``
(scheme ``affine32``, its default) computes when fed the same shingles with the same
``num_perm``, ``seed`` and hash function (:func:`hash_function` gives that callable):
the permutation parameters and the MurmurHash3 pre-mix are datasketch's own.

Hash functions:

* ``tokenhash`` (default, fast): every token (a word: ``sum(byte_i * 0x9E3779B97F4A7C15**i)``
  mod 2**64 over its UTF-8 bytes; or a character: its code point) is folded FNV-1a style
  over the shingle's tokens in 64 bits, finalised with MurmurHash3 ``fmix64``, top 32 bits
  kept. Computed on the Arrow buffers: no Python object per word or shingle.

Words are maximal runs of ASCII letters / digits and non-ASCII characters (ASCII punctuation
and whitespace separate them), lowercased first by default; a word shingle's bytes are its
words joined by single spaces. ``strip_punctuation`` drops Unicode punctuation and symbols
before character shingling.
* ``sha1``: datasketch's default ``sha1_hash32`` of the shingle's UTF-8 bytes (one
  hashlib call per distinct shingle of the batch: slower, but the datasketch default).

LSH parameters (bands ``b`` x rows ``r``) are ``datasketch.MinHashLSH``'s choice for the
threshold and ``num_perm`` unless set. :class:`NearDuplicateValidator` is a keyed validator
(:mod:`datanet.validators.keyed`); this module is Beam-free.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet._memo import ArrayMemo
from datanet.errors import ValidatorError
from datanet.privacy.evasion import dedup_keys, fold_unicode
from datanet.privacy.normalise import normalise
from datanet.schemas.config import check, check_choice, check_range
from datanet.validators.keyed import KeyedValidator, KeyRows, Resolved, Shard, sparse_votes

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "MinHashConfig",
    "MinHasher",
    "NearDuplicateValidator",
    "MINHASH_INDEX_SCHEMA",
    "hash_function",
    "lsh_params",
    "shingles",
    "shingle_sets",
    "exact_jaccard",
    "rank_key",
]

_U64 = np.uint64
_FNV_OFFSET = _U64(0xCBF29CE484222325)
_FNV_PRIME = _U64(0x100000001B3)
_M32 = _U64(0xFFFFFFFF)

#: One row per record in ``index/minhash``: the LSH band hashes (``bands`` little-endian
#: uint64: what a later batch's search needs, 128 bytes at the defaults instead of the
#: 512-byte signature, which is a function of the shingle set and is recomputed for the few
#: verified pairs), the record's sorted distinct shingle hashes (exact Jaccard of LSH
#: candidates) and the parameters both were made with, so mismatches are detected. The
#: shingle sets are committed only where the stored text does not give them back (a
#: redacted record, or one without shingles); null means "of the accepted text", recomputed
#: for the few history rows a search verifies. Indexes written with a ``signature`` column
#: are still read.
MINHASH_INDEX_SCHEMA = pa.schema(
    [
        pa.field("contribution_id", pa.string(), nullable=False),
        pa.field("submitted_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("bands", pa.binary(), nullable=False),
        pa.field("shingles", pa.list_(pa.uint32())),
        pa.field("params", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class MinHashConfig:
    """``[validators.near_duplicate]``: MinHash + LSH near-duplicate settings."""

    #: Estimated Jaccard at or above which two records are near-duplicates. 0.8 is the
    #: issue's default and the usual choice (datatrove / NeMo Curator fuzzy dedup ~0.8).
    threshold: float = 0.8
    #: datasketch's default number of permutations.
    num_perm: int = 128
    #: datasketch's default seed.
    seed: int = 1
    shingle: Literal["word", "char"] = "word"
    #: 5-word shingles as datatrove's MinhashConfig (n_grams=5); use ~5 for characters too.
    shingle_size: int = 5
    hash: Literal["tokenhash", "sha1"] = "tokenhash"
    #: Lowercase and drop punctuation before shingling (datatrove's ``simplify_text``).
    lowercase: bool = True
    strip_punctuation: bool = True
    #: LSH bands x rows; 0 = datasketch's optimal choice for ``threshold`` and ``num_perm``
    #: under the weights below.
    bands: int = 0
    rows: int = 0
    #: datasketch ``MinHashLSH(weights=(fp, fn))``. Candidates are verified by exact Jaccard
    #: of their shingle sets, so false positives only cost a comparison: weight recall.
    #: (0.05, 0.95) gives 16 x 8 for 0.8 / 128 (P(candidate | J=0.8) = 0.95; datasketch's
    #: (0.5, 0.5) gives 9 x 13 and 0.40; datatrove uses 14 x 8 over 112 permutations, 0.92).
    false_positive_weight: float = 0.05
    false_negative_weight: float = 0.95
    #: Band-hash shards of the Beam stage's shuffle (parallelism of candidate search), as
    #: ``exact_duplicate.shards``; not part of :attr:`params` (stored rows do not depend on it).
    shards: int = 32
    #: A record is verified against at most this many best-ranked earlier texts of each LSH
    #: bucket it is in, so a huge cluster (templated spam) costs pairs linear in its size,
    #: not quadratic. NeMo Curator's false-positive check compares each bucket member with 2
    #: anchors; 8 keeps the resolution rule exact for buckets of up to 9 distinct texts and,
    #: measured on a 5000-record template cluster, costs about what the previous
    #: estimate-in-bucket stage did (591 vs 539 MB peak RSS; 32 would cost 1135 MB).
    max_candidates: int = 8

    def __post_init__(self) -> None:
        check_range("threshold", self.threshold, 0.01, 1.0)
        check_range("shards", self.shards, 1, 65536)
        check_range("max_candidates", self.max_candidates, 1, 1_000_000)
        check_range("num_perm", self.num_perm, 2, 4096)
        check_range("seed", self.seed, 0, 2**32 - 1)
        check_choice("shingle", self.shingle, ("word", "char"))
        check_range("shingle_size", self.shingle_size, 1, 64)
        check_choice("hash", self.hash, ("tokenhash", "sha1"))
        check_range("bands", self.bands, 0, self.num_perm)
        check_range("rows", self.rows, 0, self.num_perm)
        check_range("false_positive_weight", self.false_positive_weight, 0.0, 1.0)
        check_range("false_negative_weight", self.false_negative_weight, 0.0, 1.0)
        check(abs(self.false_positive_weight + self.false_negative_weight - 1.0) < 1e-9,
              "false_negative_weight", self.false_negative_weight,
              "must add up to 1.0 with false_positive_weight")
        if self.bands or self.rows:
            check_range("rows", self.bands * self.rows, 1, self.num_perm)

    @property
    def params(self) -> str:
        """A string naming every parameter a stored signature depends on."""
        b, r = lsh_params(self)
        return (f"affine32/p{self.num_perm}/s{self.seed}/{self.shingle}{self.shingle_size}/"
                f"{self.hash}/l{int(self.lowercase)}{int(self.strip_punctuation)}/b{b}r{r}")


@functools.lru_cache(maxsize=64)
def _optimal(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    """datasketch's ``_optimal_param``: the (b, r) with b * r <= num_perm minimising
    ``fp_weight * FP + fn_weight * FN``, FP = integral over [0, t] of 1 - (1 - s^r)^b and
    FN = integral over [t, 1] of (1 - s^r)^b (Leskovec et al., *Mining of Massive Datasets*
    §3.4). datasketch integrates with ``scipy.integrate.quad``; the integrands are
    polynomials of degree b * r <= num_perm, which Gauss-Legendre quadrature with
    num_perm // 2 + 1 nodes integrates exactly, so no scipy import (~0.5 s per process) is
    needed (a test compares the choices with datasketch's over a grid).
    """
    x, w = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    s_fp, w_fp = threshold / 2 * (x + 1), w * threshold / 2
    s_fn, w_fn = threshold + (1 - threshold) / 2 * (x + 1), w * (1 - threshold) / 2
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = float(np.dot(w_fp, 1 - (1 - s_fp ** float(r)) ** float(b)))
            fn = float(np.dot(w_fn, (1 - s_fn ** float(r)) ** float(b)))
            error = fp * weights[0] + fn * weights[1]
            if error < best:
                best, opt = error, (b, r)
    return opt


def lsh_params(config: MinHashConfig) -> tuple[int, int]:
    """(bands, rows): the config's, or datasketch's optimum for its threshold and num_perm."""
    if config.bands and config.rows:
        return config.bands, config.rows
    return _optimal(config.threshold, config.num_perm,
                    (config.false_positive_weight, config.false_negative_weight))


@functools.lru_cache(maxsize=64)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's ``affine32`` permutations (``MinHash._init_permutations``): odd ``a``
    and any ``b`` drawn from ``RandomState(seed)`` in that order (importing datasketch
    would import scipy)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch's ``_fmix(hv, 32)`` pre-mix)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


def _fold(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    """FNV-1a over ``lengths[i]`` (<= k) 64-bit tokens from ``starts[i]``, then fmix64, >> 32."""
    h = np.full(len(starts), _FNV_OFFSET, dtype=np.uint64)
    last = len(tokens) - 1
    with np.errstate(over="ignore"):
        for j in range(k):
            tok = tokens[np.minimum(starts + j, last)] if last >= 0 else np.zeros_like(h)
            step = (h ^ tok) * _FNV_PRIME
            h = np.where(j < lengths, step, h)
        return (_fmix64(h) >> _U64(32)).astype(np.uint32)


def _fold_fast(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    """:func:`_fold` over contiguous slices for full shingles, the gather path for short ones."""
    full = lengths == k
    n = len(tokens) - k + 1
    if n <= 0 or not full.any():
        return _fold(tokens, starts, lengths, k)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h ^= tokens[j:j + n]
            h *= _FNV_PRIME
        every = (_fmix64(h) >> _U64(32)).astype(np.uint32)
    out = np.empty(len(starts), dtype=np.uint32)
    out[full] = every[starts[full]]
    if not full.all():
        out[~full] = _fold(tokens, starts[~full], lengths[~full], k)
    return out


#: Bytes that belong to words: ASCII letters and digits, and every byte of a non-ASCII
#: character. ASCII punctuation and whitespace separate words.
_WORD_BYTE = np.zeros(256, dtype=bool)
for _lo, _hi in ((48, 57), (65, 90), (97, 122), (128, 255)):
    _WORD_BYTE[_lo:_hi + 1] = True
_WORD_RE = rb"[0-9A-Za-z\x80-\xff]+"
_POLY = _U64(0x9E3779B97F4A7C15)


def _word_hash(word: bytes) -> int:
    """Reference of the vectorised word hash: sum(byte_i * POLY**i) mod 2**64."""
    h, m = 0, 1
    for byte in word:
        h = (h + byte * m) & 0xFFFFFFFFFFFFFFFF
        m = (m * int(_POLY)) & 0xFFFFFFFFFFFFFFFF
    return h


def _word_tokens(pre: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Split UTF-8 texts into words and hash each word, on the raw Arrow buffers."""
    n = len(pre)
    if pre.type != pa.string():
        pre = pre.cast(pa.string())
    offsets = np.frombuffer(pre.buffers()[1], dtype=np.int32)[pre.offset:pre.offset + n + 1]
    data_buf = pre.buffers()[2]
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data_buf is None or hi == lo:
        return np.zeros(0, np.uint64), np.zeros(n, np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[lo:hi]
    rel = (offsets - lo).astype(np.int64)
    from datanet.validators._kernels import word_hashes

    return word_hashes(data, rel, _WORD_BYTE, _POLY)


def _preprocess(texts: pa.Array | pa.ChunkedArray, config: MinHashConfig) -> pa.Array:
    out = texts
    if config.lowercase:
        out = pc.utf8_lower(out)
    if config.strip_punctuation and config.shingle == "char":
        out = pc.replace_substring_regex(out, r"[\pP\pS]", "")
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return pc.fill_null(out, "")


def _shingle_layout(counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-shingle (token start, token count) and per-doc shingle counts."""
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_sh = np.where(counts >= k, counts - k + 1, np.where(counts > 0, 1, 0)).astype(np.int64)
    total = int(n_sh.sum())
    doc = np.repeat(np.arange(len(counts)), n_sh)
    first = np.concatenate([[0], np.cumsum(n_sh)[:-1]]).astype(np.int64)
    within = np.arange(total, dtype=np.int64) - np.repeat(first, n_sh)
    starts = offsets[doc] + within
    lengths = np.minimum(counts[doc], k)
    return starts, lengths, n_sh


_SIGNED: ArrayMemo[tuple[np.ndarray, np.ndarray, np.ndarray]] = ArrayMemo()


class MinHasher:
    """Vectorised MinHash of a batch of texts (datasketch ``affine32`` scheme)."""

    def __init__(self, config: MinHashConfig):
        self.config = config
        self.a, self.b = _permutations(config.num_perm, config.seed)
        self.bands, self.rows = lsh_params(config)
        self.params = config.params

    def _tokens(self, pre: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """64-bit token values (flat) and token counts per document."""
        if self.config.shingle == "word":
            return _word_tokens(pre)
        counts = pc.utf8_length(pre).to_numpy(zero_copy_only=False).astype(np.int64)
        joined = "".join(pre.to_pylist())
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
        return codes, counts

    def _shingle_hashes(self, pre: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hash per shingle (flat, grouped by doc) and shingle counts per doc."""
        k = self.config.shingle_size
        if self.config.hash == "tokenhash":
            tokens, counts = self._tokens(pre)
            starts, lengths, n_sh = _shingle_layout(counts, k)
            return _fold_fast(tokens, starts, lengths, k), n_sh
        per_doc = [shingles_of(t, self.config) for t in pre.to_pylist()]
        n_sh = np.array([len(s) for s in per_doc], dtype=np.int64)
        flat = [s for doc in per_doc for s in doc]
        uniq: dict[bytes, int] = {}
        codes = np.fromiter((uniq.setdefault(s, len(uniq)) for s in flat), np.int64, len(flat))
        fn = hash_function(self.config)
        table = np.fromiter((fn(s) for s in uniq), np.uint32, len(uniq))
        return table[codes], n_sh

    def _hashes(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        return self._shingle_hashes(_preprocess(texts, self.config))

    def _signed(self, texts: pa.Array | pa.ChunkedArray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shingle hashes, shingles per text, signatures) of ``texts``; near-duplicate and
        flood sketch the same folded batch one after the other, so the last one is kept."""
        def compute(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            hv, n_sh = self._hashes(arr)
            out = hv, n_sh, self._minhash(hv, n_sh)
            for a in out:  # shared by the callers: none may change it in place
                a.flags.writeable = False
            return out

        return _SIGNED.get(texts, self.params, compute)

    def signatures(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """``(n, num_perm)`` uint32 signatures; a text without shingles gets all 0xFFFFFFFF."""
        return self._signed(texts)[2]

    def sketch(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.ListArray]:
        """Signatures and each text's sorted distinct shingle hashes (for exact Jaccard)."""
        hv, n_sh, sig = self._signed(texts)
        return sig, shingle_sets(hv, n_sh)

    def _minhash(self, hv: np.ndarray, n_sh: np.ndarray) -> np.ndarray:
        n, p = len(n_sh), self.config.num_perm
        sig = np.full((n, p), np.uint32(0xFFFFFFFF), dtype=np.uint32)
        if len(hv) == 0:
            return sig
        from datanet.validators._kernels import minhash_into

        minhash_into(_fmix32(hv.astype(np.uint32)), n_sh, self.a, self.b,
                     sig)
        return sig

    def set_signatures(self, sets: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Signatures of stored shingle sets (``list<uint32>``): the signature of the text
        they came from, as a minimum over a multiset equals the minimum over its set."""
        if isinstance(sets, pa.ChunkedArray):
            sets = sets.combine_chunks()
        n_sh = pc.list_value_length(sets).to_numpy(zero_copy_only=False).astype(np.int64)
        return self._minhash(pc.list_flatten(sets).to_numpy(zero_copy_only=False), n_sh)

    def band_hashes(self, sig: np.ndarray) -> np.ndarray:
        """``(n, bands)`` uint64 hash of band number + the band's values (the LSH bucket).

        FNV-1a over the band number and its ``rows`` values, finalised with ``fmix64``. A
        collision only adds a candidate pair, which exact verification then rejects.
        """
        n = sig.shape[0]
        block = sig[:, :self.bands * self.rows].reshape(n, self.bands, self.rows)
        h = np.empty((n, self.bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            h[:] = (_FNV_OFFSET ^ np.arange(self.bands, dtype=np.uint64)) * _FNV_PRIME
            for j in range(self.rows):
                h ^= block[:, :, j]
                h *= _FNV_PRIME
            return _fmix64(h)


def shingle_sets(hv: np.ndarray, n_sh: np.ndarray) -> pa.ListArray:
    """``list<uint32>`` per document: its sorted distinct shingle hashes."""
    from datanet.validators._kernels import distinct_sorted

    values, offsets = distinct_sorted(hv.astype(np.uint32), n_sh.astype(np.int64))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def exact_jaccard(left: pa.Array | pa.ChunkedArray,
                  right: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row-wise Jaccard of two equally long ``list<uint32>`` columns of sorted distinct
    hashes (what :func:`shingle_sets` makes): one compiled merge per row."""
    from datanet.validators._kernels import sorted_intersections

    sides = []
    for col in (left, right):
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
        values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        sides.append((lengths, values, offsets))
    inter = sorted_intersections(sides[0][1], sides[0][2], sides[1][1], sides[1][2])
    union = sides[0][0] + sides[1][0] - inter
    return np.divide(inter, union, out=np.zeros(len(union)), where=union > 0)


def shingles_of(pre_text: str, config: MinHashConfig) -> list[bytes]:
    """Shingles of one already-preprocessed text, as UTF-8 bytes (the datasketch input)."""
    import re

    k = config.shingle_size
    if config.shingle == "word":
        units: Sequence[bytes] = re.findall(_WORD_RE, pre_text.encode())
        sep = b" "
    else:
        units = [c.encode() for c in pre_text]
        sep = b""
    if not units:
        return []
    if len(units) < k:
        return [sep.join(units)]
    return [sep.join(units[i:i + k]) for i in range(len(units) - k + 1)]


def shingles(text: str, config: MinHashConfig) -> list[bytes]:
    """Shingles of one normalised text exactly as :class:`MinHasher` sees them (reference)."""
    return shingles_of(_preprocess(pa.array([text]), config)[0].as_py(), config)


def hash_function(config: MinHashConfig) -> Callable[[bytes], int]:
    """The shingle hash as a datasketch ``hashfunc`` (bytes -> 32-bit int)."""
    if config.hash == "sha1":
        from datasketch.hashfunc import sha1_hash32

        return sha1_hash32

    word = config.shingle == "word"

    def tokenhash(data: bytes) -> int:
        if word:
            toks = np.array([_word_hash(w) for w in data.split(b" ")], dtype=np.uint64)
        else:
            toks = np.array([ord(c) for c in data.decode()], dtype=np.uint64)
        return int(_fold(toks, np.zeros(1, np.int64), np.array([len(toks)]), len(toks))[0])

    return tokenhash


def rank_key(in_history: bool, submitted_at: int, contribution_id: str) -> tuple[int, int, str]:
    """Resolution order: history first, then earliest submitted_at, then smallest id."""
    return (0 if in_history else 1, submitted_at, contribution_id)


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """datasketch's Jaccard estimate: the fraction of equal signature slots."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


__all__ += ["jaccard", "shingles_of"]


def skip_exact_copies(spec: DatanetSpec | None) -> bool:
    """Identical texts are left to ``exact_duplicate`` when it is enabled (one reason each)."""
    if spec is None:
        return True
    from datanet.validators.registry import is_enabled

    return is_enabled(spec, "exact_duplicate")


__all__ += ["skip_exact_copies"]


_EMPTY = np.uint32(0xFFFFFFFF)
#: Index columns a shard fetches to verify a candidate pair.
_CAND_COLUMNS = ["contribution_id", "submitted_at", "shingles"]


def band_rows(hasher: MinHasher, sig: np.ndarray, ids: pa.Array | pa.ChunkedArray,
              submitted_at: pa.Array | pa.ChunkedArray,
              hashes: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Key rows of the near-duplicate search from signatures (see :func:`rows_of_bands`)."""
    return rows_of_bands(hasher.band_hashes(sig), ~np.all(sig == _EMPTY, axis=1), ids,
                         submitted_at, hashes)


def rows_of_bands(bands: np.ndarray, shingled: np.ndarray, ids: pa.Array | pa.ChunkedArray,
                  submitted_at: pa.Array | pa.ChunkedArray,
                  hashes: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Key rows of the near-duplicate search: one per record with shingles and band.

    ``bands``: (n, b) band hashes; ``shingled``: records with at least one shingle (the
    others take part in no search). ``shard_key``: the band hash (band number + band
    values); ``submitted_at``, the first 64 bits of the id and of the dedup key rank and skip
    pairs; ``_row``: the record's row. 36 bytes per record and band: no strings.
    """
    from datanet.validators.keyed import hex64

    rows = np.flatnonzero(shingled)
    b = bands.shape[1]
    ts = pc.cast(submitted_at, pa.int64()).to_numpy(zero_copy_only=False)
    return pa.table({
        "shard_key": np.ascontiguousarray(bands[rows]).ravel(),
        "submitted_at": np.repeat(ts[rows], b),
        "id64": np.repeat(hex64(ids)[rows], b),
        "ch64": np.repeat(hex64(hashes)[rows], b),
        "_row": np.repeat(rows.astype(np.int32), b),
    })


def candidate_pairs(band: np.ndarray, new: np.ndarray, ts: np.ndarray, id64: np.ndarray,
                    ch64: np.ndarray, *, skip_exact: bool, max_candidates: int = 8
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(later, earlier, capped)``: every new row with each earlier-ranked bucket mate.

    Within a bucket (equal ``band``) rows are ranked history first, then ``ts``, then id;
    only the first row of each content hash is a candidate (its copies have the same
    shingles), and only the ``max_candidates`` best-ranked ones (``capped`` counts the
    others left out); a pair of one id, or of one content when ``skip_exact``, is no
    candidate. Distinct pairs, sorted.
    """
    n = len(band)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    from datanet.validators._kernels import bucket_orders

    order, by_content = bucket_orders(band, new, ts, id64, ch64)
    b = band[order]
    starts = np.r_[True, b[1:] != b[:-1]]
    group = np.cumsum(starts) - 1
    cb, cc = b[by_content], ch64[order][by_content]
    rep = np.zeros(n, dtype=bool)
    rep[by_content[np.r_[True, (cb[1:] != cb[:-1]) | (cc[1:] != cc[:-1])]]] = True
    reps_before = np.cumsum(rep) - rep  # reps at sorted positions < i
    first_rep = reps_before[np.flatnonzero(starts)][group]  # reps before the bucket
    every = np.where(new[order], reps_before - first_rep, 0)
    count = np.minimum(every, max_candidates)
    total = int(count.sum())
    later = np.repeat(np.arange(n), count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    earlier = np.flatnonzero(rep)[np.repeat(first_rep, count) + within]
    later, earlier = order[later], order[earlier]
    keep = id64[later] != id64[earlier]
    if skip_exact:
        keep &= ch64[later] != ch64[earlier]
    key = np.sort(later[keep].astype(np.int64) * n + earlier[keep])
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return key // n, key % n, int(every.sum()) - total


def _binary_matrix(col: pa.Array | pa.ChunkedArray, width: int, dtype: str) -> np.ndarray:
    """``(n, width)`` of ``dtype`` from a binary column of equally long little-endian rows."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros((0, width), dtype=dtype)
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
    raw = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return raw.view(dtype).reshape(n, width)


def sig_matrix(col: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    """``(n, num_perm)`` uint32 from a binary column of little-endian signatures."""
    return _binary_matrix(col, num_perm, "<u4")


def _binary_rows(matrix: np.ndarray, dtype: str) -> pa.Array:
    """A binary column of the rows of ``matrix`` as little-endian ``dtype``."""
    n, width = matrix.shape
    size = width * np.dtype(dtype).itemsize
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(size), n, [None, pa.py_buffer(matrix.astype(dtype).tobytes())])
    return fixed.cast(pa.binary())


__all__ += ["band_rows", "candidate_pairs", "rows_of_bands", "sig_matrix"]


class NearDuplicateValidator(KeyedValidator):
    """MinHash LSH near-duplicates, keyed by band (NeMo Curator's LSH + false-positive check).

    :meth:`key`: per batch, the signatures and shingle sets (the ``index/minhash`` rows, also
    the lookup table) and one key row per record and band. :meth:`resolve`: per band shard,
    one numpy sort finds every new record's earlier-ranked bucket mates
    (:func:`candidate_pairs`); the pair's signatures and shingle sets are looked up by row,
    the exact Jaccard of the shingle sets decides, and a record loses to its best-ranked
    verified match (history first, then earliest ``submitted_at``, then smallest id: the
    ``vote_rank`` columns, so the best over every shard wins).
    """

    name: ClassVar[str] = "near_duplicate"
    config_cls = MinHashConfig
    summary = ("Near-duplicates: MinHash LSH candidates confirmed by the exact Jaccard of "
               "shingle sets.")
    reason_codes = ("near_duplicate",)
    history_kind = "index/minhash"
    history_source = "accepted"
    history_source_columns = ("contribution_id", "text")
    vote_rank = ("_rank_new", "_rank_at", "_rank_id")

    def __init__(self, config: MinHashConfig, spec: DatanetSpec | None = None):
        self.config = config
        self.spec = spec
        self.skip_exact = skip_exact_copies(spec)
        self._hasher: MinHasher | None = None

    def setup(self) -> None:
        self._hasher = MinHasher(self.config)

    @property
    def hasher(self) -> MinHasher:
        """The per-worker signature computer."""
        if self._hasher is None:
            raise self._not_set_up()
        return self._hasher

    def index_rows(self, batch: pa.RecordBatch, bands: np.ndarray,
                   shingle_hashes: pa.ListArray) -> pa.Table:
        """``index/minhash`` rows for every record of ``batch`` (``bands``: (n, b) hashes)."""
        n = batch.num_rows
        return pa.Table.from_arrays(
            [batch.column("contribution_id"), batch.column("submitted_at"),
             batch.column("content_hash"), _binary_rows(bands, "<u8"), shingle_hashes,
             pa.array([self.hasher.params] * n, pa.string())],
            schema=MINHASH_INDEX_SCHEMA,
        )

    def key(self, batch: pa.RecordBatch) -> KeyRows:
        hasher = self.hasher
        # homoglyphs folded as for PII and exact dedup: a look-alike copy shingles the same
        folded = fold_unicode(batch.column("text_norm"))
        sig, sets = hasher.sketch(folded)
        bands = hasher.band_hashes(sig)
        index = self.index_rows(batch, bands, sets)
        keys = dedup_keys(batch.column("text_norm"), batch.column("content_hash"),
                          folded=folded)  # what skip_exact compares: exact copies by the fold
        rows = rows_of_bands(bands, ~np.all(sig == _EMPTY, axis=1),
                             batch.column("contribution_id"), batch.column("submitted_at"), keys)
        return KeyRows(rows, index={"minhash": index}, lookup=index)

    def history_key(self, table: pa.Table, path: str) -> KeyRows:
        if "shingles" not in table.column_names:
            raise ValidatorError(
                f"{path}: index/minhash has no 'shingles' column (written before candidates "
                "were verified by exact Jaccard); rebuild the index from the accepted records")
        hasher = self.hasher
        params = set(table.column("params").to_pylist())
        if table.num_rows and params != {hasher.params}:
            raise ValidatorError(
                f"{path}: index/minhash was built with {sorted(params)} but "
                f"validators.near_duplicate now gives {hasher.params!r}; restore the "
                "previous MinHash settings or rebuild the index from the accepted records")
        if "bands" in table.column_names:
            bands = _binary_matrix(table.column("bands"), hasher.bands, "<u8")
        else:  # an index written before band hashes replaced signatures
            bands = hasher.band_hashes(sig_matrix(table.column("signature"),
                                                  self.config.num_perm))
        # null: a set left to the accepted text, committed only when it is not empty
        shingled = pc.fill_null(pc.greater(pc.list_value_length(table.column("shingles")), 0),
                                True).to_numpy(zero_copy_only=False)
        rows = rows_of_bands(bands, shingled, table.column("contribution_id"),
                             table.column("submitted_at"), table.column("content_hash"))
        return KeyRows(rows, lookup=table)

    def commit_index(self, kind: str, rows: pa.Table, reproducible: pa.Array) -> pa.Table:
        """Blank the shingle sets the accepted text gives back (most of the index's bytes:
        ~4 bytes per word, more than the compressed text); a redacted record keeps its set
        of the text it was validated with, and an empty set stays (it means "no key rows")."""
        sets = rows.column("shingles")
        blank = pc.and_(pc.is_in(rows.column("contribution_id"), value_set=reproducible),
                        pc.greater(pc.list_value_length(sets), 0))
        if not pc.any(blank).as_py():
            return rows
        kept = pc.if_else(blank, pa.scalar(None, sets.type), sets)
        return rows.set_column(rows.schema.get_field_index("shingles"), "shingles", kept)

    def shingle_sets_of(self, texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
        """The shingle sets :meth:`key` computes, from stored texts (intake's normalisation,
        then the homoglyph fold)."""
        return self.hasher.sketch(fold_unicode(normalise(texts)))[1]

    def complete_history(self, rows: pa.Table, source: Callable[[], pa.Table]) -> pa.Table:
        if "shingles" not in rows.column_names or not rows.column("shingles").null_count:
            return rows
        sets = rows.column("shingles").combine_chunks()
        missing = sets.is_null()
        ids = rows.column("contribution_id").combine_chunks().filter(missing)
        stored = source()
        stored = stored.filter(pc.is_in(stored.column("contribution_id"), value_set=ids))
        at = pc.index_in(ids, value_set=stored.column("contribution_id"))
        if at.null_count:
            lost = ids.filter(at.is_null())[0].as_py()
            raise ValidatorError(
                f"index/minhash row {lost} has no shingle set and its batch's accepted files "
                "do not hold that record; run 'datanet verify-history'")
        fresh = self.shingle_sets_of(stored.column("text")).take(at)
        # each row's kept set, or (the j-th missing row) the j-th recomputed one
        pick = np.arange(len(sets))
        gaps = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
        pick[gaps] = len(sets) + np.arange(len(gaps))
        filled = pa.concat_arrays([sets, fresh]).take(pa.array(pick))
        return rows.set_column(rows.schema.get_field_index("shingles"), "shingles", filled)

    def resolve(self, shard: Shard) -> Resolved:
        rows = shard.rows
        later, earlier, capped = candidate_pairs(
            rows.column("shard_key").to_numpy(), shard.is_new,
            rows.column("submitted_at").to_numpy(), rows.column("id64").to_numpy(),
            rows.column("ch64").to_numpy(), skip_exact=self.skip_exact,
            max_candidates=self.config.max_candidates)
        counters = {"candidate_pairs": len(later), "candidates_capped": capped}
        if not len(later):
            return Resolved(counters=counters)
        part = rows.column("_part").to_numpy()
        row = rows.column("_row").to_numpy()
        history = rows.column("_history").to_numpy(zero_copy_only=False)
        # one record pair may meet in several bands of this shard: verify it once
        quad = np.unique(np.stack([part[later], row[later], part[earlier], row[earlier],
                                   history[earlier]], axis=1).astype(np.int64), axis=0)
        # one lookup for both sides: each part's table is read once, only its rows kept
        k = len(quad)
        both = shard.lookup(np.r_[quad[:, 0], quad[:, 2]], np.r_[quad[:, 1], quad[:, 3]],
                            _CAND_COLUMNS)
        own, got = both.slice(0, k), both.slice(k)
        num_perm = self.config.num_perm
        estimated = np.count_nonzero(
            self.hasher.set_signatures(own.column("shingles"))
            == self.hasher.set_signatures(got.column("shingles")), axis=1) / num_perm
        exact = exact_jaccard(own.column("shingles"), got.column("shingles"))
        same = pc.equal(own.column("contribution_id"), got.column("contribution_id"))
        ok = (exact >= self.config.threshold) & ~same.to_numpy(zero_copy_only=False)
        counters["candidates_below_threshold"] = int((~ok).sum())
        if not ok.any():
            return Resolved(counters=counters)
        keep = np.flatnonzero(ok)
        in_history = quad[keep, 4].astype(bool)
        cand_ids = got.column("contribution_id").take(pa.array(keep)).to_pylist()
        details = [json.dumps({"matched": c, "jaccard": round(float(j), 4),
                               "estimated_jaccard": round(float(e), 4), "history": bool(h)},
                              sort_keys=True)
                   for c, j, e, h in zip(cand_ids, exact[keep], estimated[keep], in_history,
                                         strict=True)]
        votes = sparse_votes(
            quad[keep, 0], quad[keep, 1], reason="near_duplicate",
            scores=[round(float(j), 6) for j in exact[keep]], details=details,
            _rank_new=pa.array(~in_history),
            _rank_at=pc.cast(got.column("submitted_at"), pa.int64()).take(pa.array(keep)),
            _rank_id=pa.array(cand_ids, pa.string()))
        counters["rejected_pairs"] = len(keep)
        return Resolved(votes=votes, counters=counters)
