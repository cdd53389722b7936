"""Delta Lake tables over a datanet's committed record files, for engines outside datanet.

The manifests under ``batches/`` stay the datanet's commit point (Merkle roots, ``datanet sql``,
``verify-history`` read them). After every commit each record kind (``accepted``, ``rejected``,
``quarantine``, ``deadletter``, ``votes``, ``external_votes``) also gets one Delta commit in
``<root>/<kind>/_delta_log/`` whose *add* actions reference the Parquet files the store already
wrote (``batch=<id>/part-*.parquet``): no data is written twice, nothing in the files changes.
Spark, Trino, polars (``pl.read_delta``), delta-rs, and DuckDB through an Arrow dataset then read
exactly the committed rows, never an uncommitted or stray file lying in the folder.

Each Delta commit carries the datanet's transaction ids (``txn`` actions): app id ``datanet``
with version = batch sequence number (a re-sync skips what is there), and app id = the batch
id, so "is batch X in the table" is one lookup; its commit info holds the batch's sequence
number, id, Merkle root, previous root and leaf count. A batch with no file of a kind still
gets an (empty) commit so that Delta version ``v`` of every table is batch ``v + 1``, except
after a schema change (an ``ALTER`` commit): :func:`table_version` maps a batch to a version
through the commit metadata, never by arithmetic. Tables are ``delta.appendOnly``: the record
files are immutable; ``optimize`` / ``vacuum`` must not be run on them (the manifests name
the original files). Why Delta and not Iceberg: ``docs/table-format.md``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from datanet.errors import StoreError
from datanet.schemas.manifest import KINDS, Manifest

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from datanet.store.layout import DatanetStore

__all__ = ["TABLE_KINDS", "APP_ID", "sync_tables", "table_uri", "table_version",
           "synced_seq", "open_table", "publish_tables", "table_rows",
           "storage_options"]

log = logging.getLogger(__name__)

#: Record kinds published as Delta tables (the manifest's data kinds).
TABLE_KINDS: tuple[str, ...] = KINDS
#: Delta ``txn`` app id whose version is the last datanet batch sequence number in a table.
APP_ID = "datanet"
#: Keys of the commit info (``DeltaTable.history()``) written with every batch commit.
META_SEQ, META_BATCH = "datanet.seq", "datanet.batch_id"
META_ROOT, META_PREV_ROOT = "datanet.merkle_root", "datanet.prev_root"
_TABLE_CONFIG = {"delta.appendOnly": "true"}


def table_uri(store: DatanetStore, kind: str) -> str:
    """Where the Delta table of ``kind`` lives: the kind's folder, next to its files."""
    return store.abs(kind)


def open_table(store: DatanetStore, kind: str, *, as_of: int | None = None) -> DeltaTable:
    """The Delta table of ``kind`` (at batch ``as_of`` if given)."""
    from deltalake import DeltaTable

    uri = table_uri(store, kind)
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options(uri)):
        raise StoreError(f"{uri}: no Delta table yet; run `datanet migrate {store.root}`")
    dt = DeltaTable(uri, storage_options=storage_options(uri))
    if as_of is not None:
        dt.load_as_version(table_version(dt, as_of))
    return dt


def synced_seq(dt: DeltaTable) -> int:
    """The last datanet batch committed to this table (0 when none)."""
    return dt.transaction_version(APP_ID) or 0


def table_version(dt: DeltaTable, seq: int) -> int:
    """The Delta version holding the datanet as it was after batch ``seq``."""
    best = None
    for entry in dt.history():
        s = entry.get(META_SEQ)
        if s is not None and int(s) <= seq and (best is None or entry["version"] > best):
            best = entry["version"]
    if best is None:
        raise StoreError(f"{dt.table_uri}: no commit of batch {seq} or earlier in this table")
    return int(best)


def sync_tables(store: DatanetStore, manifests: Sequence[Manifest] | None = None,
                *, kinds: Sequence[str] = TABLE_KINDS) -> dict[str, int]:
    """Commit every committed batch not yet in each kind's Delta table, in sequence order.

    Idempotent: a batch already in a table (its ``datanet`` txn version) is skipped, so this
    is both the per-commit hook and ``datanet migrate``. Safe without the store's commit lock
    (committers on an object store publish without one): concurrent syncs add each batch once
    (see :func:`_sync_kind`). Returns the number of batches this call added per kind.
    """
    manifests = store.manifests() if manifests is None else manifests
    return {kind: _sync_kind(store, kind, manifests) for kind in kinds}


