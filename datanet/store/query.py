"""DuckDB views over a datanet's committed batches.

Views: ``accepted``, ``rejected``, ``quarantine`` (still under review), ``deadletter``, ``votes``,
``external_votes`` (Parquet files named by committed manifests only) and ``batches`` (one row per
manifest). ``as_of`` shows the datanet as it was after batch ``as_of``. Address columns
(``contributor``, ``external_votes.validator``) compare case-insensitively.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from datanet.errors import StoreError
from datanet.schemas.contribution import (
    DEADLETTER_SCHEMA,
    TALLY_TYPE,
    VOTE_SCHEMA,
    record_schema,
)
from datanet.store.fs import ObjectPath
from datanet.store.layout import DatanetStore

__all__ = ["connect", "contribution_state", "ContributionState", "RejectingVote", "VIEWS"]

VIEWS = ("accepted", "rejected", "quarantine", "deadletter", "votes", "external_votes",
         "batches")
#: Also created by :func:`connect`: committed attribution receipts.
RECEIPT_VIEW = "attributions"


def _empty_schema(kind: str, store: DatanetStore) -> pa.Schema:
    """Columns of a kind's files when a datanet has none yet (``batch`` last, as written)."""
    if kind in ("accepted", "rejected", "quarantine"):
        schema = record_schema(store.spec.extra_fields)
        schema = schema.remove(schema.get_field_index("text_norm"))
        if kind != "accepted":
            schema = (schema.append(pa.field("reasons", pa.list_(pa.string())))
                      .append(pa.field("accept_weight", pa.float64()))
                      .append(pa.field("reject_weight", pa.float64()))
                      .append(pa.field("tally", TALLY_TYPE)))
    elif kind == "external_votes":
        from datanet.schemas.votes import EXTERNAL_VOTE_SCHEMA

        schema = EXTERNAL_VOTE_SCHEMA
    elif kind == "deadletter":
        schema = DEADLETTER_SCHEMA
    else:
        schema = VOTE_SCHEMA
    return schema.append(pa.field("batch", pa.string()))


_SCALAR_SQL = {
    "string": "VARCHAR", "large_string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER",
    "int16": "SMALLINT", "int8": "TINYINT", "uint64": "UBIGINT", "uint32": "UINTEGER",
    "double": "DOUBLE", "float": "FLOAT", "bool": "BOOLEAN", "binary": "BLOB",
    "large_binary": "BLOB", "date32[day]": "DATE",
}


