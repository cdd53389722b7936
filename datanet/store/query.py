"""DuckDB views over a datanet's committed batches.

Views: ``accepted``, ``rejected``, ``quarantine`` (still under review), ``deadletter``, ``votes``,
``external_votes`` (Parquet files named
by committed manifests only) and ``batches`` (one row per manifest). ``as_of`` shows the datanet
as it was after batch ``as_of``.
"""

from __future__ import annotations

import json
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
from datanet.store.layout import DatanetStore

__all__ = ["connect", "VIEWS"]

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


def _anchor_state(store: DatanetStore, batch_id: str) -> dict[str, Any]:
    p = Path(store.abs(f"anchors/{batch_id}.json"))
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return {}


def _attributions_view(con: duckdb.DuckDBPyConnection, store: DatanetStore,
                       as_of: int | None) -> None:
    """``attributions``: committed attribution receipts (:mod:`datanet.attribution.receipts`)."""
    from datanet.attribution.receipts import RECEIPT_SCHEMA, receipts_view_sql

    sql = receipts_view_sql(store, as_of=as_of)
    if sql is None:
        con.register("_empty_attributions",
                     RECEIPT_SCHEMA.append(pa.field("batch", pa.string())).empty_table())
        sql = "SELECT * FROM _empty_attributions"
    con.execute(f"CREATE VIEW attributions AS {sql}")


def connect(path: str | Path | DatanetStore, *, as_of: int | None = None,
            database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the datanet's views (committed batches only)."""
    store = path if isinstance(path, DatanetStore) else DatanetStore(path)
    manifests = store.manifests(as_of=as_of)
    if as_of is not None and as_of not in {m.seq for m in manifests} and as_of != 0:
        raise StoreError(f"--as-of {as_of}: no such batch; committed batches are "
                         f"1..{len(store.manifests())}")
    con = duckdb.connect(database)
    for kind in VIEWS[:-1]:
        view = "_quarantine_all" if kind == "quarantine" else kind
        paths = [store.abs(p) for m in manifests for p in m.paths(kind)]
        if paths:
            listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{listing}], "
                        "union_by_name = true, hive_partitioning = false)")
        else:
            con.register(f"_empty_{kind}", _empty_schema(kind, store).empty_table())
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _empty_{kind}")
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
    schema = pa.schema([
        ("seq", pa.int64()), ("batch_id", pa.string()), ("created_at", pa.string()),
        ("input", pa.int64()), ("accepted", pa.int64()), ("rejected", pa.int64()),
        ("quarantine", pa.int64()), ("deadletter", pa.int64()), ("merkle_root", pa.string()),
        ("prev_root", pa.string()), ("leaf_count", pa.int64()), ("anchor_status", pa.string()),
        ("anchor_tx", pa.string()), ("sources", pa.list_(pa.string())),
    ])
    con.register("_batches", pa.Table.from_pylist(rows, schema=schema))
    con.execute("CREATE VIEW batches AS SELECT * FROM _batches")
    return con