#: Attempts of one kind's sync when another publisher committed the same Delta version first
#: (each attempt reloads the table and skips the batches the other one added).
_ATTEMPTS = 8


def _sync_kind(store: DatanetStore, kind: str, manifests: Sequence[Manifest]) -> int:
    """Add the missing batches to one table. Every Delta commit is made with no blind retry
    (``max_commit_retries=0``): if a concurrent publisher (another process, or a committer on
    an object store where manifests are claimed without a lock) took the version, the table is
    reloaded and only what is still missing is added, so no batch is ever added twice."""
    from deltalake.exceptions import DeltaError

    added, failures, seen = 0, 0, -1
    while True:
        state = {"added": 0, "done": 0}  # what this attempt did and saw, even if it failed
        try:
            _sync_once(store, kind, manifests, state)
            return added + state["added"]
        except DeltaError as exc:
            added += state["added"]
            # give up only after _ATTEMPTS failures in a row during which no publisher made
            # progress: losing races to others that keep adding batches is not a failure
            failures = 1 if state["done"] > seen else failures + 1
            seen = max(seen, state["done"])
            if failures >= _ATTEMPTS:
                raise StoreError(f"{table_uri(store, kind)}: Delta commit failed "
                                 f"{_ATTEMPTS} times without progress ({exc})") from exc
            log.info("%s: concurrent Delta commit (%s); reloading", kind, exc)
            time.sleep(random.uniform(0, 0.01 * failures))
    raise AssertionError("unreachable")


def _sync_once(store: DatanetStore, kind: str, manifests: Sequence[Manifest],
               state: dict[str, int]) -> None:
    from deltalake import DeltaTable

    uri = table_uri(store, kind)
    opts = storage_options(uri)
    dt = DeltaTable(uri, storage_options=opts) if DeltaTable.is_deltatable(
        uri, storage_options=opts) else None
    done = synced_seq(dt) if dt is not None else 0
    state["done"] = done
    for m in manifests:
        if m.seq <= done:
            continue
        if m.seq != done + 1:
            raise StoreError(f"{uri}: the table holds batches up to {done} but the next "
                             f"committed batch is {m.seq}; the table log was changed by "
                             "hand: move it away and run `datanet migrate`")
        dt = _commit_batch(store, kind, dt, m)
        state["added"] += 1
        # the reloaded table may also hold batches a concurrent publisher added meanwhile
        done = state["done"] = synced_seq(dt)


def storage_options(uri: str) -> dict[str, str] | None:
    """delta-rs options for ``uri``: credentials and endpoint come from the environment
    (``AWS_*``, read by delta-rs itself); an ``http://`` ``AWS_ENDPOINT_URL`` (MinIO, moto)
    also needs ``AWS_ALLOW_HTTP``."""
    if uri.startswith(("s3://", "s3a://")) and os.environ.get(
            "AWS_ENDPOINT_URL", "").startswith("http://"):
        return {"AWS_ALLOW_HTTP": "true"}
    return None


def _commit_batch(store: DatanetStore, kind: str, dt: DeltaTable | None,
                  m: Manifest) -> DeltaTable:
    """One Delta commit adding batch ``m``'s files of ``kind`` (possibly none)."""
    import deltalake
    from deltalake import CommitProperties, DeltaTable
    from deltalake.transaction import Transaction, create_table_with_add_actions

    entries = m.files.get(kind, ())
    arrow_fs = getattr(store, "arrow_fs", None)  # set by stores on an object store
    schemas = [pq.read_schema(store.abs(e.path), filesystem=arrow_fs) for e in entries]
    commit = CommitProperties(
        custom_metadata=_commit_info(m), max_commit_retries=0,
        app_transactions=[Transaction(app_id=APP_ID, version=m.seq),
                          Transaction(app_id=m.batch_id, version=m.seq)])
    actions = [_add_action(kind, e, m) for e in entries]
    uri = table_uri(store, kind)
    if dt is None or (entries and not dt.file_uris()):
        # a new table, or one that has had only empty commits: the files' own types win over
        # the kind's default columns (which only fill in names the files lack)
        if dt is None:
            from datanet.store.query import _empty_schema

            defaults = _empty_schema(kind, store)
        else:
            defaults = pa.schema(dt.schema().to_arrow())
        schema = _table_schema(uri, schemas)
        schema = pa.schema([*schema, *(f.with_nullable(True).remove_metadata() for f in defaults
                                       if f.name not in schema.names)])
        create_table_with_add_actions(
            uri, deltalake.Schema.from_arrow(schema), actions,
            mode="error" if dt is None else "overwrite",
            name=f"{store.spec.id}.{kind}", configuration=_TABLE_CONFIG,
            storage_options=storage_options(uri), commit_properties=commit)
        return DeltaTable(uri, storage_options=storage_options(uri))
    current = pa.schema(dt.schema().to_arrow())
    wanted = _table_schema(uri, [current, *schemas])
    new = [f for f in wanted if f.name not in current.names]
    if new:  # a spec gained a field: add the columns first (older files read them as null)
        dt.alter.add_columns([deltalake.Field.from_arrow(f) for f in new],
                             commit_properties=CommitProperties(
                                 custom_metadata={"datanet.alter": f"batch {m.seq}"},
                                 max_commit_retries=0))
        dt.update_incremental()
        if synced_seq(dt) >= m.seq:  # a concurrent publisher added this batch meanwhile
            return dt
        current = pa.schema(dt.schema().to_arrow())
    dt.create_write_transaction(actions, mode="append",
                                schema=deltalake.Schema.from_arrow(current),
                                commit_properties=commit)
    dt.update_incremental()
    return dt