def _sql_type(t: pa.DataType) -> str:
    """The DuckDB type of an Arrow type (the ones our schemas use)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _sql_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        fields = ", ".join(f'"{f.name}" {_sql_type(f.type)}' for f in t)
        return f"STRUCT({fields})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    try:
        return _SCALAR_SQL[str(t)]
    except KeyError:
        raise StoreError(f"no DuckDB type for Arrow type {t}") from None


def _empty_select(schema: pa.Schema) -> str:
    """``SELECT`` of typed NULLs with no rows: an empty view without building an Arrow table
    (pyarrow's table constructors import pandas, which would cost ~0.2 s per ``datanet sql``).
    """
    cols = ", ".join(f'CAST(NULL AS {_sql_type(f.type)}) AS "{f.name}"' for f in schema)
    return f"SELECT {cols} WHERE false"


def _anchor_state(store: DatanetStore, batch_id: str) -> dict[str, Any]:
    p = store.path(f"anchors/{batch_id}.json")
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return {}


#: Address columns compared case-insensitively (``COLLATE NOCASE``): addresses are stored
#: EIP-55 checksummed, and ``where contributor = '0xabc…'`` must find them in any case.
_ADDRESS_COLUMNS = {"accepted": "contributor", "rejected": "contributor",
                    "quarantine": "contributor", "external_votes": "validator"}

_BATCH_COLUMNS = (
    ("seq", "BIGINT"), ("batch_id", "VARCHAR"), ("created_at", "VARCHAR"), ("input", "BIGINT"),
    ("accepted", "BIGINT"), ("rejected", "BIGINT"), ("quarantine", "BIGINT"),
    ("deadletter", "BIGINT"), ("merkle_root", "VARCHAR"), ("prev_root", "VARCHAR"),
    ("leaf_count", "BIGINT"), ("anchor_status", "VARCHAR"), ("anchor_tx", "VARCHAR"),
    ("sources", "VARCHAR[]"),
)


#: The ``attributions`` view's columns while no receipt is committed: the DuckDB types of
#: ``datanet.attribution.receipts.RECEIPT_SCHEMA`` plus ``batch`` (tests/store/test_query_views
#: checks they match). Spelled out so that a datanet without receipts does not import the
#: attribution package (numba, eth_abi: ~0.4 s on every ``datanet sql``).
_EMPTY_ATTRIBUTIONS = (
    ("receipt_id", "VARCHAR"), ("output_id", "VARCHAR"), ("output_hash", "VARCHAR"),
    ("model", "VARCHAR"), ("snapshot_seq", "BIGINT"), ("snapshot_root", "VARCHAR"),
    ("unattributed", "DOUBLE"),
    ("attributions", 'STRUCT("contribution_id" VARCHAR, "contributor" VARCHAR, '
                     '"batch_id" VARCHAR, "weight" DOUBLE, "spans" BIGINT[][])[]'),
    ("receipt", "VARCHAR"), ("batch", "VARCHAR"),
)


def _attributions_view(con: duckdb.DuckDBPyConnection, store: DatanetStore,
                       as_of: int | None) -> None:
    """``attributions``: committed attribution receipts (:mod:`datanet.attribution.receipts`)."""
    receipts = store.path("attributions")
    sql = None
    if receipts.is_dir() and any(receipts.glob("*.json")):
        from datanet.attribution.receipts import receipts_view_sql

        sql = receipts_view_sql(store, as_of=as_of)
    if sql is None:  # typed NULLs, not an Arrow table (no pandas import)
        cols = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in _EMPTY_ATTRIBUTIONS)
        sql = f"SELECT {cols} WHERE false"
    con.execute(f"CREATE VIEW attributions AS {sql}")


def connect(path: str | Path | DatanetStore, *, as_of: int | None = None,
            database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the datanet's views (committed batches only).

    Raises :class:`StoreError` when a committed file is missing or its size differs from its
    manifest (the snapshot was tampered with or damaged).
    """
    store = path if isinstance(path, DatanetStore) else DatanetStore(path)
    manifests = store.manifests(as_of=as_of)
    if as_of is not None and as_of not in {m.seq for m in manifests} and as_of != 0:
        raise StoreError(f"--as-of {as_of}: no such batch; committed batches are "
                         f"1..{len(store.manifests())}")
    store.check_snapshot(manifests)
    con = duckdb.connect(database)
    if isinstance(store.root, ObjectPath):
        # the store's own fsspec filesystem serves DuckDB's reads of its URIs: no httpfs
        # extension (a download) and the same credentials as the rest of the store
        con.register_filesystem(store.root.fs)
    for kind in VIEWS[:-1]:
        view = "_quarantine_all" if kind == "quarantine" else kind
        paths = [store.abs(p) for m in manifests for p in m.paths(kind)]
        if paths:
            listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            source = (f"read_parquet([{listing}], union_by_name = true, "
                      "hive_partitioning = false)")
        else:
            source = f"({_empty_select(_empty_schema(kind, store))})"
        select = "*"
        if kind in _ADDRESS_COLUMNS:
            col = _ADDRESS_COLUMNS[kind]
            select = f"* REPLACE ({col} COLLATE NOCASE AS {col})"
        con.execute(f"CREATE VIEW {view} AS SELECT {select} FROM {source}")
    # a quarantined record re-decided by a later vote batch is no longer under review
    con.execute("CREATE VIEW quarantine AS SELECT * FROM _quarantine_all q WHERE "
                "q.contribution_id NOT IN (SELECT contribution_id FROM accepted UNION ALL "
                "SELECT contribution_id FROM rejected)")
    _attributions_view(con, store, as_of)
    rows = []
    for m in manifests:
        anchor = _anchor_state(store, m.batch_id)
        rows.append({
            "seq": m.seq, "batch_id": m.batch_id, "created_at": m.created_at,
            "input": m.counts.get("input", 0), "accepted": m.counts.get("accepted", 0),
            "rejected": m.counts.get("rejected", 0),
            "quarantine": m.counts.get("quarantine", 0),
            "deadletter": m.counts.get("deadletter", 0),
            "merkle_root": m.merkle_root, "prev_root": m.prev_root,
            "leaf_count": m.leaf_count,
            "anchor_status": anchor.get("status"), "anchor_tx": anchor.get("tx_hash"),
            "sources": list(m.sources),
        })
    cols = ", ".join(f'"{name}" {sql_type}' for name, sql_type in _BATCH_COLUMNS)
    con.execute(f"CREATE TEMP TABLE _batches ({cols})")
    if rows:
        marks = ", ".join("?" for _ in _BATCH_COLUMNS)
        con.executemany(f"INSERT INTO _batches VALUES ({marks})",
                        [[r[name] for name, _ in _BATCH_COLUMNS] for r in rows])
    con.execute("CREATE VIEW batches AS SELECT * FROM _batches")
    return con


@dataclass(frozen=True)
class RejectingVote:
    """One validator's reject (or abstain-with-reason) vote on a record."""

    validator: str
    verdict: str
    reason: str | None
    score: float | None
    details: str | None


@dataclass(frozen=True)
class ContributionState:
    """Where a contribution ended: ``rejected`` or ``quarantine`` (needs review), with the
    policy's reasons and the votes that carried them; what ``datanet proof`` says when a record
    is not among the accepted ones."""

    contribution_id: str
    state: str
    seq: int | None
    batch_id: str
    source: str | None
    reasons: tuple[str, ...]
    votes: tuple[RejectingVote, ...]


def contribution_state(con: duckdb.DuckDBPyConnection,
                       contribution_id: str) -> ContributionState | None:
    """The rejected / quarantined record with this id (any case: ids are stored lower-case),
    or None if it is neither."""
    cid = contribution_id.strip().lower()
    row = con.execute(
        "SELECT s.state, b.seq, s.batch, s.source_file || ':' || s.source_line, s.reasons "
        "FROM (SELECT 'rejected' AS state, * FROM rejected UNION ALL BY NAME "
        "      SELECT 'quarantine' AS state, * FROM quarantine) s "
        "LEFT JOIN batches b ON b.batch_id = s.batch "
        "WHERE s.contribution_id = ? ORDER BY b.seq DESC LIMIT 1", [cid]).fetchall()
    if not row:
        return None
    state, seq, batch, source, reasons = row[0]
    votes = con.execute(
        "SELECT validator, verdict, reason, score, details FROM votes "
        "WHERE contribution_id = ? AND batch = ? AND verdict <> 'accept' "
        "AND (verdict = 'reject' OR reason IS NOT NULL) ORDER BY verdict DESC, validator",
        [cid, batch]).fetchall()
    return ContributionState(cid, state, seq, batch, source, tuple(reasons or ()),
                             tuple(RejectingVote(*v) for v in votes))
