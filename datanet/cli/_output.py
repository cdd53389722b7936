"""Output helpers shared by the commands: JSON on stdout, readable reports, bounded tables.

Machine-readable results (``--format json``) go to stdout as one JSON document; everything
else (progress, logs) goes to stderr, so ``datanet run … --format json | jq`` works.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

__all__ = ["OutFormat", "anchor_json", "json_default", "print_json", "describe", "cell_text",
           "csv_cell", "iter_json_array"]


class OutFormat(StrEnum):
    """``--format`` of commands that print a result: a rich table / text, or JSON."""

    table = "table"
    json = "json"


def json_default(value: Any) -> Any:
    """JSON for what :func:`json.dumps` does not know: ISO times, exact decimals as strings,
    bytes as UTF-8 (base64 when not text), dataclasses and enums by value."""
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def print_json(obj: Any) -> None:
    """One JSON document on stdout (indented: results are small; ``sql`` streams its own)."""
    sys.stdout.write(json.dumps(obj, default=json_default, indent=1, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def anchor_json(state: Any) -> dict[str, Any]:
    """The fields of an anchor state a consumer needs (``anchors/<id>.json`` has them all)."""
    return {k: getattr(state, k, None) for k in (
        "seq", "batch_id", "root", "status", "chain_id", "contract", "tx_hash", "block_number",
        "confirmations")}


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    return str(value)


def describe(value: Any) -> str:
    """A validator report (nested dicts / lists) as one line of text, not a Python repr.

    A mapping of many names to a few string values is grouped by value
    (``reject: CREDIT_CARD, EMAIL_ADDRESS; allow: URL``); other mappings print as
    ``key value`` pairs separated by ``·``; nested ones in parentheses.
    """
    if isinstance(value, Mapping):
        if not value:
            return "none"
        vals = list(value.values())
        if (len(value) > 3 and all(isinstance(v, str) for v in vals)
                and len(set(vals)) < len(vals)):
            groups: dict[str, list[str]] = {}
            for k, v in value.items():
                groups.setdefault(v, []).append(str(k))
            return "; ".join(f"{v}: {', '.join(ks)}" for v, ks in groups.items())
        parts = []
        for k, v in value.items():
            text = describe(v)
            if isinstance(v, Mapping) and len(v) > 1:
                text = f"({text})"
            parts.append(f"{k} {text}")
        return " · ".join(parts)
    if isinstance(value, str | bytes):
        return value if isinstance(value, str) else json_default(value)
    if isinstance(value, Sequence | set | frozenset):
        return ", ".join(describe(v) for v in value) if value else "none"
    return _scalar(value)


def cell_text(value: Any, width: int) -> str:
    """A table cell: ``NULL`` for None, nested values as JSON, cut to ``width`` characters
    with ``…`` (like the DuckDB CLI's value truncation)."""
    if value is None:
        text = "NULL"
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=json_default, ensure_ascii=False)
    elif isinstance(value, bytes | bytearray):
        text = str(json_default(value))
    else:
        text = str(value)
    text = text.replace("\r", " ").replace("\n", "↵")
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def csv_cell(value: Any) -> Any:
    """A CSV field: nested values (lists, structs, maps) as JSON, bytes as text, else as is."""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | _dt.datetime | _dt.date | decimal.Decimal):
        return json_default(value)
    return value


def iter_json_array(cols: Sequence[str],
                    chunks: Iterable[Sequence[Sequence[Any]]]) -> Iterable[str]:
    """Pieces of a JSON array of row objects (streamed: never one string for all rows)."""
    yield "["
    first = True
    for rows in chunks:
        for r in rows:
            piece = json.dumps(dict(zip(cols, r, strict=True)), default=json_default,
                               ensure_ascii=False)
            yield piece if first else ",\n" + piece
            first = False
    yield "]\n"
