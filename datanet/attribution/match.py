"""Match model outputs against a snapshot's shards and credit the records they reproduce.

For one output of ``T`` normalised tokens:

1. Every ``ngram``-gram of the output is looked up in every shard (binary search on the sorted
   hashes, in place). An n-gram held by more than ``max_holders`` records is boilerplate and
   credited to no one.
2. Per record, consecutive output n-grams it holds chain into a maximal span of tokens
   ``[p, q + ngram)``; spans shorter than ``min_span`` tokens are dropped; overlapping spans
   of one record merge. (Hashed n-grams: two overlapping n-grams of one record are taken to be
   one passage of it; a hash collision is a 2**-64 event.)
3. Output token ``p`` covered by the spans of ``n_p`` distinct records carries the mass
   ``1/T``, of which the fraction ``w(n_p) = ln((N+1)/n_p) / ln(N+1)`` is credited, split
   evenly over the ``n_p`` records; ``N`` is the number of records in the snapshot. ``w`` is
   the inverse document frequency of Spärck Jones (1972, "A statistical interpretation of term
   specificity and its application in retrieval", J. Documentation 28(1)) in its smoothed form
   ``log((1+N)/n)``, divided by its maximum (``n = 1``): a span unique to one record gives it
   full credit, a span in 1 % of the records keeps ``1 - ln(100)/ln(N+1)`` of its mass (less
   than half once N > 10 000), one in every record keeps ~0.
4. A record's weight is the sum over the tokens it covers; ``unattributed`` is the rest, so the
   weights and ``unattributed`` sum to 1. Spans are reported as character offsets in the
   original output (through the folding's offset map).

Records the snapshot later rejected (a ``rejected`` file of a later batch names their id) are
left out of the index view, and of ``N``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datanet.attribution.config import AttributionConfig, attribution_config
from datanet.attribution.index import Shard, accepted_records, load_shard, shard_entry
from datanet.attribution.tokens import gram_hashes, output_tokens
from datanet.errors import SpecError, StoreError
from datanet.schemas.ids import keccak_hex

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["Attribution", "AttributionResult", "Snapshot", "AttributionIndex", "attribute",
           "output_hash"]


@dataclass(frozen=True)
class Attribution:
    """One credited record: its weight in the output and the output's spans it reproduces."""

    contribution_id: str
    contributor: str
    batch_id: str
    weight: float
    spans: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``--format json``."""
        return {"contribution_id": self.contribution_id, "contributor": self.contributor,
                "batch_id": self.batch_id, "weight": self.weight,
                "spans": [list(s) for s in self.spans]}


@dataclass(frozen=True)
class Snapshot:
    """The datanet state an output was attributed against."""

    seq: int
    batch_id: str | None
    merkle_root: str | None
    records: int
    min_span: int
    ngram: int

    def to_json(self) -> dict[str, Any]:
        """JSON object (``snapshot`` of a result)."""
        return {"seq": self.seq, "batch_id": self.batch_id, "merkle_root": self.merkle_root,
                "records": self.records, "min_span": self.min_span, "ngram": self.ngram}


@dataclass(frozen=True)
class AttributionResult:
    """The attribution of one output."""

    id: str
    output_hash: str
    snapshot: Snapshot
    attributions: tuple[Attribution, ...]
    unattributed: float
    tokens: int = 0
    model: str | None = None
    text: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        """One line of ``datanet attribute --format json``."""
        return {"id": self.id, "output_hash": self.output_hash,
                "snapshot": self.snapshot.to_json(),
                "attributions": [a.to_json() for a in self.attributions],
                "unattributed": self.unattributed}


def output_hash(text: str) -> str:
    """keccak256 of the output's UTF-8 bytes (0x-hex)."""
    return keccak_hex(text.encode("utf-8"))


