"""The keyed-validator contract: two methods over Arrow, no Beam.

A *keyed* validator needs records from the whole input (and the datanet's history) at once:
exact duplicates, near duplicates, floods by one contributor. It says how to cut the problem
into independent shards, and how to decide one shard; the pipeline's one generic keyed stage
(:mod:`datanet.pipelines.keyed`) does the rest on every runner, and :func:`resolve_in_memory`
does the same without Beam for tests and small tools (so there is one implementation):

1. :meth:`KeyedValidator.key` turns a batch into *key rows*: a ``shard_key`` (uint64; the
   shard is ``shard_key % shards``), the record's row in the batch (``_row``) and whatever
   compact columns :meth:`~KeyedValidator.resolve` needs. A record may have no key row (never
   matched) or several (one per LSH band). :meth:`~KeyedValidator.key` may also return index
   rows the datanet keeps for accepted records, and the *lookup* table that
   :meth:`Shard.lookup` serves by row (so no large payload ever travels with the key rows).
2. :meth:`KeyedValidator.history_key` does the same for one committed file of
   :attr:`~KeyedValidator.history_kind`.
3. :meth:`KeyedValidator.resolve` decides one shard: every key row of that shard from the
   input and the history, with ``_part`` (which batch or history file) and ``_history``
   columns added. It returns only the votes that are not a plain accept (``_part``, ``_row``,
   ``verdict``, ``score``, ``reason``, ``details`` and the :attr:`~KeyedValidator.vote_rank`
   columns) and the records to divert to dead-letter. Every record without a vote is
   accepted; when several shards vote on one record, the vote first by ``vote_rank`` wins.

Index rows may leave out what the stored record reproduces (the near-duplicate shingle sets of
a record whose stored text is the text it was validated with):
:meth:`KeyedValidator.commit_index` blanks it as the batch is committed, and
:meth:`KeyedValidator.complete_history` recomputes it for the few history rows a shard looks
up, from the same batch's files of :attr:`~KeyedValidator.history_source`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.contribution import VOTE_SCHEMA
from datanet.validators.base import ValidationResult, Validator

__all__ = [
    "DROP_COLUMNS",
    "KeyRows",
    "KeyedValidator",
    "Resolved",
    "Shard",
    "dense_votes",
    "hex64",
    "resolve_in_memory",
    "sparse_votes",
    "string_keys",
]

#: Columns of :attr:`Resolved.votes` besides the validator's ``vote_rank`` columns.
VOTE_COLUMNS = ("_part", "_row", "verdict", "score", "reason", "details")
#: Columns of :attr:`Resolved.drops`.
DROP_COLUMNS = ("_part", "_row", "reason", "message")

_HEX = np.full(256, 0, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def hex64(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """First 64 bits of ``0x``-prefixed hex strings (keccak ids, addresses) as uint64, read on
    the Arrow buffers (no Python string per row): the natural shard key of a hashed value."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n]
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    nibbles = _HEX[data[offsets[:, None].astype(np.int64) + 2 + np.arange(16)]]
    return (nibbles << (np.uint64(4) * np.arange(15, -1, -1, dtype=np.uint64))).sum(
        axis=1, dtype=np.uint64)


