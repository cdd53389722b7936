"""Intake: parse JSONL / CSV / Parquet files into Arrow record batches, or dead-letter rows.

Files arrive as Beam ``ReadableFile``s (``fileio.MatchAll`` + ``ReadMatches``: works on every
runner, splits work per file, gzip etc. decompressed by extension). Each file is streamed and
cut into chunks of ``pipeline.batch_rows`` records; a chunk is normalised and hashed as one
Arrow batch. A line that cannot become a record goes to the dead-letter output with a reason
code, the file, the line / row number and the field; its raw content is never kept.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from eth_utils import is_checksum_address, to_checksum_address

from datanet.privacy.normalise import normalise
from datanet.schemas.contribution import DEADLETTER_SCHEMA, record_schema
from datanet.schemas.ids import contribution_ids, keccak
from datanet.schemas.spec import DatanetSpec

__all__ = [
    "DEADLETTER_REASONS",
    "RecordParser",
    "iter_file_chunks",
    "detect_format",
    "chunk_key",
]

DEADLETTER_REASONS = (
    "invalid_json",
    "invalid_utf8",
    "invalid_csv",
    "invalid_parquet",
    "missing_field",
    "bad_type",
    "bad_address",
    "too_large",
    "duplicate_submission",
)

_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}
_COMPRESSIONS = (".gz", ".gzip", ".bz2", ".zst", ".deflate", ".lzma", ".xz")


def detect_format(path: str) -> str:
    """``jsonl``, ``csv`` or ``parquet`` from the file name (compression suffix ignored)."""
    name = path.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for ext, fmt in _FORMATS.items():
        if name.endswith(ext):
            return fmt
    from datanet.errors import IntakeError

    raise IntakeError(
        f"{path}: unknown input format; file names must end with one of "
        f"{', '.join(sorted(_FORMATS))} (optionally + {', '.join(_COMPRESSIONS)})"
    )


def chunk_key(source_file: str, index: int) -> str:
    """Stable key of the ``index``-th chunk of a file."""
    return f"{source_file}#{index:06d}"


class _Dead(Exception):
    def __init__(self, reason: str, field: str | None, message: str):
        super().__init__(reason, field, message)
        self.reason, self.field, self.message = reason, field, message


def _parse_time(value: Any, field: str) -> int:
    """Microseconds since epoch from an ISO-8601 string or epoch seconds."""
    if isinstance(value, bool):
        raise _Dead("bad_type", field, f"{field} must be an ISO-8601 time or epoch seconds")
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Dead("bad_type", field,
                        f"{field}={value[:40]!r} is not an ISO-8601 time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1_000_000)
    raise _Dead("bad_type", field, f"{field} must be an ISO-8601 time or epoch seconds")


class RecordParser:
    """Validates raw records (dicts) of one file and accumulates Arrow chunks.

    One instance per file: it holds the columns of the chunk being built, the dead-letter rows
    and a small cache of checksummed addresses (contributors repeat).
    """

    def __init__(self, spec: DatanetSpec, source_file: str, default_time_us: int):
        self.spec = spec
        self.source_file = source_file
        self.default_time_us = default_time_us
        self.extra = spec.extra_fields
        self.schema = record_schema(self.extra)
        self.max_bytes = spec.limits.max_record_bytes
        self._addr_cache: dict[str, str | None] = {}
        self._reset()
        self.dead: list[dict[str, Any]] = []
        self.chunks_emitted = 0

    def _reset(self) -> None:
        self.cols: dict[str, list[Any]] = {
            "contributor": [], "submitted_at": [], "text": [], "metadata": [], "signature": [],
            "source_line": [], **{k: [] for k in self.extra},
        }

    def __len__(self) -> int:
        return len(self.cols["text"])

    def dead_letter(self, line: int, raw: bytes | int, reason: str, field: str | None,
                    message: str) -> None:
        """Record a dead-letter row (raw content hashed, never stored)."""
        raw_bytes = raw if isinstance(raw, bytes) else b""
        size = raw if isinstance(raw, int) else len(raw)
        rid = "0x" + keccak(
            f"{self.source_file}\x00{line}\x00".encode() + raw_bytes
        ).hex()
        self.dead.append({
            "record_id": rid, "source_file": self.source_file, "source_line": line,
            "reason": reason, "field": field,
            "message": f"{self.source_file}:{line}: {message}", "raw_bytes": size,
        })

    def _address(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _Dead("bad_type", "contributor", "contributor must be a string address")
        cached = self._addr_cache.get(value, "")
        if cached != "":
            if cached is None:
                raise _Dead("bad_address", "contributor",
                            f"contributor={value[:50]!r} is not a valid EVM address")
            return cached
        result: str | None = None
        v = value.strip()
        if len(v) == 42 and v[:2] in ("0x", "0X"):
            try:
                int(v[2:], 16)
                body = v[2:]
                if body == body.lower() or body == body.upper():
                    result = to_checksum_address("0x" + body.lower())
                elif is_checksum_address(v):
                    result = v
            except ValueError:
                result = None
        self._addr_cache[value] = result
        if result is None:
            raise _Dead("bad_address", "contributor",
                        f"contributor={value[:50]!r} is not a valid EVM address "
                        "(20-byte hex, EIP-55 checksum when mixed case)")
        return result

    def _coerce_extra(self, name: str, type_name: str, value: Any) -> Any:
        if value is None or value == "":
            return None
        ok = {
            "string": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "timestamp": lambda v: True,
        }[type_name]
        if type_name == "timestamp":
            return _parse_time(value, name)
        if not ok(value):
            raise _Dead("bad_type", name, f"{name} must be of type {type_name}, got "
                        f"{type(value).__name__}")
        return float(value) if type_name == "float" else value

    def add(self, obj: Any, line: int, raw_size: int, *, from_text: bool = False) -> None:
        """Validate one parsed record; add it to the chunk or dead-letter it.

        ``from_text``: values come from CSV (all strings): extra fields are converted from text.
        """
        try:
            if not isinstance(obj, dict):
                raise _Dead("bad_type", None,
                            f"a record must be a JSON object, got {type(obj).__name__}")
            for key in ("contributor", "text"):
                if obj.get(key) is None or (from_text and obj.get(key) == ""):
                    raise _Dead("missing_field", key, f"required field {key!r} is missing")
            text = obj["text"]
            if not isinstance(text, str):
                raise _Dead("bad_type", "text", f"text must be a string, got "
                            f"{type(text).__name__}")
            contributor = self._address(obj["contributor"])
            ts = obj.get("submitted_at")
            ts_us = self.default_time_us if ts in (None, "") else _parse_time(ts, "submitted_at")
            meta = obj.get("metadata")
            if meta in (None, ""):
                meta_s = None
            elif isinstance(meta, dict):
                meta_s = json.dumps(meta, sort_keys=True, ensure_ascii=False)
            elif isinstance(meta, str):
                try:
                    parsed = json.loads(meta)
                except ValueError:
                    raise _Dead("bad_type", "metadata", "metadata must be a JSON object") from None
                if not isinstance(parsed, dict):
                    raise _Dead("bad_type", "metadata", "metadata must be a JSON object")
                meta_s = json.dumps(parsed, sort_keys=True, ensure_ascii=False)
            else:
                raise _Dead("bad_type", "metadata", "metadata must be a JSON object")
            sig = obj.get("signature")
            if sig in ("",):
                sig = None
            if sig is not None and not isinstance(sig, str):
                raise _Dead("bad_type", "signature", "signature must be a 0x-hex string")
            extras = {}
            for name, type_name in self.extra.items():
                value = obj.get(name)
                if from_text and isinstance(value, str) and type_name != "string":
                    value = _from_text(name, type_name, value)
                extras[name] = self._coerce_extra(name, type_name, value)
        except _Dead as dead:
            self.dead_letter(line, raw_size, dead.reason, dead.field, dead.message)
            return
        c = self.cols
        c["contributor"].append(contributor)
        c["submitted_at"].append(ts_us)
        c["text"].append(text)
        c["metadata"].append(meta_s)
        c["signature"].append(sig)
        c["source_line"].append(line)
        for name, value in extras.items():
            c[name].append(value)

    def flush(self) -> tuple[str, pa.RecordBatch] | None:
        """Build the current chunk as a normalised, hashed record batch."""
        n = len(self)
        if n == 0:
            return None
        c = self.cols
        text = pa.array(c["text"], pa.string())
        norm = normalise(text)
        norm_list = norm.to_pylist()
        hashes = ["0x" + keccak(t.encode("utf-8")).hex() for t in norm_list]
        ids = contribution_ids(self.spec.id, c["contributor"], hashes)
        arrays = {
            "contribution_id": pa.array(ids, pa.string()),
            "datanet": pa.array([self.spec.id] * n, pa.string()),
            "contributor": pa.array(c["contributor"], pa.string()),
            "submitted_at": pc.cast(pa.array(c["submitted_at"], pa.int64()),
                                    self.schema.field("submitted_at").type),
            "text": text,
            "text_norm": norm,
            "content_hash": pa.array(hashes, pa.string()),
            "metadata": pa.array(c["metadata"], pa.string()),
            "signature": pa.array(c["signature"], pa.string()),
            "source_file": pa.array([self.source_file] * n, pa.string()),
            "source_line": pa.array(c["source_line"], pa.int64()),
        }
        for name in self.extra:
            field = self.schema.field(name)
            if field.type == pa.timestamp("us", tz="UTC"):
                arrays[name] = pc.cast(pa.array(c[name], pa.int64()), field.type)
            else:
                arrays[name] = pa.array(c[name], field.type)
        batch = pa.RecordBatch.from_arrays([arrays[f.name] for f in self.schema],
                                           schema=self.schema)
        key = chunk_key(self.source_file, self.chunks_emitted)
        self.chunks_emitted += 1
        self._reset()
        return key, batch

    def dead_batch(self) -> pa.RecordBatch | None:
        """Dead-letter rows collected so far (then cleared)."""
        if not self.dead:
            return None
        out = pa.RecordBatch.from_pylist(self.dead, schema=DEADLETTER_SCHEMA)
        self.dead = []
        return out


def _from_text(name: str, type_name: str, value: str) -> Any:
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
        if type_name == "bool":
            low = value.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(value)
    except ValueError:
        raise _Dead("bad_type", name, f"{name}={value[:40]!r} is not a valid {type_name}") from None
    return value


def _iter_lines(handle: Any, max_bytes: int, block: int = 1 << 20
                ) -> Iterator[tuple[bytes | None, int]]:
    """Yield ``(line, size)`` per line; ``line`` is None when longer than ``max_bytes``.

    Reads fixed-size blocks (Beam's compressed file objects have no ``readline(size)``), so an
    oversized line is counted but never held in memory.
    """
    pending: list[bytes] = []
    pending_size = 0
    oversized = False
    while True:
        data = handle.read(block)
        if not data:
            break
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                piece = data[start:]
                pending_size += len(piece)
                if pending_size > max_bytes:
                    oversized, pending = True, []
                elif piece:
                    pending.append(piece)
                break
            piece = data[start:nl]
            size = pending_size + len(piece)
            if oversized or size > max_bytes:
                yield None, size
            else:
                pending.append(piece)
                yield b"".join(pending), size
            pending, pending_size, oversized = [], 0, False
            start = nl + 1
    if pending_size or oversized:
        yield (None if oversized or pending_size > max_bytes else b"".join(pending)), pending_size


def _jsonl(parser: RecordParser, handle: io.BufferedIOBase, batch_rows: int
           ) -> Iterator[tuple[str, pa.RecordBatch]]:
    max_bytes = parser.max_bytes
    line_no = 0
    for raw, size in _iter_lines(handle, max_bytes):
        line_no += 1
        if raw is None:
            parser.dead_letter(line_no, size, "too_large", None,
                               f"record is {size} bytes; limits.max_record_bytes={max_bytes}")
            continue
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as exc:
            parser.dead_letter(line_no, stripped, "invalid_utf8", None,
                               f"invalid UTF-8 at byte {exc.start}")
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            parser.dead_letter(line_no, stripped, "invalid_json", None, f"invalid JSON: {exc}")
            continue
        parser.add(obj, line_no, len(stripped))
        if len(parser) >= batch_rows:
            out = parser.flush()
            if out:
                yield out


def _csv(parser: RecordParser, handle: io.BufferedIOBase, batch_rows: int
         ) -> Iterator[tuple[str, pa.RecordBatch]]:
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.DictReader(text)
    max_bytes = parser.max_bytes
    prev_line = 1
    try:
        for row in reader:
            line_no = reader.line_num
            size = sum(len(v) for v in row.values() if isinstance(v, str))
            first_line = prev_line + 1
            prev_line = line_no
            if None in row:
                parser.dead_letter(first_line, size, "invalid_csv", None,
                                   "row has more fields than the header")
                continue
            if size > max_bytes:
                parser.dead_letter(first_line, size, "too_large", None,
                                   f"row is {size} bytes; limits.max_record_bytes={max_bytes}")
                continue
            bad = next((k for k, v in row.items() if isinstance(v, str) and _has_surrogate(v)),
                       None)
            if bad is not None:
                raw = "\x1f".join(v or "" for v in row.values()).encode("utf-8",
                                                                       "surrogateescape")
                parser.dead_letter(first_line, raw, "invalid_utf8", bad,
                                   f"field {bad!r} is not valid UTF-8")
                continue
            parser.add(row, first_line, size, from_text=True)
            if len(parser) >= batch_rows:
                out = parser.flush()
                if out:
                    yield out
    except csv.Error as exc:
        parser.dead_letter(reader.line_num, 0, "invalid_csv", None, f"CSV error: {exc}")


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parquet(parser: RecordParser, handle: io.BufferedIOBase, batch_rows: int
             ) -> Iterator[tuple[str, pa.RecordBatch]]:
    import pyarrow.parquet as pq

    try:
        data = handle.read()
        pf = pq.ParquetFile(pa.BufferReader(data))
        batches: Iterable[pa.RecordBatch] = pf.iter_batches(batch_size=batch_rows)
        row = 0
        for rb in batches:
            for obj in rb.to_pylist():
                row += 1
                size = sum(len(v) for v in obj.values() if isinstance(v, (str, bytes)))
                if size > parser.max_bytes:
                    parser.dead_letter(row, size, "too_large", None,
                                       f"row is {size} bytes; "
                                       f"limits.max_record_bytes={parser.max_bytes}")
                    continue
                ts = obj.get("submitted_at")
                if isinstance(ts, datetime):
                    obj["submitted_at"] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)
                                           ).isoformat()
                if isinstance(obj.get("text"), bytes):
                    try:
                        obj["text"] = obj["text"].decode("utf-8")
                    except UnicodeDecodeError:
                        parser.dead_letter(row, obj["text"], "invalid_utf8", "text",
                                           "text is not valid UTF-8")
                        continue
                parser.add(obj, row, size)
                if len(parser) >= batch_rows:
                    out = parser.flush()
                    if out:
                        yield out
    except (pa.ArrowInvalid, OSError) as exc:
        parser.dead_letter(0, 0, "invalid_parquet", None, f"unreadable Parquet file: {exc}")


_READERS = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}


def iter_file_chunks(
    spec: DatanetSpec, source_file: str, handle: io.BufferedIOBase, *, default_time_us: int
) -> Iterator[tuple[str, pa.RecordBatch | None, pa.RecordBatch | None]]:
    """Yield ``(chunk_key, records, deadletter)`` for one open file.

    ``records`` chunks have at most ``spec.pipeline.batch_rows`` rows. Dead-letter rows are
    yielded with the chunk during which they were found (``records`` may then be None).
    """
    fmt = detect_format(source_file)
    parser = RecordParser(spec, source_file, default_time_us)
    for key, batch in _READERS[fmt](parser, handle, spec.pipeline.batch_rows):
        yield key, batch, parser.dead_batch()
    last = parser.flush()
    dead = parser.dead_batch()
    if last is not None or dead is not None:
        key = last[0] if last else chunk_key(source_file, parser.chunks_emitted)
        yield key, (last[1] if last else None), dead