class AttributionIndex:
    """The shards of a snapshot (batches up to ``as_of``), memory-mapped, ready to match."""

    def __init__(self, store: DatanetStore, *, as_of: int | None = None,
                 config: AttributionConfig | None = None):
        from datanet.store.layout import DatanetStore

        self.store = store if isinstance(store, DatanetStore) else DatanetStore(store)
        self.config = config or attribution_config(self.store.spec)
        all_manifests = self.store.manifests()
        if as_of is not None and as_of != 0 and as_of not in {m.seq for m in all_manifests}:
            raise StoreError(f"--as-of {as_of}: no such batch; committed batches are "
                             f"1..{len(all_manifests)}")
        manifests = [m for m in all_manifests if as_of is None or m.seq <= as_of]
        self.manifests = manifests
        self.shards: list[Shard] = []
        ids: list[pa.Array] = []
        contributors: list[pa.Array] = []
        for m in manifests:
            if not m.files.get("accepted"):
                continue
            entry = shard_entry(self.store, m)
            if entry is None:
                raise StoreError(f"batch {m.seq} ({m.batch_id}) has no attribution index "
                                 f"shard (committed before attribution existed); run "
                                 f"`datanet index {self.store.root}`")
            shard = load_shard(self.store, m, entry)
            meta = accepted_records(self.store, m.files["accepted"],
                                    ("contribution_id", "contributor"))
            if meta.num_rows != shard.records:
                raise StoreError(f"batch {m.seq}: shard {entry.path} indexes {shard.records} "
                                 f"records, the batch has {meta.num_rows}")
            self.shards.append(shard)
            ids.append(meta["contribution_id"].combine_chunks())
            contributors.append(meta["contributor"].combine_chunks())
        last = manifests[-1] if manifests else None
        root = next((m.merkle_root for m in reversed(manifests) if m.merkle_root), None)
        self._setup(ids, contributors, (last.seq if last else 0,
                                        last.batch_id if last else None, root))

    @classmethod
    def from_shards(cls, shards: Sequence[Shard], contribution_ids: Sequence[pa.Array],
                    contributors: Sequence[pa.Array], *, config: AttributionConfig | None = None,
                    seq: int = 0) -> AttributionIndex:
        """An index over in-memory shards (benchmarks, tests): no store, nothing rejected."""
        self = cls.__new__(cls)
        self.store = None
        self.config = config or AttributionConfig()
        self.manifests = []
        self.shards = list(shards)
        self._setup(list(contribution_ids), list(contributors), (seq, None, None))
        return self

    def _setup(self, ids: list[pa.Array], contributors: list[pa.Array],
               snapshot_base: tuple[int, str | None, str | None]) -> None:
        ngrams = {s.ngram for s in self.shards}
        if len(ngrams) > 1:
            raise StoreError(f"shards of this snapshot use different n-gram lengths "
                             f"{sorted(ngrams)}; re-index with one [attribution] ngram")
        self.ngram = ngrams.pop() if ngrams else self.config.ngram
        self.bases = np.zeros(len(self.shards) + 1, np.int64)
        np.cumsum([s.records for s in self.shards], out=self.bases[1:])
        self.contribution_ids = (pa.concat_arrays(ids) if ids else pa.array([], pa.string()))
        self.contributors = (pa.concat_arrays(contributors) if contributors
                             else pa.array([], pa.string()))
        self.record_shard = np.repeat(np.arange(len(self.shards), dtype=np.int32),
                                      [s.records for s in self.shards])
        self.active = self._active_mask()
        # one compiled call searches every part of every shard (a numpy call per part costs
        # ~0.1 ms); parts of one shard cover disjoint grams and share its record numbering
        parts = [(i, g, r) for i, s in enumerate(self.shards) for g, r in s.parts]
        self._grams = numba.typed.List([_readonly(g) for _, g, _ in parts] or
                                       [_readonly(np.zeros(0, np.uint64))])
        self._rows = numba.typed.List([_readonly(r) for _, _, r in parts] or
                                      [_readonly(np.zeros(0, np.uint32))])
        self._part_bases = self.bases[np.array([i for i, _, _ in parts] or [0], np.int64)]
        # per part, a directory of the top bits of the (uniform) hashes: a lookup costs two
        # memory accesses instead of a binary search's ~log2(n) cache misses; a part's grams
        # lie in [first, last] (a spill bucket covers 1/256 of the hashes), so its directory
        # spans that range: bucket = (x - first) >> shift
        bits = [_directory_bits(len(g)) for g in self._grams]
        self._firsts = np.array([g[0] if len(g) else 0 for g in self._grams], np.uint64)
        spans = [int(g[-1]) - int(g[0]) if len(g) else 0 for g in self._grams]
        self._shifts = np.array([max(span.bit_length() - b, 0) for span, b in
                                 zip(spans, bits, strict=True)], np.int64)
        self._dirs = numba.typed.List([_directory(g, f, sh, b) for g, f, sh, b in
                                       zip(self._grams, self._firsts, self._shifts, bits,
                                           strict=True)])
        self.records = int(self.active.sum())
        self.snapshot_base = snapshot_base

    def _active_mask(self) -> np.ndarray:
        """False for records the snapshot rejected after accepting them."""
        active = np.ones(len(self.contribution_ids), bool)
        paths = [p for m in self.manifests for p in m.paths("rejected")] if self.store else []
        if not paths or not len(active):
            return active
        rejected = pa.concat_arrays([
            pq.read_table(self.store.abs(p), columns=["contribution_id"])["contribution_id"]
            .combine_chunks() for p in paths])
        hit = pc.is_in(self.contribution_ids, value_set=rejected).to_numpy(zero_copy_only=False)
        active[hit] = False
        return active

    def snapshot(self, min_span: int) -> Snapshot:
        """The snapshot descriptor of results at ``min_span``."""
        seq, batch, root = self.snapshot_base
        return Snapshot(seq, batch, root, self.records, min_span, self.ngram)

    def _check_min_span(self, min_span: int | None) -> int:
        span = self.config.min_span if min_span is None else int(min_span)
        if span < self.ngram:
            raise SpecError("min_span", span, f"must be >= the index n-gram length "
                            f"({self.ngram}); the shards hash {self.ngram}-token n-grams")
        return span

    def attribute(self, text: str, *, id: str = "", model: str | None = None,
                  min_span: int | None = None) -> AttributionResult:
        """Attribute one output."""
        span = self._check_min_span(min_span)
        toks = output_tokens(text)
        credits = self._credit(toks.hashes, span)
        attributions = []
        for rec, weight, intervals in credits:
            spans = _merge_chars([(int(toks.spans[a, 0]), int(toks.spans[b - 1, 1]))
                                  for a, b in intervals])
            shard = self.shards[int(self.record_shard[rec])]
            if round(weight, 12) == 0.0:
                continue
            attributions.append(Attribution(
                contribution_id=self.contribution_ids[rec].as_py(),
                contributor=self.contributors[rec].as_py(),
                batch_id=shard.batch_id, weight=round(weight, 12), spans=tuple(spans)))
        attributions.sort(key=lambda a: (-a.weight, a.contribution_id))
        unattributed = max(0.0, round(1.0 - math.fsum(a.weight for a in attributions), 12))
        return AttributionResult(id=id, output_hash=output_hash(text),
                                 snapshot=self.snapshot(span),
                                 attributions=tuple(attributions), unattributed=unattributed,
                                 tokens=len(toks), model=model, text=text)

    def _credit(self, tokens: np.ndarray, min_span: int
                ) -> list[tuple[int, float, list[tuple[int, int]]]]:
        """``(record, weight, token intervals)`` per credited record (module doc)."""
        k = self.ngram
        n_tok = len(tokens)
        if n_tok < min_span or not self.shards or self.records == 0:
            return []
        q, _ = gram_hashes(tokens, np.array([0, n_tok], np.int64), k)
        lo, hi = _lookup(self._grams, self._dirs, self._firsts, self._shifts, q)
        counts = (hi - lo).sum(axis=0)
        ok = (counts > 0) & (counts <= self.config.max_holders)
        if not ok.any():
            return []
        rec, pos = _gather(self._rows, lo, hi, ok, self._part_bases)
        keep = self.active[rec]
        width = len(q) + 1
        key = np.unique(rec[keep] * width + pos[keep])
        rec, pos = key // width, key % width
        if not len(key):
            return []
        brk = np.ones(len(key), bool)
        brk[1:] = (rec[1:] != rec[:-1]) | (pos[1:] != pos[:-1] + 1)
        starts = np.flatnonzero(brk)
        ends = np.append(starts[1:], len(key)) - 1
        run_rec = rec[starts]
        run_a = pos[starts]
        run_b = pos[ends] + k  # exclusive token end
        long = (run_b - run_a) >= min_span
        intervals: dict[int, list[tuple[int, int]]] = {}
        for r, a, b in zip(run_rec[long].tolist(), run_a[long].tolist(), run_b[long].tolist(),
                           strict=True):
            iv = intervals.setdefault(r, [])
            if iv and a <= iv[-1][1]:
                iv[-1] = (iv[-1][0], max(iv[-1][1], b))
            else:
                iv.append((a, b))
        if not intervals:
            return []
        diff = np.zeros(n_tok + 1, np.int64)
        for iv in intervals.values():
            for a, b in iv:
                diff[a] += 1
                diff[b] -= 1
        n_p = np.cumsum(diff[:-1])
        big_n = self.records
        covered = n_p > 0
        g = np.zeros(n_tok, np.float64)
        if big_n > 0:
            npc = n_p[covered].astype(np.float64)
            g[covered] = np.log((big_n + 1) / npc) / math.log(big_n + 1) / npc / n_tok
        prefix = np.concatenate([[0.0], np.cumsum(g)])
        out = []
        for r, iv in intervals.items():
            w = float(sum(prefix[b] - prefix[a] for a, b in iv))
            if w > 0:
                out.append((r, w, iv))
        return out

    def attribute_many(self, items: Iterable[Mapping[str, Any]], *,
                       min_span: int | None = None) -> list[AttributionResult]:
        """Attribute ``{"id", "text", "model"?}`` items, in order."""
        return [self.attribute(str(it["text"]), id=str(it.get("id", "")),
                               model=it.get("model"), min_span=min_span) for it in items]


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view (memory-mapped shards are read-only; numba lists need one type)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _directory_bits(n: int) -> int:
    """Directory size 2**bits ~ n / 4 entries (1 byte per n-gram in memory)."""
    return int(min(max(int(n // 4).bit_length(), 1), 30))


@numba.njit(cache=True)
def _directory(grams: np.ndarray, first: np.uint64, shift: np.int64, bits: int) -> np.ndarray:
    """``d[b]`` = index of the first gram with ``(gram - first) >> shift >= b`` (sorted grams
    in ``[first, first + 2**(bits + shift))``)."""
    size = 1 << bits
    d = np.zeros(size + 1, np.int64)
    sh = np.uint64(shift)
    for i in range(len(grams)):
        d[np.int64((grams[i] - first) >> sh) + 1] += 1
    for b in range(size):
        d[b + 1] += d[b]
    return d


@numba.njit(cache=True)
def _lookup(shards: Any, dirs: Any, firsts: np.ndarray, shifts: np.ndarray, q: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of shape (parts, len(q)): the range of each query hash in each part."""
    lo = np.zeros((len(shards), len(q)), np.int64)
    hi = np.zeros((len(shards), len(q)), np.int64)
    for s in range(len(shards)):
        g = shards[s]
        if len(g) == 0:
            continue
        d = dirs[s]
        first = firsts[s]
        last = g[len(g) - 1]
        shift = np.uint64(shifts[s])
        for i in range(len(q)):
            x = q[i]
            if x < first or x > last:
                continue
            bucket = np.int64((x - first) >> shift)
            a = d[bucket]
            end = d[bucket + 1]
            while a < end and g[a] < x:
                a += 1
            lo[s, i] = a
            while a < end and g[a] == x:
                a += 1
            hi[s, i] = a
    return lo, hi


@numba.njit(cache=True)
def _gather(rows: Any, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray, bases: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(global record, query position)`` of every hit at the positions ``ok`` allows."""
    total = 0
    for s in range(lo.shape[0]):
        for i in range(lo.shape[1]):
            if ok[i]:
                total += hi[s, i] - lo[s, i]
    rec = np.empty(total, np.int64)
    pos = np.empty(total, np.int64)
    t = 0
    for s in range(lo.shape[0]):
        r = rows[s]
        for i in range(lo.shape[1]):
            if ok[i]:
                for j in range(lo[s, i], hi[s, i]):
                    rec[t] = r[j] + bases[s]
                    pos[t] = i
                    t += 1
    return rec, pos


def _merge_chars(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def attribute(store_or_path: Any, texts: Iterable[str | Mapping[str, Any]], *,
              as_of: int | None = None, min_span: int | None = None
              ) -> list[AttributionResult]:
    """Attribute model outputs (strings, or ``{"id", "text", "model"?}`` mappings) against a
    datanet's committed snapshot (as of batch ``as_of``); results in input order."""
    index = (store_or_path if isinstance(store_or_path, AttributionIndex)
             else AttributionIndex(store_or_path if not isinstance(store_or_path, str)
                                   else Path(store_or_path), as_of=as_of))
    items = [{"id": str(i), "text": t} if isinstance(t, str) else t
             for i, t in enumerate(texts)]
    return index.attribute_many(items, min_span=min_span)