def string_keys(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each string (FNV-1a + splitmix64 over the UTF-8 bytes, compiled): the
    shard key of any text-valued key (equal strings, equal keys; nulls hash as empty)."""
    from datanet.validators._kernels import string_hashes
    from datanet.validators.textstats import utf8_buffers

    return string_hashes(*utf8_buffers(pc.fill_null(col, "")))


@dataclass(frozen=True)
class KeyRows:
    """What :meth:`KeyedValidator.key` returns for one batch.

    ``rows``: the key rows (``shard_key`` uint64, ``_row`` int32, validator columns);
    ``index``: ``kind -> table`` of rows keyed by ``contribution_id`` that the writer keeps for
    the accepted records (``index/<kind>/``); ``lookup``: one row per record of the batch, in
    batch order, that :meth:`Shard.lookup` serves to :meth:`KeyedValidator.resolve`.
    """

    rows: pa.Table
    index: Mapping[str, pa.Table] = field(default_factory=dict)
    lookup: pa.Table | None = None


@dataclass(frozen=True)
class Resolved:
    """What :meth:`KeyedValidator.resolve` returns for one shard.

    ``votes``: the non-accept votes (:data:`VOTE_COLUMNS` + ``vote_rank`` columns), of new
    records only; ``drops``: records that leave the batch for dead-letter (:data:`DROP_COLUMNS`),
    e.g. a resubmitted copy; ``counters``: run metrics (name -> increment).
    """

    votes: pa.Table | None = None
    drops: pa.Table | None = None
    counters: Mapping[str, int] = field(default_factory=dict)


class Shard:
    """One shard's key rows (with ``_part`` and ``_history`` added) and row lookups.

    ``fetch(part, rows, columns)`` returns those rows of a part's lookup table (a batch's
    :attr:`KeyRows.lookup`, or a committed history file); :meth:`lookup` gathers rows across
    parts in the order asked.
    """

    def __init__(self, rows: pa.Table,
                 fetch: Callable[[int, np.ndarray, Sequence[str]], pa.Table]):
        self.rows = rows
        self._fetch = fetch

    @property
    def is_new(self) -> np.ndarray:
        """Per key row: True for rows of the input, False for history."""
        return ~self.rows.column("_history").to_numpy(zero_copy_only=False)

    def lookup(self, parts: np.ndarray, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """Rows ``(parts[i], rows[i])`` of the lookup tables, columns ``columns``, in order."""
        parts = np.asarray(parts, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        if len(parts) == 0:
            raise ValueError("lookup of no rows")
        order = np.lexsort((rows, parts))
        sp, sr = parts[order], rows[order]
        starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
        pieces = []
        for begin, end in zip(starts, np.r_[starts[1:], len(sp)], strict=True):
            want, inverse = np.unique(sr[begin:end], return_inverse=True)
            pieces.append(self._fetch(int(sp[begin]), want, columns).take(pa.array(inverse)))
        got = pa.concat_tables(pieces)
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return got.take(pa.array(back))


class KeyedValidator(Validator):
    """Base of keyed validators (see the module docstring for the contract)."""

    kind: ClassVar[str] = "keyed"
    #: The manifest kind of the committed files compared against (``accepted``,
    #: ``index/minhash``), or None when the validator looks at the input alone.
    history_kind: ClassVar[str | None] = None
    #: Columns of those files :meth:`history_key` needs (None: every column).
    history_columns: ClassVar[tuple[str, ...] | None] = None
    #: Vote columns (ascending) that choose among several shards' votes on one record.
    vote_rank: ClassVar[tuple[str, ...]] = ()
    #: The manifest kind (of the same batch) that completes a looked-up history row, and the
    #: columns of it :meth:`complete_history` reads (None: history rows are complete).
    history_source: ClassVar[str | None] = None
    history_source_columns: ClassVar[tuple[str, ...]] = ()
    #: False: the validator only drops records (no row in the votes table).
    casts_votes: ClassVar[bool] = True

    @property
    def shards(self) -> int:
        """Shards of the keyed shuffle (its parallelism): ``[validators.<name>] shards``."""
        return int(getattr(self.config, "shards", 32))

    @abstractmethod
    def key(self, batch: pa.RecordBatch) -> KeyRows:
        """Key rows (and index / lookup tables) of one batch of normalised records."""

    def history_key(self, table: pa.Table, path: str) -> KeyRows:
        """Key rows (and the lookup table) of one committed file of :attr:`history_kind`."""
        raise NotImplementedError(f"{self.name} reads no history")

    def commit_index(self, kind: str, rows: pa.Table, reproducible: pa.Array) -> pa.Table:
        """The ``index/<kind>`` rows of accepted records as committed: ``reproducible`` are
        the ids whose stored text is the text they were validated with (no redaction), so
        what is a function of that text may be left for :meth:`complete_history`."""
        return rows

    def complete_history(self, rows: pa.Table, source: Callable[[], pa.Table]) -> pa.Table:
        """Looked-up rows of a committed history file with what :meth:`commit_index` left
        out filled in; ``source()`` reads the same batch's :attr:`history_source` files
        (:attr:`history_source_columns`), only when called."""
        return rows

    @abstractmethod
    def resolve(self, shard: Shard) -> Resolved:
        """Decide one shard: the non-accept votes of its new records, and drops."""

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        """One batch on its own, no history: :func:`resolve_in_memory` (tests, small tools)."""
        votes, _ = resolve_in_memory(self, [batch])
        return ValidationResult(votes[0])


def sparse_votes(parts: np.ndarray, rows: np.ndarray, *, reason: str | Sequence[str | None],
                 scores: Sequence[float | None] | None = None,
                 details: Sequence[str | None] | None = None,
                 **rank: pa.Array | np.ndarray) -> pa.Table:
    """A :attr:`Resolved.votes` table of ``reject`` votes (plus ``vote_rank`` columns)."""
    n = len(rows)
    reasons = pa.array([reason] * n if isinstance(reason, str) else reason, pa.string())
    return pa.table({
        "_part": pa.array(np.asarray(parts, dtype=np.int32)),
        "_row": pa.array(np.asarray(rows, dtype=np.int32)),
        "verdict": pa.array(["reject"] * n, pa.string()),
        "score": pa.nulls(n, pa.float64()) if scores is None else pa.array(scores, pa.float64()),
        "reason": reasons,
        "details": pa.nulls(n, pa.string()) if details is None else pa.array(details, pa.string()),
        **rank,
    })


def dense_votes(name: str, ids: pa.Array | pa.ChunkedArray, sparse: Sequence[pa.Table],
                vote_rank: Sequence[str] = ()) -> pa.Table:
    """One vote per record of a batch (:data:`VOTE_SCHEMA`, in row order) from the sparse
    votes of every shard: accept unless voted, the first vote by ``vote_rank`` otherwise."""
    n = len(ids)
    verdict = np.full(n, "accept", dtype=object)
    score = np.full(n, np.nan)
    has_score = np.zeros(n, dtype=bool)
    reason = np.full(n, None, dtype=object)
    details = np.full(n, None, dtype=object)
    tables = [t for t in sparse if t is not None and t.num_rows]
    if tables:
        votes = pa.concat_tables([t.select(["_row", "verdict", "score", "reason", "details",
                                            *vote_rank]) for t in tables])
        votes = votes.sort_by([("_row", "ascending")] + [(c, "ascending") for c in vote_rank])
        row = votes.column("_row").to_numpy()
        first = np.r_[True, row[1:] != row[:-1]]
        take = pa.array(np.flatnonzero(first))
        votes, row = votes.take(take), row[first]
        verdict[row] = votes.column("verdict").to_numpy(zero_copy_only=False)
        s = votes.column("score")
        has_score[row] = pc.is_valid(s).to_numpy(zero_copy_only=False)
        score[row] = pc.fill_null(s, 0.0).to_numpy(zero_copy_only=False)
        reason[row] = votes.column("reason").to_numpy(zero_copy_only=False)
        details[row] = votes.column("details").to_numpy(zero_copy_only=False)
    return pa.Table.from_arrays([
        ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string()),
        pa.array([name] * n, pa.string()),
        pa.array(verdict, pa.string()),
        pa.array(score, pa.float64(), mask=~has_score),
        pa.array(reason, pa.string()),
        pa.array(details, pa.string()),
    ], schema=VOTE_SCHEMA)


def with_part(rows: pa.Table, part: int, history: bool) -> pa.Table:
    """Key rows tagged with their part number and origin (what :class:`Shard` holds)."""
    n = rows.num_rows
    return rows.append_column("_part", pa.array(np.full(n, part, dtype=np.int32))).append_column(
        "_history", pa.array(np.full(n, history, dtype=bool)))


__all__ += ["VOTE_COLUMNS", "with_part"]


def resolve_in_memory(validator: KeyedValidator, batches: Sequence[pa.RecordBatch],
                      history: Sequence[tuple[str, pa.Table]] = (), *,
                      shards: int | None = None,
                      sources: Mapping[str, pa.Table] | None = None,
                      ) -> tuple[list[pa.Table], list[pa.Table]]:
    """Run ``validator`` over ``batches`` (and committed ``(path, table)`` history files)
    without Beam, exactly as the pipeline's keyed stage does: per batch, its votes in row order
    (:data:`VOTE_SCHEMA`) and its drops (``_row``, ``reason``, ``message``). ``sources``: per
    history path, its batch's :attr:`~KeyedValidator.history_source` table."""
    shards = shards or validator.shards
    keyed = [validator.key(b) for b in batches]
    hist = [validator.history_key(t, p) for p, t in history]
    lookups: list[pa.Table | None] = [k.lookup for k in keyed] + [h.lookup for h in hist]
    parts = [with_part(k.rows, i, False) for i, k in enumerate(keyed)]
    parts += [with_part(h.rows, len(keyed) + j, True) for j, h in enumerate(hist)]

    def fetch(part: int, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        table = lookups[part]
        if table is None:
            raise ValueError(f"{validator.name}: part {part} has no lookup table")
        got = table.select(list(columns)).take(pa.array(rows))
        if part < len(keyed):
            return got
        path = history[part - len(keyed)][0]
        return validator.complete_history(got, lambda: (sources or {})[path])

    all_rows = pa.concat_tables(parts, promote_options="default") if parts else None
    votes: list[list[pa.Table]] = [[] for _ in batches]
    drops: list[list[pa.Table]] = [[] for _ in batches]
    if all_rows is not None and all_rows.num_rows:
        shard_of = (all_rows.column("shard_key").to_numpy() % np.uint64(shards)).astype(np.int64)
        for s in np.unique(shard_of):
            rows = all_rows.filter(pa.array(shard_of == s))
            if not (~rows.column("_history").to_numpy(zero_copy_only=False)).any():
                continue
            out = validator.resolve(Shard(rows, fetch))
            for table, into in ((out.votes, votes), (out.drops, drops)):
                if table is None or not table.num_rows:
                    continue
                part = table.column("_part").to_numpy()
                for p in np.unique(part):
                    into[int(p)].append(table.filter(pa.array(part == p)))
    dense = [dense_votes(validator.name, b.column("contribution_id"), votes[i],
                         validator.vote_rank) for i, b in enumerate(batches)]
    dropped = [pa.concat_tables(d).select(["_row", "reason", "message"]).sort_by("_row")
               if d else pa.table({"_row": pa.array([], pa.int32()),
                                   "reason": pa.array([], pa.string()),
                                   "message": pa.array([], pa.string())})
               for d in drops]
    return dense, dropped