def _commit_info(m: Manifest) -> dict[str, Any]:
    return {META_SEQ: str(m.seq), META_BATCH: m.batch_id, META_ROOT: m.merkle_root or "",
            META_PREV_ROOT: m.prev_root or "", "datanet.leaf_count": str(m.leaf_count),
            "datanet.datanet": m.datanet}


def _add_action(kind: str, entry: Any, m: Manifest) -> Any:
    """A Delta add action naming one committed file (path relative to the table folder).

    Stats: row count and the ``batch`` column's bounds (every row of a file has its batch id),
    so readers prune files by batch without opening them.
    """
    from deltalake.transaction import AddAction

    prefix = f"{kind}/"
    if not entry.path.startswith(prefix):
        raise StoreError(f"batch {m.seq}: {kind} file {entry.path} is not under {prefix}")
    stats = {"numRecords": entry.rows, "minValues": {"batch": m.batch_id},
             "maxValues": {"batch": m.batch_id}, "nullCount": {"batch": 0}}
    created = int(datetime.fromisoformat(m.created_at).timestamp() * 1000)
    return AddAction(path=entry.path[len(prefix):], size=entry.bytes, partition_values={},
                     modification_time=created, data_change=True, stats=json.dumps(stats))


def _table_schema(uri: str, schemas: Sequence[pa.Schema]) -> pa.Schema:
    """The union of ``schemas`` by column name, every column nullable (files differ only in
    nullability flags); a column whose type changed between files is refused."""
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for f in schema:
            f = f.with_nullable(True).remove_metadata()
            old = fields.get(f.name)
            if old is None:
                fields[f.name] = f
            elif not _same_type(old.type, f.type):
                raise StoreError(f"{uri}: column {f.name!r} is {old.type} in earlier files "
                                 f"and {f.type} in this batch; a Delta table needs one type")
    return pa.schema(list(fields.values()))


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal ignoring nullability of nested fields."""
    if a.equals(b):
        return True
    strings = (pa.types.is_string, pa.types.is_large_string)
    if any(f(a) for f in strings) and any(f(b) for f in strings):
        return True  # one Delta type: string
    if a.num_fields != b.num_fields or a.num_fields == 0 or type(a) is not type(b):
        return False
    return all(a.field(i).name == b.field(i).name and _same_type(a.field(i).type,
                                                                 b.field(i).type)
               for i in range(a.num_fields))


def publish_tables(store: DatanetStore, manifests: Sequence[Manifest]) -> None:
    """The commit hook: :func:`sync_tables` after a manifest was committed.

    The manifest is the commit point, so a failure here does not undo the batch: it is logged
    and added to ``store.problems``; the next commit or ``datanet migrate`` catches up.
    """
    try:
        sync_tables(store, manifests)
    except Exception as exc:  # any delta-rs / IO error: the batch stays committed
        msg = (f"batch {manifests[-1].seq} is committed but its Delta tables were not "
               f"updated ({exc}); run `datanet migrate {store.root}`")
        log.warning(msg)
        store.problems.append(msg)


def table_rows(dt: DeltaTable) -> int:
    """Rows of the table's current version, from the add actions' record counts (no file is
    opened)."""
    import pyarrow.compute as pc

    actions = pa.table(dt.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0
    return int(pc.sum(actions["num_records"]).as_py() or 0)
