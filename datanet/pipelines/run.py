"""The datanet pipeline: read → normalise → validate → decide → write, then commit.

Composition only: parsing lives in :mod:`.intake`, validators in :mod:`datanet.validators`,
files and commits in :mod:`datanet.store`. The Beam graph:

1. ``MatchAll`` + ``ReadMatches`` the inputs; parse each file into ``(chunk_key,
   RecordBatch)`` chunks (normalised, hashed) and a dead-letter output.
2. Batch validators vote per chunk (may replace ``text``, e.g. redaction); the validated chunk
   and its votes are spilled to scratch Arrow IPC files in ``_runs/<run_id>/chunks/`` and only their
   paths go on (no runner then holds every record's text in memory).
3. Every enabled keyed validator's stage (duplicates, flood…) votes across chunks and history.
4. ``CoGroupByKey`` on the chunk key joins a chunk with all of its votes; the policy decides;
   accepted / rejected / quarantine / votes / dead-letter / index rows are written as
   content-addressed Parquet under ``<kind>/batch=<id>/`` (batch id = side input computed from
   every input record id).
5. The list of written files goes to ``_runs/<run_id>/files.json``; the driver verifies it and
   commits the manifest (with the Merkle root) atomically. Anchoring happens after that, from
   the driver, never in a DoFn.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from datanet._memory import rare_full_collections, release_memory
from datanet.errors import DatanetError, IntakeError
from datanet.pipelines.ahead import ParseAhead, running
from datanet.pipelines.fingerprint import (
    RunResult,
    committed_rerun,
    file_stamps,
    rerun_result,
    spec_fingerprint,
)
from datanet.pipelines.intake import (
    detect_format,
    display_path,
    iter_path_chunks,
    split_compression,
)
from datanet.pipelines.io import (
    read_spilled,
    read_spilled_batch,
    select_tag,
    spill_chunk,
    spill_table,
)
from datanet.pipelines.keyed import KeyedStage, key_chunk
from datanet.pipelines.options import check_beam_args, check_runner
from datanet.pipelines.pool import IN_PROCESS_RUNNERS, ForkedDoFn, local_workers
from datanet.pipelines.progress import (
    Progress,
    ProgressPoller,
    StageCounter,
    estimate_records,
)
from datanet.pipelines.stages import merge_stage_outputs
from datanet.schemas.contribution import DEADLETTER_SCHEMA, VOTE_SCHEMA
from datanet.schemas.manifest import FileEntry
from datanet.schemas.spec import DatanetSpec
from datanet.store.files import write_bytes_atomic, write_table, write_tables
from datanet.store.fs import ObjectPath, fsspec_reaches, is_remote, os_path, url_to_fs
from datanet.store.history import History
from datanet.store.layout import SPEC_FILE
from datanet.validators import registry
from datanet.validators.base import ValidationResult
from datanet.validators.keyed import KeyedValidator, dense_votes
from datanet.validators.policy import decide, policy_config, route

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["RunResult", "run_datanet", "build_pipeline", "beam_options", "beam_pattern",
           "broken_links",
           "match_inputs"]

log = logging.getLogger(__name__)

#: Per record: a batch validator rewrote its text (pii redaction), so the stored text is not
#: the text the keyed validators saw (see KeyedValidator.commit_index).
_CHANGED = "_text_changed"
#: Columns never written to storage.
_PRIVATE_COLUMNS = ("text_norm", _CHANGED)


# ---------------------------------------------------------------------------------------------
# DoFns (no global state; heavy objects created in setup())


class _ParseFile(beam.DoFn):
    """A matched file → ``("records", (key, chunk))`` and ``("deadletter", (key, rows))`` pairs.

    One tagged main output instead of ``with_outputs``: Beam's DaskRunner (2.77) hands every
    output of a multi-output ParDo to the consumers of each tag.
    """

    def __init__(self, spec: DatanetSpec, progress_dir: str | None = None,
                 ahead: str | None = None):
        self.spec = spec
        self.ahead = ahead  # the token of the run's parse-ahead process (:mod:`.ahead`)
        self.records = Metrics.counter("datanet", "input_records")
        self.dead = Metrics.counter("datanet", "deadletter")
        self.progress = StageCounter(progress_dir, "read")

    def process(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        path = readable.metadata.path
        time_us = file_time_us(getattr(readable.metadata, "last_updated_in_seconds", 0))
        ahead = running(self.ahead)
        chunks = ahead.take(path, time_us) if ahead is not None else None
        if chunks is None:
            chunks = iter_path_chunks(self.spec, path, _open_raw, default_time_us=time_us)
        for key, batch, dead in chunks:
            self.progress.add(key, (batch.num_rows if batch is not None else 0)
                              + (dead.num_rows if dead is not None else 0))
            if batch is not None:
                self.records.inc(batch.num_rows)
                yield "records", (key, batch)
            if dead is not None:
                self.dead.inc(dead.num_rows)
                yield "deadletter", (key, dead)
                self.records.inc(dead.num_rows)


def file_time_us(mtime: float | None) -> int:
    """A matched file's modification time (seconds) in microseconds: the time of its
    records that give none."""
    return int((mtime or 0) * 1_000_000)


def _open_raw(path: str) -> Any:
    """The file's bytes as stored (intake decompresses, with its checks and limit); a remote
    URI (``s3://`` …) is opened through the store's fsspec seam, credentials from the
    environment of the worker."""
    from apache_beam.io.filesystem import CompressionTypes

    if fsspec_reaches(path):
        return ObjectPath(*url_to_fs(path)).open("rb")

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _literal(path: str) -> bool:
    """A local path naming an existing entry (read as is, even with ``*?[`` in its name)."""
    import os

    return os_path(path) and os.path.lexists(path)


def broken_links(inputs: Sequence[str]) -> list[str]:
    """Local symlinks the inputs name or match that lead nowhere (a loop, a missing target).

    Beam's listing drops them silently; the pipeline refuses each as one dead-letter entry.
    """
    import glob
    import os

    out: set[str] = set()
    for pattern in inputs:
        if not os_path(pattern):
            continue
        found = ([pattern] if os.path.lexists(pattern) or not glob.has_magic(pattern)
                 else glob.glob(pattern, recursive=True))
        out.update(f for f in found if os.path.islink(f) and not os.path.exists(f))
    return sorted(out)


def _refuse_file(path: str, spec: DatanetSpec) -> Iterator[Any]:
    """The whole-file dead-letter entry of a path that cannot be opened."""
    for key, _, dead in iter_path_chunks(spec, path, _open_raw, default_time_us=0):
        if dead is not None:
            yield "deadletter", (key, dead)


def beam_pattern(path: str) -> str:
    """``path`` for ``FileSystems.match``: an existing local path is escaped (read literally)."""
    import glob

    return glob.escape(path) if _literal(path) and glob.has_magic(path) else path


class _BatchValidate(ForkedDoFn):
    """Run every enabled batch validator on a chunk and spill the result:
    ``("records", (key, ChunkRef))``; and, first, step 1 of each keyed validator's stage on
    the chunk as parsed (``(name, item)`` per :func:`~datanet.pipelines.keyed.key_chunk`
    item), where the chunk already is: one worker keys it for all of them (they share its
    homoglyph fold and MinHash) instead of a pass per keyed validator in the driver.

    The validated chunk and its votes go to Arrow IPC files in the run's scratch directory and
    only their paths travel to the final join, so no runner holds every record's text in
    memory (FnApiRunner keeps whole PCollections). What is spilled holds no PII the policy
    rejects or redacts: ``text_norm`` is dropped and the pii validator has already replaced
    every finding it acts on in ``text``.
    """

    def __init__(self, spec: DatanetSpec, scratch: str, progress_dir: str | None = None,
                 workers: int = 1, keyed: Sequence[KeyedValidator] = (),
                 ahead: str | None = None):
        self.spec = spec
        self.ahead = ahead  # the token of the run's parse-ahead process (:mod:`.ahead`)
        self.scratch = scratch
        self.workers = workers
        self.keyed = list(keyed)
        self.validators: list[Any] = []
        self.progress = StageCounter(progress_dir, "validate")

    def setup(self) -> None:
        self.validators = registry.enabled_validators(self.spec, kind="batch")
        for v in (*self.keyed, *self.validators):
            v.setup()
        # The validators' engines and tables (Presidio, phone metadata, Unicode folds) live as
        # long as the worker: move them out of the cyclic GC's reach, or every full
        # collection walks them again (~0.1 s each, several per 2000-record chunk).
        gc.freeze()

    def teardown(self) -> None:
        super().teardown()
        # Hand the objects back (the runner may be this very process: a CLI run, a test);
        # the next full collection sees them (collecting here walked them all: ~0.25 s).
        gc.unfreeze()

    def received(self, note: dict[str, int]) -> None:
        for name, records in note.items():
            self.count(name, {"records": records})

    def shippable(self, element: tuple[str, pa.RecordBatch]) -> tuple[str, Any]:
        """A chunk goes to a worker as an uncompressed Arrow IPC stream in a local scratch
        file, which the worker reads in one call: a copy through the page cache instead of a
        pickle, a pipe and an unpickle (6.5 against 1.4 ms of CPU per 2,000-record chunk).
        On object storage the pipe is cheaper than a round trip, so the batch itself goes.
        A chunk parsed ahead (:mod:`.ahead`) already is such a file: that file goes."""
        key, batch = element
        if not os_path(self.scratch):
            return element
        ahead = running(self.ahead)
        ref = ahead.shipped(batch) if ahead is not None else None
        if ref is None:
            ref = spill_chunk(self.scratch, key, "input", batch)
        return key, ref

    def work(self, item: tuple[str, pa.RecordBatch | tuple[str, int, int, int]]
             ) -> tuple[list[tuple[str, Any]], dict[str, int]]:
        key, shipped = item
        if isinstance(shipped, pa.RecordBatch):
            return self._validate(key, shipped)
        path = shipped[0]
        try:
            return self._validate(key, read_spilled_batch(*shipped).to_batches()[0])
        finally:
            os.remove(path)  # the file is this call's alone

    def _validate(self, key: str, batch: pa.RecordBatch
                  ) -> tuple[list[tuple[str, Any]], dict[str, int]]:
        outputs: list[tuple[str, Any]] = [
            (v.name, tagged) for v in self.keyed
            for tagged in key_chunk(v, self.scratch, key, batch)]
        votes = []
        original, rewritten = batch.column("text"), False
        for v in self.validators:
            result: ValidationResult = v.validate(batch)
            if result.votes.num_rows != batch.num_rows:
                raise DatanetError(
                    f"validator {v.name!r} returned {result.votes.num_rows} votes for "
                    f"{batch.num_rows} records; the contract is one vote per record")
            votes.append(result.votes)
            if result.text is not None:
                rewritten = True
                idx = batch.schema.get_field_index("text")
                batch = batch.set_column(idx, "text", pa.array(result.text, pa.string()))
        reports = {v.name: v.report() for v in self.validators if v.report()}
        self.progress.add(key, batch.num_rows)
        changed = (pc.fill_null(pc.not_equal(batch.column("text"), original), True)
                   if rewritten else pa.array(np.zeros(batch.num_rows, dtype=bool)))
        table = pa.Table.from_batches([batch]).drop_columns(["text_norm"]).append_column(
            _CHANGED, changed)
        vote_table = pa.concat_tables(votes) if votes else None
        outputs.append(("records", (key, ChunkRef(
            records=spill_table(self.scratch, key, "records", table),
            votes=spill_table(self.scratch, key, "votes", vote_table)
            if vote_table is not None else None,
            reports=reports))))
        return outputs, {v.name: batch.num_rows for v in self.keyed}


@dataclass(frozen=True)
class ChunkRef:
    """A validated chunk spilled to a scratch Arrow IPC file: what the final join carries."""

    records: str
    votes: str | None
    reports: dict[str, Any]

    def load(self) -> tuple[pa.Table, pa.Table | None]:
        """The chunk's records and batch votes."""
        return read_spilled(self.records), read_spilled(self.votes) if self.votes else None


class _DecideWrite(ForkedDoFn):
    """Join a chunk with its keyed votes, decide, and hand on its output tables.

    With a ``scratch`` directory each table is spilled there and only ``(kind, PartRef)``
    travels on, for :class:`_WriteParts` to coalesce into few files per kind; without one
    (``scratch=None``) each table is written as its own committed file (one per chunk).
    """

    def __init__(self, spec: DatanetSpec, root: str, keyed: Sequence[KeyedValidator],
                 progress_dir: str | None = None, scratch: str | None = None,
                 workers: int = 1):
        self.spec = spec
        self.root = root
        self.scratch = scratch
        self.workers = workers
        self.keyed = {v.name: v for v in keyed}  # the graph's keyed stages, in stage order
        self.progress = StageCounter(progress_dir, "write")

    def setup(self) -> None:
        self.policy = policy_config(self.spec)
        self._committed: dict[str, bool] = {}

    def shippable(self, item: tuple[str, dict[str, Iterable[Any]]]) -> Any:
        key, groups = item
        return key, {name: list(values) for name, values in groups.items()}

    def work(self, item: tuple[str, dict[str, Iterable[Any]]]
             ) -> tuple[list[Any], dict[str, int]]:
        self._counts: collections.Counter[str] = collections.Counter()
        return list(self._decide(item)), dict(self._counts)

    def received(self, note: dict[str, int]) -> None:
        self.count("datanet", note)

    def _decide(self, item: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        key, groups = item
        self._key, self._part = key, 0
        batch_id, = set(groups["batch"])
        if _already_committed(self.root, batch_id, self._committed):
            return
        dead_rows = list(groups["deadletter"])
        n_dead = sum(d.num_rows for d in dead_rows)
        if dead_rows:
            yield from self._write("deadletter", batch_id, pa.Table.from_batches(dead_rows))
        main = list(groups["records"])
        if not main:
            self.progress.add(key, n_dead)
            return
        ref: ChunkRef = main[0]
        table, batch_votes = ref.load()
        self.progress.add(key, n_dead + table.num_rows)
        reports = ref.reports
        keyed = {name: merge_stage_outputs(groups[name]) for name in self.keyed}
        ids = table.column("contribution_id")
        keyed_votes = [dense_votes(name, ids, out.votes, self.keyed[name].vote_rank)
                       for name, out in keyed.items() if self.keyed[name].casts_votes]
        drops = [d for out in keyed.values() for d in out.drops if d.num_rows]
        if drops:
            first = pa.concat_tables([d.select(["_row", "reason", "message"]) for d in drops])
            dropped, at = np.unique(first.column("_row").to_numpy(), return_index=True)
            first = first.take(pa.array(at))  # one entry per row, the first stage's
            keep_np = np.ones(table.num_rows, dtype=bool)
            keep_np[dropped] = False
            keep = pa.array(keep_np)
            if batch_votes is not None:
                # batch votes are one block of n rows per validator, in row order
                n_blocks = batch_votes.num_rows // max(table.num_rows, 1)
                batch_votes = batch_votes.filter(pa.concat_arrays([keep] * n_blocks))
            keyed_votes = [v.filter(keep) for v in keyed_votes]
            gone = table.take(first.column("_row"))
            table = table.filter(keep)
            n = gone.num_rows
            dead = pa.table({
                "record_id": gone.column("contribution_id"),
                "source_file": gone.column("source_file"),
                "source_line": gone.column("source_line"),
                "reason": first.column("reason"),
                "field": pa.nulls(n, pa.string()),
                "message": first.column("message"),
                "raw_bytes": pa.array([0] * n, pa.int64()),
            }, schema=DEADLETTER_SCHEMA)
            yield from self._write("deadletter", batch_id, dead)
            self._counts["deadletter"] += n

        votes = pa.concat_tables([t for t in (batch_votes, *keyed_votes) if t is not None]
                                 or [VOTE_SCHEMA.empty_table()])  # every validator off
        decisions = decide(table.column("contribution_id"), votes, self.policy)
        public = table.drop_columns([c for c in _PRIVATE_COLUMNS if c in table.column_names])
        routed = route(public, decisions)
        for kind, counter in (("accepted", "accepted"), ("rejected", "rejected"),
                              ("quarantine", "needs_review")):
            yield from self._write(kind, batch_id, routed[kind])
            self._counts[counter] += routed[kind].num_rows
        accepted = routed["accepted"]

        yield from self._write("votes", batch_id, votes)

        accepted_ids = accepted.column("contribution_id")
        same = table.column("contribution_id").filter(pc.invert(table.column(_CHANGED)))
        for name, out in keyed.items():
            for kind, index_table in out.index.items():
                rows = index_table.filter(
                    pc.is_in(index_table.column("contribution_id"), value_set=accepted_ids))
                rows = self.keyed[name].commit_index(kind, rows, same)
                yield from self._write(f"index/{kind}", batch_id, rows)
        if reports:
            yield {"kind": "_report", "report": reports, "chunk": key}

    def _write(self, kind: str, batch_id: str, table: pa.Table) -> Iterator[Any]:
        if table.num_rows == 0:
            return
        if self.scratch is None:
            entry = write_table(self.root, kind, batch_id, table)
            yield {"kind": kind, **asdict(entry)}
            return
        self._part += 1
        name = f"{self._key}\x00{self._part}"
        path = spill_table(self.scratch, name, "out-" + kind.replace("/", "-"), table)
        yield kind, PartRef(batch_id, self._key, self._part, path, table.num_rows)


@dataclass(frozen=True, order=True)
class PartRef:
    """One chunk's table of one output kind, spilled to a scratch Arrow IPC file."""

    batch_id: str
    chunk: str
    part: int
    path: str
    rows: int


class _WriteParts(ForkedDoFn):
    """``(kind, [PartRef])`` → the kind's committed files: the chunks' tables in chunk-key order,
    as few content-addressed files of about ``target_bytes`` each (a chunk of 2000 records
    would otherwise be a file per kind, most of them tiny).

    The order makes the bytes (hence the names) the same on every runner and every retry.
    """

    grouped = True

    def __init__(self, root: str, target_bytes: int, workers: int = 1):
        self.root = root
        self.target_bytes = target_bytes
        self.workers = workers

    def work(self, item: tuple[str, Iterable[PartRef]]) -> tuple[list[dict[str, Any]], None]:
        return list(self._write(item)), None

    def _write(self, item: tuple[str, Iterable[PartRef]]) -> Iterator[dict[str, Any]]:
        kind, refs = item
        by_batch: dict[str, list[PartRef]] = {}
        for ref in refs:
            by_batch.setdefault(ref.batch_id, []).append(ref)
        for batch_id, parts in sorted(by_batch.items()):
            parts.sort()
            tables = (read_spilled(ref.path) for ref in parts)
            for entry in write_tables(self.root, kind, batch_id, tables,
                                      target_bytes=self.target_bytes):
                yield {"kind": kind, **asdict(entry)}


def _already_committed(root: str, batch_id: str, cache: dict[str, bool]) -> bool:
    """True when a manifest of ``batch_id`` exists: a re-run then writes nothing."""
    if batch_id not in cache:
        pattern = FileSystems.join(root, "batches", f"*-{batch_id}.json")
        cache[batch_id] = bool(FileSystems.match([pattern])[0].metadata_list)
    return cache[batch_id]


def _id_rows(kv: tuple[str, pa.RecordBatch | pa.Table], column: str
             ) -> tuple[str, np.ndarray]:
    """``(chunk key, its record ids as an (n, 32) byte matrix)``: what the runner buffers
    for the batch id is 32 bytes per record, not a 66-character string."""
    from datanet.anchoring.merkle import hex_matrix

    return kv[0], hex_matrix(kv[1].column(column), column, 32)


class _BatchIdFn(beam.CombineFn):
    """``(batch id, chunk keys)``: batch id = keccak(datanet key ‖ sorted distinct record ids).

    Inputs are ``(chunk key, ids)``, ids as an (n, 32) byte matrix (:func:`_id_rows`), kept
    until the final sort, which orders the bytes as the lowercase hex text would order.
    """

    def __init__(self, datanet_id: str):
        self.datanet_id = datanet_id

    def create_accumulator(self) -> tuple[list[np.ndarray], set[str]]:
        return [], set()

    def add_input(self, acc: tuple[list[np.ndarray], set[str]],
                  item: tuple[str, np.ndarray]) -> tuple[list[np.ndarray], set[str]]:
        key, ids = item
        acc[0].append(ids)
        acc[1].add(key)
        return acc

    def merge_accumulators(self, accs: Iterable[tuple[list[np.ndarray], set[str]]]
                           ) -> tuple[list[np.ndarray], set[str]]:
        arrays: list[np.ndarray] = []
        keys: set[str] = set()
        for a, k in accs:
            arrays += a
            keys |= k
        return arrays, keys

    def extract_output(self, acc: tuple[list[np.ndarray], set[str]]) -> tuple[str, list[str]]:
        from datanet.anchoring.merkle import sorted_distinct_rows
        from datanet.schemas.ids import datanet_key, keccak

        arrays, keys = acc
        ids = sorted_distinct_rows(np.concatenate(arrays) if arrays
                                   else np.zeros((0, 32), np.uint8))
        return ("0x" + keccak(datanet_key(self.datanet_id) + ids.tobytes()).hex(),
                sorted(keys))


class _WriteListing(beam.DoFn):
    def __init__(self, path: str):
        self.path = path

    def process(self, item: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[str]:
        _, groups = item
        (batch_id, _keys), = groups["batch"]
        entries = [e for part in groups["files"] for e in part]
        inputs = sorted(i for part in groups["inputs"] for i in part)
        body = json.dumps({"batch_id": batch_id, "entries": entries, "inputs": inputs},
                          sort_keys=True).encode()
        write_bytes_atomic(self.path, body)
        yield self.path


# ---------------------------------------------------------------------------------------------


def build_pipeline(
    p: beam.Pipeline, spec: DatanetSpec, inputs: Sequence[str], *, root: str,
    history: History, listing_path: str, scratch: str | None = None,
    progress_dir: str | None = None, workers: int = 1, ahead: str | None = None,
) -> None:
    """Add the datanet graph to ``p``; chunks spill to ``scratch`` (default: beside the listing);
    with ``progress_dir`` the DoFns write live record counts there (:mod:`.progress`);
    ``workers`` > 1: batch validation in that many forked processes (:mod:`.pool`; only for a
    runner that executes the graph in this process)."""
    scratch = scratch or FileSystems.join(listing_path.rsplit("/", 1)[0], "chunks")
    history = replace(history, scratch=scratch)
    broken = broken_links(inputs)
    files = (
        p
        | "Inputs" >> beam.Create([beam_pattern(i) for i in inputs if i not in broken],
                                  reshuffle=False).with_output_types(str)
        | "Match" >> fileio.MatchAll()
        | "Open" >> fileio.ReadMatches()
        | "SpreadFiles" >> beam.Reshuffle()
    )
    # as valid UTF-8: a file name with undecodable bytes must not fail Beam's string coder
    matched = files | "Paths" >> beam.Map(lambda f: display_path(f.metadata.path))
    parsed = files | "Parse" >> beam.ParDo(_ParseFile(spec, progress_dir, ahead))
    if broken:  # only then: the graph of every other run stays as it was
        lost = p | "BrokenLinks" >> beam.Create(broken, reshuffle=False).with_output_types(str)
        parsed = ((parsed, lost | "RefuseBrokenLinks" >> beam.FlatMap(_refuse_file, spec))
                  | "AllParsed" >> beam.Flatten())
        matched = ((matched, lost | "BrokenPaths" >> beam.Map(display_path))
                   | "AllPaths" >> beam.Flatten())
    chunks = parsed | "Records" >> beam.FlatMap(select_tag, "records")
    dead = parsed | "DeadLetter" >> beam.FlatMap(select_tag, "deadletter")

    # The batch id reaches the writers through joins, not side inputs: Beam's DaskRunner
    # (2.77) evaluates a side input inside each consuming task (``list(bag)``), outside the
    # task graph it schedules; a join stays in the graph on every runner.
    ids = (
        (chunks | "ChunkIds" >> beam.Map(_id_rows, "contribution_id"),
         dead | "DeadIds" >> beam.Map(_id_rows, "record_id"))
        | "AllIds" >> beam.Flatten()
    )
    batch = ids | "BatchId" >> beam.CombineGlobally(_BatchIdFn(spec.id))
    batch_of_chunk = batch | "BatchIdPerChunk" >> beam.FlatMap(
        lambda b: ((key, b[0]) for key in b[1]))

    keyed = registry.keyed_stages(spec)
    checked = chunks | "BatchValidators" >> beam.ParDo(
        _BatchValidate(spec, scratch, progress_dir, workers, keyed, ahead))
    validated = checked | "Validated" >> beam.FlatMap(select_tag, "records")
    groups: dict[str, beam.PCollection] = {
        "records": validated, "deadletter": dead, "batch": batch_of_chunk}
    for validator in keyed:
        groups[validator.name] = (
            checked | f"Keyed_{validator.name}" >> beam.FlatMap(select_tag, validator.name)
            | f"Stage_{validator.name}" >> KeyedStage(validator, history, workers,
                                                      prekeyed=True))
    joined = groups | "JoinChunk" >> beam.CoGroupByKey()
    decided = joined | "DecideWrite" >> beam.ParDo(
        _DecideWrite(spec, root, keyed, progress_dir, scratch, workers))
    # one group per output kind carries only scratch paths (chunks x kinds, not records)
    written = (
        (decided | "Reports" >> beam.Filter(lambda o: isinstance(o, dict)),
         decided | "Parts" >> beam.Filter(lambda o: not isinstance(o, dict))
         | "PartsByKind" >> beam.GroupByKey()
         | "WriteParts" >> beam.ParDo(
             _WriteParts(root, spec.pipeline.target_file_mb * 1_000_000, workers)))
        | "AllWritten" >> beam.Flatten()
    )
    # The listing must be the graph's last transform and depend on every write: Beam's
    # DaskRunner (2.77) computes only the last transform's Dask bag, so a branch that does not
    # feed it never runs there.
    _ = (
        {
            "files": written | "ListFiles" >> beam.combiners.ToList()
            | "KeyFiles" >> beam.Map(lambda entries: (0, entries)),
            "batch": batch | "KeyBatch" >> beam.Map(lambda b: (0, b)),
            "inputs": matched | "ListInputs" >> beam.combiners.ToList()
            | "KeyInputs" >> beam.Map(lambda paths: (0, paths)),
        }
        | "JoinListing" >> beam.CoGroupByKey()
        | "WriteListing" >> beam.ParDo(_WriteListing(listing_path))
    )


def beam_options(runner: str, extra: Sequence[str] = ()) -> PipelineOptions:
    """Pipeline options with the runner always explicit (Beam's default downloads Prism)."""
    flags = [f"--runner={runner}", *extra]
    if runner in ("DirectRunner", "direct") and not any(
        a.startswith("--direct_running_mode") for a in extra
    ):
        flags.append("--direct_running_mode=in_memory")
    return PipelineOptions(flags)


def _runner_object(runner: str) -> Any:
    """The runner instance for ``runner``.

    Beam 2.77's ``DirectRunner`` first tries the Prism runner, which downloads a binary from
    GitHub at run time; ``DirectRunner`` here means Beam's in-process FnApiRunner (what
    DirectRunner falls back to), which honours ``--direct_running_mode`` and
    ``--direct_num_workers``. Other names are resolved by Beam from ``--runner``.
    """
    if runner in IN_PROCESS_RUNNERS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return None


#: Sampling period (ms) of Beam's state sampler while a run executes. Beam's in-process runner
#: ends every bundle by joining its sampler thread, which sleeps up to 200 ms between samples
#: (``statesampler.DEFAULT_SAMPLING_PERIOD_MS``, bound as a default argument): both cores sat
#: idle ~0.05-0.2 s after each long bundle of a run (measured at 200k records: ~0.7 core-s in
#: all). The samples only feed Beam's per-step msec counters, which datanet does not read.
STATE_SAMPLING_MS = 20


@contextlib.contextmanager
def short_state_sampling(period_ms: int = STATE_SAMPLING_MS) -> Iterator[None]:
    """Beam bundles in this block sample their state every ``period_ms`` at most (so a
    bundle's end waits that long at most); the previous default is restored on exit. Left
    alone if this Beam's ``StateSampler`` does not take the period as its one default."""
    from apache_beam.runners.worker import statesampler

    init = statesampler.StateSampler.__init__
    old = getattr(init, "__defaults__", None)
    if not (isinstance(old, tuple) and len(old) == 1 and isinstance(old[0], int)):
        yield
        return
    init.__defaults__ = (min(old[0], period_ms),)
    try:
        yield
    finally:
        init.__defaults__ = old


def match_inputs(inputs: Sequence[str]) -> list[str]:
    """Every file the patterns / URIs match, sorted; a pattern matching nothing, or a file of
    no known format, is an error (an operator's: one line, before anything runs).

    A local path that exists is read literally, even with glob characters in its name; a
    symlink leading nowhere is listed (the run dead-letters it: ``unreadable_file``).
    """
    from apache_beam.io.filesystem import BeamIOError

    files: set[str] = set()
    for pattern in inputs:
        if fsspec_reaches(pattern):
            remote = _match_remote(pattern)
            if not remote:
                raise IntakeError(f"{pattern}: no input file matches")
            files.update(remote)
            continue
        try:
            found = FileSystems.match([beam_pattern(pattern)])[0].metadata_list
        except BeamIOError as exc:
            raise IntakeError(f"{pattern}: cannot be listed ({exc})") from None
        lost = broken_links([pattern])
        if not found and not lost:
            raise IntakeError(f"{pattern}: no input file matches")
        files.update(m.path for m in found)
        files.update(lost)
    for path in files:
        detect_format(path)
    return sorted(files)


def _pipeline_inputs(inputs: Sequence[str], matched: Sequence[str]) -> list[str]:
    """What the pipeline matches: local patterns as given (Beam matches them), remote ones
    replaced by the URIs the driver matched (one glob semantics: fsspec's)."""
    if not any(fsspec_reaches(p) for p in inputs):
        return list(inputs)
    return [*(p for p in inputs if not fsspec_reaches(p)),
            *(f for f in matched if fsspec_reaches(f))]


def _match_remote(pattern: str) -> list[str]:
    """URIs of the files a remote pattern (``s3://bucket/in/*.jsonl``) matches, listed through
    the store's fsspec seam (Beam's S3 filesystem has no options outside a pipeline)."""
    import glob

    from datanet.errors import StoreError

    try:
        fs, inner = url_to_fs(pattern)
        if glob.has_magic(inner):
            found = [p for p, info in fs.glob(inner, detail=True).items()
                     if info.get("type") != "directory"]
        else:
            found = [inner] if fs.isfile(inner) else []
    except (OSError, ValueError, StoreError) as exc:
        raise IntakeError(f"{pattern}: cannot be listed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return sorted(fs.unstrip_protocol(p) for p in found)


def _local_bytes(files: Sequence[str]) -> int | None:
    """Bytes of the input files when all are local (compressed ones count 4x), else None."""
    total = 0
    for f in files:
        if not os_path(f):
            return None
        try:
            size = os.stat(f).st_size
        except OSError:
            return None
        total += size * (4 if split_compression(f)[1] else 1)
    return total


def run_datanet(
    store: DatanetStore,
    inputs: Sequence[str],
    *,
    runner: str | None = None,
    beam_args: Sequence[str] = (),
    build_tree: Callable[..., Any] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Run the pipeline over ``inputs`` and commit one batch (or nothing, on a re-run).

    ``progress`` is called from a driver thread about twice a second with the records counted
    per stage so far (:class:`datanet.pipelines.progress.Progress`), and once at the end.
    """
    with rare_full_collections():
        return _run(store, inputs, runner=runner, beam_args=beam_args, build_tree=build_tree,
                    progress=progress)


def _run(
    store: DatanetStore,
    inputs: Sequence[str],
    *,
    runner: str | None,
    beam_args: Sequence[str],
    build_tree: Callable[..., Any] | None,
    progress: Callable[[Progress], None] | None,
) -> RunResult:
    start = time.monotonic()
    spec = store.spec
    # fail early, on the driver, with the pattern that matches nothing
    matched = match_inputs(inputs)
    args = [*check_beam_args(spec.pipeline.options, where=f"{spec.source}: pipeline.options: "
                             if spec.source else "pipeline.options: "),
            *check_beam_args(beam_args)]
    runner = check_runner(runner or spec.pipeline.runner, args)
    # an input already committed is recognised without Beam work (see .fingerprint)
    stamps = file_stamps([*matched, str(store.root / SPEC_FILE)])
    fingerprint = spec_fingerprint(store, matched) if stamps is not None else None
    if fingerprint is not None and (
            known := committed_rerun(store, matched, start=start, fingerprint=fingerprint)):
        return known
    history_manifests = store.manifests()
    history_seq = history_manifests[-1].seq if history_manifests else 0
    history = store.history(history_manifests)
    with store.run_scratch() as (_run_id, run_dir):  # also sweeps scratch of dead runs
        listing_path = f"{run_dir}/files.json"
        progress_dir = f"{run_dir}/progress" if progress else None
        with contextlib.ExitStack() as stack:
            workers = local_workers(spec.pipeline.local_workers, runner, args,
                                    _local_bytes(matched))
            scratch = f"{run_dir}/chunks"
            ahead = _parse_ahead(spec, matched, scratch) if workers > 1 else None
            if ahead is not None:
                stack.callback(ahead.close)
            if progress and is_remote(run_dir):  # progress files are local (display only)
                progress_dir = stack.enter_context(tempfile.TemporaryDirectory())
            if progress:
                stack.enter_context(ProgressPoller(progress_dir, progress,
                                                   estimate_records(matched)))
            stack.enter_context(short_state_sampling())
            with beam.Pipeline(runner=_runner_object(runner),
                               options=beam_options(runner, args)) as p:
                build_pipeline(p, spec, _pipeline_inputs(inputs, matched),
                               root=str(store.root), history=history,
                               listing_path=listing_path, scratch=scratch,
                               progress_dir=progress_dir, workers=workers,
                               ahead=ahead.token if ahead is not None else None)
        if is_remote(listing_path):
            listing = json.loads(ObjectPath(*url_to_fs(listing_path)).read_bytes())
        else:
            with FileSystems.open(listing_path) as fh:
                listing = json.loads(fh.read())

    release_memory()  # what the runner's buffers held, before the commit's tree
    batch_id = listing["batch_id"]
    entries = listing["entries"]
    files: dict[str, list[FileEntry]] = {}
    report = merge_reports([e for e in entries if e["kind"] == "_report"])
    for e in entries:
        if e["kind"] == "_report":
            continue
        files.setdefault(e["kind"], []).append(
            FileEntry(e["path"], e["sha256"], e["rows"], e["bytes"]))
    counts = {k: sum(f.rows for f in files.get(k, [])) for k in
              ("accepted", "rejected", "quarantine", "deadletter")}
    counts["input"] = sum(counts.values())
    elapsed = time.monotonic() - start
    if counts["input"] == 0 and store.manifest_for(batch_id) is None:
        return RunResult(None, False, None, counts, elapsed, "the inputs hold no records")
    existing = store.manifest_for(batch_id)
    if existing is not None:
        return rerun_result(existing, elapsed)
    tree = None
    if files.get("accepted"):
        accepted, make = files["accepted"], build_tree or _default_tree
        tree = functools.partial(make, store, spec, batch_id, accepted)  # built in the commit
    manifest = store.commit(
        batch_id=batch_id, files=files, counts=counts, history_seq=history_seq,
        sources=listing["inputs"], report=report, tree=tree,
        # only if no input (nor the spec) changed while the run read it
        source_fingerprint=fingerprint if stamps is not None and file_stamps(
            [*matched, str(store.root / SPEC_FILE)]) == stamps else None,
    )
    elapsed = time.monotonic() - start
    if manifest is None:
        existing = store.manifest_for(batch_id)
        return RunResult(batch_id, False, existing, counts, elapsed,
                         "nothing new: a concurrent run committed this batch")
    return RunResult(batch_id, True, manifest, counts, elapsed,
                     f"committed batch {manifest.seq} ({batch_id[:12]}…)", report)


def _parse_ahead(spec: DatanetSpec, matched: Sequence[str], scratch: str) -> ParseAhead | None:
    """A process parsing the run's local input files ahead (:mod:`.ahead`), or None (no
    local file, or a scratch directory on object storage)."""
    if not os_path(scratch):
        return None
    files = []
    for f in matched:
        if os_path(f) and os.path.isfile(f):
            with contextlib.suppress(OSError):  # gone since: Beam's match will say so
                files.append((f, file_time_us(os.path.getmtime(f))))  # Beam's file time
    if not files:
        return None
    try:
        return ParseAhead(spec, files, scratch, _open_raw)
    except OSError as exc:  # cannot fork (process limit, memory): the driver parses
        log.info("parsing ahead is off: %s", exc)
        return None


def merge_reports(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The batch's validator reports from its chunks' ``_report`` entries, in chunk-key order
    (the same whichever process validated which chunk): list values accumulate across chunks
    (e.g. gx's batch-level results), other values are the first chunk's."""
    report: dict[str, Any] = {}
    for e in sorted(entries, key=lambda e: str(e.get("chunk", ""))):
        for name, rep in e["report"].items():
            if name not in report:
                report[name] = {k: list(v) if isinstance(v, list) else v
                                for k, v in rep.items()} if isinstance(rep, dict) else rep
                continue
            if isinstance(rep, dict) and isinstance(report[name], dict):
                for k, v in rep.items():
                    if isinstance(v, list) and isinstance(report[name].get(k), list):
                        report[name][k].extend(v)
    return report


def _default_tree(store: DatanetStore, spec: DatanetSpec, batch_id: str,
                  accepted: list[FileEntry]) -> Any:
    """Merkle tree of the batch's accepted records (driver-side, 3 columns, one file at a
    time: only the leaf words stay, ~230 bytes per record)."""
    import pyarrow.parquet as pq

    from datanet.anchoring.merkle import batch_tree

    tables = (pq.read_table(store.abs(f.path), filesystem=getattr(store, "arrow_fs", None),
                            columns=["contribution_id", "contributor", "content_hash"])
              for f in accepted)
    return batch_tree(spec.id, batch_id, tables, rows=sum(f.rows for f in accepted))
