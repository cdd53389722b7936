"""Consolidated snapshots of a datanet's accepted records, for consumers outside datanet.

One file (Parquet or JSON lines) or a Hugging Face dataset folder with every accepted record
of the committed batches up to ``as_of``, in batch then contribution-id order, carrying what a
consumer needs to trust and credit it: licence, datanet id, the batches with their Merkle
roots and anchor transactions, and how to verify a record. Parquet keeps that in its schema
metadata (key ``datanet``); JSON lines and the HF folder get a ``datanet.json`` beside the
data, and the HF folder a dataset card (``README.md``) that ``datasets.load_dataset`` reads.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.errors import StoreError

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["FORMATS", "ExportResult", "export_snapshot", "export_metadata", "METADATA_KEY"]

FORMATS = ("parquet", "jsonl", "hf")
#: Parquet schema-metadata key holding the export metadata (JSON).
METADATA_KEY = b"datanet"
EXPORT_FORMAT = "datanet-export/1"
HF_DATA_FILE = "data/train-00000-of-00001.parquet"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    dest: Path
    format: str
    rows: int
    files: tuple[Path, ...]
    metadata: dict[str, Any]


def _anchor(store: DatanetStore, batch_id: str) -> dict[str, Any] | None:
    p = store.path(f"anchors/{batch_id}.json")
    if not p.exists():
        return None
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return {k: state.get(k) for k in ("status", "chain_id", "contract", "tx_hash",
                                      "block_number", "block_hash")}


def export_metadata(store: DatanetStore, manifests: list[Any], rows: int) -> dict[str, Any]:
    """Licence, ids, batch roots and anchor references of a snapshot (JSON-ready)."""
    from datanet import __version__
    from datanet.anchoring.merkle import LEAF_ENCODING, LEAF_FIELDS

    spec = store.spec
    return {
        "format": EXPORT_FORMAT,
        "datanet": spec.id, "name": spec.name, "description": spec.description,
        "license": spec.license,
        "as_of": manifests[-1].seq if manifests else 0,
        "records": rows,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "datanet_version": __version__,
        "batches": [{"seq": m.seq, "batch_id": m.batch_id, "merkle_root": m.merkle_root,
                     "leaf_count": m.leaf_count, "prev_root": m.prev_root,
                     "anchor": _anchor(store, m.batch_id)} for m in manifests],
        "leaf": {"encoding": list(LEAF_ENCODING), "fields": list(LEAF_FIELDS),
                 "tree": "OpenZeppelin StandardMerkleTree (standard-v1)"},
        "verify": "datanet proof DATANET CONTRIBUTION_ID -o bundle.json && "
                  "datanet verify bundle.json --rpc URL",
    }


def _claim(dest: Path, overwrite: bool, folder: bool) -> None:
    if dest.exists():
        empty_dir = dest.is_dir() and not any(dest.iterdir())
        if not (overwrite or empty_dir):
            raise StoreError(f"{dest}: already exists; choose another destination or pass "
                             "--overwrite")
        if overwrite and not empty_dir:
            if dest.is_dir() and not folder:
                raise StoreError(f"{dest}: is a directory; give a file name")
            if dest.is_dir():
                shutil.rmtree(dest)
            else:
                dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)


def _write_parquet(table: Any, target: Path, metadata: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(metadata, sort_keys=True).encode()
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export_snapshot(path: str | Path, dest: str | Path, *, as_of: int | None = None,
                    format: str = "parquet", overwrite: bool = False) -> ExportResult:
    """Write the accepted records of the committed batches up to ``as_of`` to ``dest``."""
    from datanet.store.layout import DatanetStore
    from datanet.store.query import connect

    if format not in FORMATS:
        raise StoreError(f"--format {format!r}: must be one of {', '.join(FORMATS)}")
    store = DatanetStore(path)
    con = connect(store, as_of=as_of)
    manifests = store.manifests(as_of=as_of)
    query = ("SELECT a.* FROM accepted a JOIN batches b ON a.batch = b.batch_id "
             "ORDER BY b.seq, a.contribution_id")
    dest = Path(dest)
    _claim(dest, overwrite, folder=format == "hf")
    if format == "jsonl":
        rows = con.sql("SELECT count(*) FROM accepted").fetchall()[0][0]
        meta = export_metadata(store, manifests, rows)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            escaped = str(tmp).replace("'", "''")
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT json, "
                        "TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ')")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        side = dest.with_name(dest.name + ".datanet.json")
        side.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return ExportResult(dest, format, rows, (dest, side), meta)
    table = con.sql(query).to_arrow_table()
    meta = export_metadata(store, manifests, table.num_rows)
    if format == "parquet":
        _write_parquet(table, dest, meta)
        return ExportResult(dest, format, table.num_rows, (dest,), meta)
    # hf: a dataset folder (data + card + metadata)
    data = dest / HF_DATA_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    _write_parquet(table, data, meta)
    contributors = len(set(table.column("contributor").to_pylist())) if table.num_rows else 0
    card = dataset_card(store, meta, table.schema.names, contributors)
    (dest / "README.md").write_text(card, encoding="utf-8")
    (dest / "datanet.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return ExportResult(dest, format, table.num_rows,
                        (data, dest / "README.md", dest / "datanet.json"), meta)


def _hf_license(license: str) -> str:
    """The Hub's licence id: SPDX ids in lower case (``CC-BY-4.0`` → ``cc-by-4.0``)."""
    return license.strip().lower() or "other"


def dataset_card(store: DatanetStore, meta: dict[str, Any], columns: list[str],
                 contributors: int) -> str:
    """A Hugging Face dataset card: YAML header (licence, data files) and a short body."""
    spec = store.spec
    from datanet.validators.registry import is_enabled, validator_names

    validators = [name for name in validator_names() if is_enabled(spec, name)]
    rows = "\n".join(
        f"| {b['seq']} | `{b['batch_id']}` | `{b['merkle_root'] or '-'}` | {b['leaf_count']} | "
        + (f"chain {b['anchor']['chain_id']}, tx `{b['anchor']['tx_hash']}` "
           f"({b['anchor']['status']})" if b["anchor"] and b["anchor"].get("tx_hash")
           else "not anchored") + " |"
        for b in meta["batches"])
    name = (spec.name or spec.id).replace('"', "'")
    return f"""---
license: {_hf_license(spec.license)}
pretty_name: "{name}"
configs:
- config_name: default
  data_files:
  - split: train
    path: {HF_DATA_FILE}
---

# {spec.name or spec.id}

{spec.description or ""}

A snapshot of the datanet `{spec.id}` exported by datanet {meta['datanet_version']}: the
{meta['records']:,} accepted records of batches 1–{meta['as_of']} from {contributors:,}
contributors. Licence: **{spec.license}**.

Every record passed these validators (and the datanet's vote policy): {', '.join(validators)}.

## Columns

{', '.join(f'`{c}`' for c in columns)}

## Batches and their Merkle roots

| seq | batch | Merkle root | leaves | anchor |
| --- | --- | --- | --- | --- |
{rows}

## Verify a record

Each record is a leaf of its batch's Merkle tree (OpenZeppelin StandardMerkleTree,
`standard-v1`; leaf = `({', '.join(meta['leaf']['fields'])})` encoded as
`({', '.join(meta['leaf']['encoding'])})`), and the batch root is anchored on-chain. With the
datanet:

```bash
datanet proof PATH CONTRIBUTION_ID -o bundle.json
datanet verify bundle.json --rpc URL     # off-chain and on-chain check
```

`datanet.json` beside this card (and the Parquet file's `datanet` schema metadata) holds the
same batch list with anchor transactions, as JSON.
"""
