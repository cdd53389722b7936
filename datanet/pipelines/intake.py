"""Intake: parse JSONL / CSV / Parquet files into Arrow record batches, or dead-letter rows.

Files arrive as Beam ``ReadableFile``s (``fileio.MatchAll`` + ``ReadMatches``: works on every
runner, splits work per file). Each file is streamed and cut into chunks of
``pipeline.batch_rows`` records; a chunk is normalised and hashed as one Arrow batch. A line
that cannot become a record goes to the dead-letter output with a reason code, the file, the
line / row number and the field; its raw content is never kept. A file that cannot be read at
all (not a regular file, not gzip, truncated, over the decompression limit, an unsupported
encoding, a corrupt Parquet footer) becomes one dead-letter entry (line 0) and the run goes on.

Cost is bounded per record: lines are cut from fixed-size blocks (a line over
``limits.max_record_bytes`` is counted, never held), decompression stops at
:data:`MAX_DECOMPRESSED_BYTES`, JSON nesting over :data:`MAX_DEPTH` is refused before parsing.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import io
import json
import lzma
import math
import os
import re
import stat
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from eth_utils import is_checksum_address, to_checksum_address

from datanet.privacy.normalise import normalise
from datanet.schemas.contribution import DEADLETTER_SCHEMA, record_schema
from datanet.schemas.ids import content_hashes, contribution_ids, keccak
from datanet.schemas.spec import DatanetSpec

__all__ = [
    "DEADLETTER_REASONS",
    "FILE_REASONS",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_DEPTH",
    "RecordParser",
    "iter_file_chunks",
    "iter_path_chunks",
    "detect_format",
    "chunk_key",
    "display_path",
]

#: Reasons of one line / row.
DEADLETTER_REASONS = (
    "invalid_json",
    "invalid_utf8",
    "invalid_csv",
    "invalid_parquet",
    "too_deep",
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "bad_address",
    "bad_value",
    "too_large",
    "duplicate_submission",
)

#: Reasons of a whole file (one dead-letter entry, ``source_line`` 0).
FILE_REASONS = (
    "not_regular_file",
    "unreadable_file",
    "invalid_compression",
    "decompression_limit",
    "unsupported_encoding",
    "invalid_csv",
    "invalid_parquet",
)

#: Decompressed bytes read from one compressed file at most; a larger one is refused whole
#: (``decompression_limit``). Decompression streams in 1 MiB blocks, so memory stays small
#: whatever the ratio; the limit bounds time. UTF-16/32 files and compressed Parquet are
#: decoded in memory and are bounded by the same figure.
MAX_DECOMPRESSED_BYTES = 1 << 30

#: JSON nesting deeper than this is dead-lettered ``too_deep`` before ``json.loads`` sees it
#: (CPython's parser would raise ``RecursionError`` near 1000, depending on the stack).
MAX_DEPTH = 64

_BLOCK = 1 << 20

_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}
_COMPRESSIONS = (".gz", ".gzip", ".bz2", ".zst", ".deflate", ".lzma", ".xz")

# microseconds since the epoch of 0001-01-01 and 9999-12-31T23:59:59.999999 (datetime's range:
# what Python, DuckDB and Arrow's to_pylist can all read back)
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
_INT64 = (-(1 << 63), (1 << 63) - 1)


def split_compression(path: str) -> tuple[str, str | None]:
    """(lower-cased name without its compression suffix, the suffix or None)."""
    name = path.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, None


def detect_format(path: str) -> str:
    """``jsonl``, ``csv`` or ``parquet`` from the file name (compression suffix ignored)."""
    name, _ = split_compression(path)
    for ext, fmt in _FORMATS.items():
        if name.endswith(ext):
            return fmt
    from datanet.errors import IntakeError

    raise IntakeError(
        f"{display_path(path)}: unknown input format; file names must end with one of "
        f"{', '.join(sorted(_FORMATS))} (optionally + {', '.join(_COMPRESSIONS)})"
    )


def display_path(path: str) -> str:
    """``path`` as valid UTF-8 (undecodable bytes of a file name as ``\\xNN``)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def chunk_key(source_file: str, index: int) -> str:
    """Stable key of the ``index``-th chunk of a file."""
    return f"{source_file}#{index:06d}"


class _Dead(Exception):
    def __init__(self, reason: str, field: str | None, message: str):
        super().__init__(reason, field, message)
        self.reason, self.field, self.message = reason, field, message


class _FileDead(Exception):
    """The whole file is dead-lettered (one entry)."""

    def __init__(self, reason: str, message: str):
        super().__init__(reason, message)
        self.reason, self.message = reason, message


class _Micros(int):
    """Microseconds since the epoch read from a typed (Parquet) timestamp."""


def _check_us(us: int, field: str) -> int:
    if not _MIN_US <= us <= _MAX_US:
        raise _Dead("bad_timestamp", field,
                    f"{field} is outside the years 1-9999 (epoch microseconds {us})")
    return us


def _parse_time(value: Any, field: str) -> int:
    """Microseconds since epoch from an ISO-8601 string or epoch seconds (years 1-9999)."""
    if isinstance(value, _Micros):
        return _check_us(int(value), field)
    if isinstance(value, bool):
        raise _Dead("bad_type", field, f"{field} must be an ISO-8601 time or epoch seconds")
    if isinstance(value, int):
        if abs(value) > 10**15:
            raise _Dead("bad_timestamp", field, f"{field} is a {value.bit_length()}-bit "
                        "number of epoch seconds, out of range")
        return _check_us(value * 1_000_000, field)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise _Dead("bad_timestamp", field, f"{field}={value!r} epoch seconds is out of "
                        "range")
        return _check_us(int(value * 1_000_000), field)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Dead("bad_type", field,
                        f"{field}={value[:40]!r} is not an ISO-8601 time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            us = int(dt.timestamp() * 1_000_000)
        except (OverflowError, ValueError):
            raise _Dead("bad_timestamp", field,
                        f"{field}={value[:40]!r} is outside the years 1-9999") from None
        return _check_us(us, field)
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
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self.cols["text"])

    def dead_letter(self, line: int, raw: bytes | int, reason: str, field: str | None,
                    message: str) -> None:
        """Record a dead-letter row (raw content hashed, never stored)."""
        raw_bytes = raw if isinstance(raw, bytes) else b""
        size = raw if isinstance(raw, int) else len(raw)
        if field is not None:
            field = display_path(field)
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
        if type_name == "int" and not _INT64[0] <= value <= _INT64[1]:
            raise _Dead("bad_type", name, f"{name} is a {value.bit_length()}-bit integer; "
                        "int fields are 64-bit")
        if type_name == "float":
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise _Dead("bad_type", name, f"{name} must be a finite number")
        return value

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
                meta_s = _dump_metadata(meta)
            elif isinstance(meta, str):
                if (meta.count("[") + meta.count("{") > MAX_DEPTH
                        and _depth(meta.encode("utf-8", "surrogatepass")) > MAX_DEPTH):
                    raise _Dead("too_deep", "metadata",
                                f"metadata nested deeper than {MAX_DEPTH} levels")
                try:
                    parsed = json.loads(meta)
                except ValueError:
                    raise _Dead("bad_type", "metadata", "metadata must be a JSON object") from None
                if not isinstance(parsed, dict):
                    raise _Dead("bad_type", "metadata", "metadata must be a JSON object")
                meta_s = _dump_metadata(parsed)
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
        except RecursionError:
            self.dead_letter(line, raw_size, "too_deep", None,
                             f"nesting deeper than {MAX_DEPTH} levels")
            return
        except Exception as exc:  # one record must never stop the run
            self.dead_letter(line, raw_size, "bad_value", None,
                             f"record cannot be read ({type(exc).__name__})")
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
        self._sizes.append(raw_size)

    def flush(self) -> tuple[str, pa.RecordBatch] | None:
        """Build the current chunk as a normalised, hashed record batch.

        Vectorised over the chunk; if that fails (a value Arrow refuses), each row is built
        alone and the rows that fail are dead-lettered ``bad_value``.
        """
        n = len(self)
        if n == 0:
            return None
        try:
            batch = self._build(self.cols, n)
        except Exception:  # fall back to one row at a time
            good: list[pa.RecordBatch] = []
            for i in range(n):
                row = {k: v[i:i + 1] for k, v in self.cols.items()}
                try:
                    good.append(self._build(row, 1))
                except Exception as exc:
                    self.dead_letter(row["source_line"][0], self._sizes[i], "bad_value", None,
                                     f"record cannot be stored ({type(exc).__name__})")
            if not good:
                self._reset()
                return None
            batch = pa.Table.from_batches(good).combine_chunks().to_batches()[0]
        key = chunk_key(self.source_file, self.chunks_emitted)
        self.chunks_emitted += 1
        self._reset()
        return key, batch

    def _build(self, c: dict[str, list[Any]], n: int) -> pa.RecordBatch:
        text = pa.array(c["text"], pa.string())
        norm = normalise(text)
        hashes = content_hashes(norm)
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
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in self.schema],
                                          schema=self.schema)

    def dead_batch(self) -> pa.RecordBatch | None:
        """Dead-letter rows collected so far (then cleared)."""
        if not self.dead:
            return None
        out = pa.RecordBatch.from_pylist(self.dead, schema=DEADLETTER_SCHEMA)
        self.dead = []
        return out



#: What ``json.dumps(meta, sort_keys=True, ensure_ascii=False, allow_nan=False)`` builds on
#: every call (the same output; building the encoder cost more than encoding a small dict).
_METADATA_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False)


def _dump_metadata(meta: dict[str, Any]) -> str:
    try:
        return _METADATA_ENCODER.encode(meta)
    except (TypeError, ValueError) as exc:
        raise _Dead("bad_type", "metadata", f"metadata is not a JSON object of strings, "
                    f"finite numbers, booleans, lists and objects ({exc})") from None


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


# ---------------------------------------------------------------------------------------------
# lines

_EOL = re.compile(rb"\r\n|\r|\n")


def _iter_lines(handle: Any, max_bytes: int, block: int = _BLOCK
                ) -> Iterator[tuple[bytes | None, int, bytes]]:
    """Yield ``(line, size, end)`` per line; ``line`` is None when longer than ``max_bytes``.

    LF, CRLF and CR end a line (``end`` is the terminator, ``b""`` for a last line without
    one). Reads fixed-size blocks, so an oversized line is counted but never held in memory;
    a block's final CR waits for the next block, so a CRLF cut by a block boundary is still
    one CRLF (a CSV value spanning lines keeps its line break).
    """
    pending: list[bytes] = []
    pending_size = 0
    oversized = False
    carry = b""
    while True:
        chunk = handle.read(block)
        data = carry + chunk if carry else chunk
        carry = b""
        if not data:
            break
        if chunk and data.endswith(b"\r"):  # CR or the first half of a CRLF
            data, carry = data[:-1], b"\r"
        lines, piece = _ended_lines(data)
        for line, end in lines:
            size = pending_size + len(line)
            if oversized or size > max_bytes:
                yield None, size, end
            else:
                yield (b"".join((*pending, line)) if pending else line), size, end
            pending, pending_size, oversized = [], 0, False
        pending_size += len(piece)
        if pending_size > max_bytes:
            oversized, pending = True, []
        elif piece:
            pending.append(piece)
    if pending_size or oversized:
        yield (None if oversized or pending_size > max_bytes else b"".join(pending)
               ), pending_size, b""


def _ended_lines(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """``([(line, terminator), ...], rest)`` of a block: its LF / CRLF / CR ended lines and
    the unterminated piece after them. A block without CR (the common case) is one split in
    C, not a regex match per line."""
    if b"\r" not in data:
        *lines, rest = data.split(b"\n")
        return [(line, b"\n") for line in lines], rest
    out, start = [], 0
    for m in _EOL.finditer(data):
        out.append((data[start:m.start()], m.group()))
        start = m.end()
    return out, data[start:]


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _find_surrogate(obj: Any, top: str | None = None) -> str | None:
    """The top-level key holding a string with a lone surrogate (``""`` for a bare value)."""
    stack: list[tuple[Any, str | None]] = [(obj, top)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                return where if where is not None else ""
        elif isinstance(value, dict):
            for k, v in value.items():
                key = k if where is None else where
                if _has_surrogate(k):
                    return key
                stack.append((v, key))
        elif isinstance(value, list):
            stack.extend((v, where if where is not None else "") for v in value)
    return None


def _depth(line: bytes) -> int:
    """Greatest nesting depth of JSON arrays / objects in ``line`` (strings skipped)."""
    depth = best = 0
    for tok in re.findall(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', line):
        if tok in (b"[", b"{"):
            depth += 1
            best = max(best, depth)
        elif tok in (b"]", b"}"):
            depth -= 1
    return best


def _jsonl(parser: RecordParser, handle: Any, batch_rows: int
           ) -> Iterator[tuple[str, pa.RecordBatch]]:
    max_bytes = parser.max_bytes
    line_no = 0
    for raw, size, _end in _iter_lines(handle, max_bytes):
        line_no += 1
        if raw is None:
            parser.dead_letter(line_no, size, "too_large", None,
                               f"record is {size} bytes; limits.max_record_bytes={max_bytes}")
            continue
        stripped = raw.strip()
        if not stripped:
            continue
        _json_record(parser, line_no, stripped)
        if len(parser) >= batch_rows:
            out = parser.flush()
            if out:
                yield out


def _json_record(parser: RecordParser, line_no: int, stripped: bytes) -> None:
    """One JSON text (a JSONL line or a JSON array's element): a record or a dead-letter."""
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        parser.dead_letter(line_no, stripped, "invalid_utf8", None,
                           f"invalid UTF-8 at byte {exc.start}")
        return
    if (stripped.count(b"[") + stripped.count(b"{") > MAX_DEPTH
            and _depth(stripped) > MAX_DEPTH):
        parser.dead_letter(line_no, stripped, "too_deep", None,
                           f"JSON nested deeper than {MAX_DEPTH} levels")
        return
    try:
        obj = json.loads(text)
    except RecursionError:
        parser.dead_letter(line_no, stripped, "too_deep", None,
                           f"JSON nested deeper than {MAX_DEPTH} levels")
        return
    except ValueError as exc:
        parser.dead_letter(line_no, stripped, "invalid_json", None, f"invalid JSON: {exc}")
        return
    if _SURROGATE_ESCAPE.search(stripped):
        bad = _find_surrogate(obj)
        if bad is not None:
            parser.dead_letter(line_no, stripped, "invalid_utf8", bad or None,
                               "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)")
            return
    parser.add(obj, line_no, len(stripped))


#: What the JSON array splitter looks at: a whole string, a lone quote (a string that goes on
#: past the buffer), or a bracket / brace / comma. Possessive quantifiers (Python 3.11): a
#: string the buffer cuts off fails without the backtracking stack a plain ``*`` keeps (which
#: cost ~150 bytes per byte of a 1 MiB string).
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|"|[\[\]{},]')


def _escaping(buf: bytes) -> int:
    """1 when ``buf`` ends with an odd run of backslashes (it escapes the byte that comes
    next, so that backslash must be kept), else 0."""
    return (len(buf) - len(buf.rstrip(b"\\"))) % 2


def _string_end(buf: bytes) -> int:
    """Offset just past the first unescaped ``"`` of ``buf`` (which starts inside a string),
    or -1 when the string goes on past it."""
    i = 0
    while True:
        j = buf.find(b'"', i)
        if j < 0:
            return -1
        k = j
        while k > 0 and buf[k - 1] == 0x5C:  # backslashes right before the quote
            k -= 1
        if (j - k) % 2 == 0:
            return j + 1
        i = j + 1


def _json(parser: RecordParser, handle: Any, batch_rows: int
          ) -> Iterator[tuple[str, pa.RecordBatch]]:
    """A ``.json`` file: a JSON array of records when its first non-blank byte is ``[``
    (the shape most tools export), JSON Lines otherwise (as ``.jsonl``)."""
    head = b""
    while not head.strip():
        data = handle.read(_BLOCK)
        if not data:
            break
        head += data
    stream = _Prefixed(head, handle)
    if head.lstrip()[:1] == b"[":
        yield from _json_array(parser, stream, batch_rows)
    else:
        yield from _jsonl(parser, stream, batch_rows)


def _json_array(parser: RecordParser, handle: Any, batch_rows: int
                ) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Stream the elements of a top-level JSON array, each through :func:`_json_record` with
    the line it starts on. Memory is bounded by a block plus the largest element: an element
    over ``limits.max_record_bytes`` is counted while it is skipped (``too_large``), never
    held. An empty element (``[1,,2]``, a trailing comma), a truncated array or bytes after
    its closing ``]`` end the file with one ``invalid_json`` dead-letter naming the line; the
    elements before it stand. Inside an element only strings and brackets are tracked, so a
    malformed element is one ``invalid_json`` record and the array goes on."""
    max_bytes = parser.max_bytes
    buf = b""        # unread bytes
    line = 1         # the line of buf[counted]: newlines are counted once, moving forward
    counted = 0
    pos = 0          # scan position in buf
    state = "open"   # open -> first (after [) / next (after ,) -> value -> ... -> done
    depth = 0        # brackets open inside the current element
    start = 0        # buf offset of the current element (state "value", not oversized)
    elem_line = 0
    dropped = -1     # bytes of an oversized element skipped so far (-1: not oversized)
    in_string = False  # skipping inside a string of an oversized element
    eof = False

    def line_of(at: int) -> int:
        nonlocal line, counted
        if at > counted:
            line += buf.count(b"\n", counted, at)
            counted = at
        return line

    def drop(upto: int) -> None:  # forget buf[:upto] (only when more bytes are read)
        nonlocal buf, pos, start, counted
        line_of(upto)
        buf, pos, start, counted = buf[upto:], pos - upto, start - upto, counted - upto

    def fail(at: int, what: str) -> None:
        parser.dead_letter(line_of(at), 0, "invalid_json", None,
                           f"the JSON array {what}; the rest of the file is not read")

    while True:
        if in_string:  # an oversized element's string: find its closing quote
            end = _string_end(buf)
            if end < 0:
                if eof:
                    fail(len(buf), "is truncated (no closing ])")
                    return
                keep = _escaping(buf)  # a backslash that escapes the next block's byte
                dropped += len(buf) - keep
                drop(len(buf) - keep)
                start = pos = 0
                data = handle.read(_BLOCK)
                eof = not data
                buf += data
                continue
            in_string = False
            dropped += end
            drop(end)
            start = pos = 0
        m = _JSON_TOKEN.search(buf, pos)
        if m is None or m.group() == b'"':  # need more bytes (or the file ended)
            if eof:
                rest = buf[pos:]
                if state == "done" and not rest.strip():
                    return
                if state == "done":
                    fail(pos + len(rest) - len(rest.lstrip()), "has bytes after its closing ]")
                else:
                    fail(len(buf), "is truncated (no closing ])")
                return
            rest = buf[pos:]
            if state in ("first", "next") and rest.strip():  # an element begins in the rest
                start, state, depth, dropped = pos + len(rest) - len(rest.lstrip()), "value", 0, -1
                elem_line = line_of(start)
            if state == "value":
                if dropped < 0 and len(buf) - start > max_bytes:
                    dropped = 0
                if dropped >= 0:  # oversized: count what is skipped, hold nothing
                    keep = 0
                    if m is not None:  # inside a string: skip to its end as bytes come
                        in_string = True
                        keep = _escaping(buf)  # (the string's quote stops the run)
                    dropped += len(buf) - start - keep
                    drop(len(buf) - keep)
                    start, pos = 0, 0
                else:
                    drop(start)
            else:
                drop(pos)
            data = handle.read(_BLOCK)
            eof = not data
            buf += data
            continue
        tok = m.group()
        gap = buf[pos:m.start()]
        if state == "done":
            fail(m.start(), "has bytes after its closing ]")
            return
        if state == "open":
            if tok != b"[" or gap.strip():
                fail(pos, "does not start with [")
                return
            state, pos = "first", m.end()
            continue
        if state in ("first", "next"):
            if gap.strip():  # a scalar element (or garbage) ends at this token
                lead = len(gap) - len(gap.lstrip())
                start, state, depth = pos + lead, "value", 0
            elif tok == b"]" and state == "first":
                state, pos = "done", m.end()
                continue
            elif tok in (b",", b"]"):
                fail(m.start(), "has an empty element (two commas, or a comma before ])")
                return
            else:
                start, state, depth = m.start(), "value", 0
            elem_line = line_of(start)
            dropped = -1
        # state == "value"
        if tok in (b"[", b"{"):
            depth += 1
        elif tok in (b"]", b"}") and depth > 0:
            depth -= 1
        elif tok in (b",", b"]") and depth == 0:
            if dropped >= 0:
                size = dropped + m.start() - start
                parser.dead_letter(elem_line, size, "too_large", None,
                                   f"record is {size} bytes; limits.max_record_bytes={max_bytes}")
            else:
                element = buf[start:m.start()].rstrip()
                if len(element) > max_bytes:
                    parser.dead_letter(elem_line, len(element), "too_large", None,
                                       f"record is {len(element)} bytes; "
                                       f"limits.max_record_bytes={max_bytes}")
                else:
                    _json_record(parser, elem_line, element)
            state = "next" if tok == b"," else "done"
            pos = m.end()
            if len(parser) >= batch_rows:
                out = parser.flush()
                if out:
                    yield out
            continue
        pos = m.end()


# ---------------------------------------------------------------------------------------------
# CSV


class _RowTooLong(Exception):
    pass


class _CsvRows:
    """Rows of a CSV stream with their first physical line; bad rows as dead-letter tuples.

    Python's ``csv`` module (strict quoting) parses; this class feeds it one physical line at
    a time and knows which lines made each row. A row that fails (bad quoting, an unterminated
    quote, more than ``max_bytes``, a field count unlike the header's over several lines)
    dead-letters its first line and parsing restarts on the next one, so an unbalanced quote
    costs one line, never the rest of the file.
    """

    def __init__(self, lines: Iterator[tuple[bytes | None, int, bytes]], max_bytes: int):
        self.source = enumerate(lines, start=1)
        self.back: deque[tuple[int, tuple[bytes | None, int, bytes]]] = deque()
        self.cur: list[tuple[int, tuple[bytes | None, int, bytes]]] = []
        self.cur_size = 0
        self.cur_bad = False
        self.max_bytes = max_bytes
        self.width: int | None = None
        if csv.field_size_limit() <= max_bytes:
            csv.field_size_limit(max_bytes + 1)

    def _feed(self) -> Iterator[str]:
        while True:
            if self.back:
                item = self.back.popleft()
            else:
                nxt = next(self.source, None)
                if nxt is None:
                    return
                item = nxt
            raw, size, end = item[1]
            self.cur.append(item)
            self.cur_size += size
            if raw is None or self.cur_size > self.max_bytes:
                raise _RowTooLong
            try:
                yield (raw + end).decode("utf-8")
            except UnicodeDecodeError:
                self.cur_bad = True
                yield (raw + end).decode("utf-8", "surrogateescape")

    def _raw(self) -> bytes | None:
        """The row's bytes when some are not UTF-8 (its dead-letter id), else None."""
        return b"\n".join(r[1][0] or b"" for r in self.cur) if self.cur_bad else None

    def __iter__(self) -> Iterator[tuple[str, int, Any, int, bytes]]:
        """``("row", line, fields, size, raw)`` or ``("dead", line, reason, size, message)``."""
        while True:
            reader = csv.reader(self._feed(), strict=True)
            while True:
                self.cur, self.cur_size, self.cur_bad = [], 0, False
                failure: tuple[str, str] | None = None
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except _RowTooLong:
                    failure = ("too_large", f"row is over limits.max_record_bytes="
                               f"{self.max_bytes}")
                except csv.Error as exc:
                    failure = ("invalid_csv", f"CSV error: {exc}")
                else:
                    if not fields:
                        continue
                    if self.width is None or len(fields) == self.width:
                        yield "row", self.cur[0][0], fields, self.cur_size, self._raw()
                        continue
                    failure = ("invalid_csv", f"row has {len(fields)} fields; the header has "
                               f"{self.width}")
                    if len(self.cur) == 1:
                        yield ("dead", self.cur[0][0], failure[0], self.cur_size, failure[1])
                        continue
                if len(self.cur) > 1:
                    # a row over several lines failed: most likely a quote opened on its first
                    # line was never closed. Refuse that line; read the others again.
                    first = self.cur[0]
                    self.back.extendleft(reversed(self.cur[1:]))
                    yield ("dead", first[0], "invalid_csv", first[1][1],
                           f"unbalanced quote: this line starts a row that does not parse "
                           f"({failure[1]})")
                else:
                    yield ("dead", self.cur[0][0], failure[0], self.cur_size, failure[1])
                break  # the reader's state is unknown after an error: start a new one


def _csv(parser: RecordParser, handle: Any, batch_rows: int
         ) -> Iterator[tuple[str, pa.RecordBatch]]:
    max_bytes = parser.max_bytes
    csv_rows = _CsvRows(_iter_lines(handle, max_bytes), max_bytes)
    rows = iter(csv_rows)
    first = next(rows, None)
    if first is None:
        return
    if first[0] != "row":
        raise _FileDead("invalid_csv", f"the header cannot be read ({first[4]})")
    header = list(first[2])
    bad = next((h for h in header if _has_surrogate(h)), None)
    if bad is not None:
        raise _FileDead("invalid_csv", "the header is not valid UTF-8")
    dup = sorted(h for h, n in Counter(header).items() if n > 1 and h)
    if dup:
        raise _FileDead("invalid_csv", f"the header names {dup[0]!r} twice")
    csv_rows.width = len(header)
    for item in rows:
        if item[0] == "dead":
            _, line, reason, size, message = item
            parser.dead_letter(line, size, reason, None, message)
            continue
        _, line, fields, size, raw = item
        bad_i = None if raw is None else next(
            (i for i, v in enumerate(fields) if _has_surrogate(v)), None)
        if bad_i is not None:
            parser.dead_letter(line, raw, "invalid_utf8", header[bad_i],
                               f"field {header[bad_i]!r} is not valid UTF-8")
            continue
        parser.add(dict(zip(header, fields, strict=True)), line, size, from_text=True)
        if len(parser) >= batch_rows:
            out = parser.flush()
            if out:
                yield out


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Parquet

_TS_FACTOR = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}


def _parquet_rows(rb: pa.RecordBatch) -> list[Any]:
    """Rows of ``rb`` as dicts; typed timestamps as :class:`_Micros`; a row that cannot be
    converted (invalid UTF-8 in a string column…) as the ``(column, exception)`` it failed on."""
    ts_cols: dict[str, tuple[int, int]] = {}
    for i, f in enumerate(rb.schema):
        if pa.types.is_timestamp(f.type):
            ts_cols[f.name] = _TS_FACTOR[f.type.unit]
            rb = rb.set_column(i, f.name, pc.cast(rb.column(i), pa.int64()))
    try:
        rows: list[Any] = rb.to_pylist()
    except Exception:  # find the rows that fail, one by one
        rows = []
        for j in range(rb.num_rows):
            one = rb.slice(j, 1)
            try:
                rows.append(one.to_pylist()[0])
            except Exception as exc:
                col = next((n for n in one.schema.names
                            if not _converts(one.column(n))), None)
                rows.append((col, exc))
    for obj in rows:
        if isinstance(obj, dict):
            for name, (mul, div) in ts_cols.items():
                v = obj.get(name)
                if isinstance(v, int):
                    obj[name] = _Micros(v * mul // div)
    return rows


def _converts(col: pa.Array) -> bool:
    try:
        col.to_pylist()
        return True
    except Exception:
        return False


def _parquet(parser: RecordParser, handle: Any, batch_rows: int
             ) -> Iterator[tuple[str, pa.RecordBatch]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(handle)
        total = pf.metadata.num_rows
    except Exception as exc:  # whatever the footer holds
        raise _FileDead("invalid_parquet", f"unreadable Parquet file: {exc}") from None
    row = 0
    batches = pf.iter_batches(batch_size=batch_rows)
    while True:
        try:
            rb = next(batches, None)
        except Exception as exc:  # a corrupt page / row group
            parser.dead_letter(row + 1, 0, "invalid_parquet", None,
                               f"rows {row + 1}-{total} cannot be read: {exc}")
            return
        if rb is None:
            return
        for obj in _parquet_rows(rb):
            row += 1
            if isinstance(obj, tuple):
                col, exc = obj
                reason = "invalid_utf8" if isinstance(exc, UnicodeDecodeError) else "bad_value"
                parser.dead_letter(row, 0, reason, col, f"column {col!r} cannot be read "
                                   f"({type(exc).__name__})")
                continue
            size = sum(len(v) for v in obj.values() if isinstance(v, (str, bytes)))
            if size > parser.max_bytes:
                parser.dead_letter(row, size, "too_large", None,
                                   f"row is {size} bytes; "
                                   f"limits.max_record_bytes={parser.max_bytes}")
                continue
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


_READERS: dict[str, Callable[..., Iterator[tuple[str, pa.RecordBatch]]]] = {
    "jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet}


# ---------------------------------------------------------------------------------------------
# files


class _Capped(io.RawIOBase):
    """Read at most ``limit`` bytes of ``inner``; one byte more raises ``decompression_limit``."""

    def __init__(self, inner: Any, limit: int):
        self.inner, self.limit, self.seen = inner, limit, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.limit + 1 - self.seen
        data = self.inner.read(min(size, self.limit + 1 - self.seen))
        self.seen += len(data)
        if self.seen > self.limit:
            raise _FileDead("decompression_limit", f"decompresses to more than {self.limit} "
                            "bytes (intake.MAX_DECOMPRESSED_BYTES)")
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Inflate(io.RawIOBase):
    """A zlib (``.deflate``) or zstd (``.zst``, frames one after another) stream, decompressed
    as it is read; a truncated stream or trailing bytes raise (never a silent short read)."""

    def __init__(self, raw: Any, make: Callable[[], Any], multi: bool):
        self.raw, self.make, self.multi = raw, make, multi
        self.z, self.buf, self.eof, self.started = make(), b"", False, False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = _BLOCK if size is None or size < 0 else size
        while len(self.buf) < size and not self.eof:
            data = self.raw.read(_BLOCK)
            if not data:
                if self.started and not self.z.eof:
                    raise EOFError("truncated compressed stream")
                self.eof = True
                break
            while data:
                self.started = True
                self.buf += self.z.decompress(data)
                data = b""
                if self.z.eof and self.z.unused_data:
                    if not self.multi:
                        raise OSError("trailing data after the compressed stream")
                    data, self.z, self.started = self.z.unused_data, self.make(), False
        out, self.buf = self.buf[:size], self.buf[size:]
        return out


def _read_all(stream: Any) -> bytes:
    parts = []
    while True:
        data = stream.read(_BLOCK)
        if not data:
            return b"".join(parts)
        parts.append(data)


def _decompressor(raw: Any, suffix: str) -> Any:
    import gzip

    if suffix in (".gz", ".gzip"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if suffix == ".bz2":
        return bz2.BZ2File(raw)
    if suffix in (".xz", ".lzma"):
        return lzma.LZMAFile(raw)
    if suffix == ".zst":
        import zstandard

        return _Inflate(raw, zstandard.ZstdDecompressor().decompressobj, multi=True)
    return _Inflate(raw, zlib.decompressobj, multi=False)


def _check_local(path: str) -> int | None:
    """Size of a local regular file; ``_FileDead`` for anything else; None when not local."""
    if "://" in path and not path.startswith("file://"):
        return None
    local = path[len("file://"):] if path.startswith("file://") else path
    try:
        st = os.stat(local)  # follows symlinks; a loop raises ELOOP, never hangs
    except OSError as exc:
        raise _FileDead("unreadable_file", f"cannot stat the file: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO"
                if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "not a regular file")
        raise _FileDead("not_regular_file", f"is {kind}, not a regular file; not read")
    return st.st_size


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


# where the NUL bytes of two UTF-16 or one UTF-32 ASCII character fall (LE, BE)
_WIDE_SHAPES = ((False, True, False, True), (True, False, True, False),
                (False, True, True, True), (True, True, True, False))


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: Any):
        self.head, self.inner = head, inner

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                out, self.head = self.head + self.inner.read(), b""
                return out
            out, self.head = self.head[:size], self.head[size:]
            return out
        return self.inner.read(size)


def _text_stream(handle: Any, limit: int) -> Any:
    """``handle`` as UTF-8 bytes: a UTF-8 BOM dropped, UTF-16/32 with a BOM transcoded (in
    memory, up to ``limit`` bytes), anything else that looks like UTF-16/32 refused."""
    head = handle.read(4)
    for bom, codec in _BOMS:
        if head.startswith(bom):
            if codec == "utf-8-sig":
                return _Prefixed(head[len(bom):], handle)
            data = head + _read_all(_Capped(handle, limit - len(head)))
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise _FileDead("unsupported_encoding",
                                f"{codec.upper()} BOM but invalid {codec.upper()} at byte "
                                f"{exc.start}") from None
            return io.BytesIO(text.encode("utf-8"))
    if len(head) == 4 and any(all((b == 0) == z for b, z in zip(head, shape, strict=True))
                              for shape in _WIDE_SHAPES):
        raise _FileDead("unsupported_encoding", "looks like UTF-16/32 without a byte order "
                        "mark (NUL bytes in the first characters); convert to UTF-8")
    return _Prefixed(head, handle)


def iter_file_chunks(
    spec: DatanetSpec, source_file: str, handle: Any, *, default_time_us: int
) -> Iterator[tuple[str, pa.RecordBatch | None, pa.RecordBatch | None]]:
    """Yield ``(chunk_key, records, deadletter)`` for one open, decompressed file.

    ``records`` chunks have at most ``spec.pipeline.batch_rows`` rows. Dead-letter rows are
    yielded with the chunk during which they were found (``records`` may then be None). A
    problem of the whole file is one dead-letter row with ``source_line`` 0.
    """
    fmt = detect_format(source_file)
    source = display_path(source_file)
    parser = RecordParser(spec, source, default_time_us)
    emitted = False
    try:
        stream = handle if fmt == "parquet" else _text_stream(handle, MAX_DECOMPRESSED_BYTES)
        for key, batch in _READERS[fmt](parser, stream, spec.pipeline.batch_rows):
            emitted = True
            yield key, batch, parser.dead_batch()
    except _FileDead as exc:
        if emitted:
            parser.dead_letter(0, 0, exc.reason, None, exc.message)
        else:
            parser.dead, parser.chunks_emitted = [], 0
            parser._reset()
            yield from _file_dead(parser, exc)
            return
    except Exception as exc:  # a read error mid-file: what was read stands, the rest is one entry
        parser.dead_letter(0, 0, "unreadable_file", None,
                           f"reading stopped: {type(exc).__name__}: {exc}")
    last = parser.flush()
    dead = parser.dead_batch()
    if last is not None or dead is not None:
        key = last[0] if last else chunk_key(source, parser.chunks_emitted)
        yield key, (last[1] if last else None), dead


def _file_dead(parser: RecordParser, exc: _FileDead
               ) -> Iterator[tuple[str, None, pa.RecordBatch | None]]:
    parser.dead_letter(0, 0, exc.reason, None, exc.message)
    yield chunk_key(parser.source_file, 0), None, parser.dead_batch()


def iter_path_chunks(
    spec: DatanetSpec, path: str, opener: Callable[[str], Any], *, default_time_us: int,
    max_decompressed: int | None = None,
) -> Iterator[tuple[str, pa.RecordBatch | None, pa.RecordBatch | None]]:
    """:func:`iter_file_chunks` for a path: checks and decompression first.

    ``opener(path)`` returns the raw (still compressed) bytes. A local path must be a regular
    file (FIFOs, devices, directories are refused before reading). A compressed file is
    decompressed once to check it (not corrupt, not truncated, no trailing garbage, at most
    ``max_decompressed`` bytes, default :data:`MAX_DECOMPRESSED_BYTES`), then read: a bad
    file is one dead-letter entry, never half-read.
    """
    limit = MAX_DECOMPRESSED_BYTES if max_decompressed is None else max_decompressed
    fmt = detect_format(path)
    _, suffix = split_compression(path)
    parser = RecordParser(spec, display_path(path), default_time_us)
    try:
        _check_local(path)
        if suffix is not None:
            try:
                with opener(path) as raw:
                    capped = _Capped(_decompressor(raw, suffix), limit)
                    while capped.read(_BLOCK):
                        pass
            except _FileDead:
                raise
            except Exception as exc:  # whatever the decompressor raises on bad bytes
                raise _FileDead("invalid_compression", f"not a valid {suffix[1:]} file: "
                                f"{type(exc).__name__}: {exc}") from None
        with opener(path) as raw:
            if suffix is None:
                if fmt == "parquet" and not raw.seekable():
                    raw = io.BytesIO(_read_all(_Capped(raw, limit)))
                yield from iter_file_chunks(spec, path, raw, default_time_us=default_time_us)
                return
            stream = _decompressor(raw, suffix)
            if fmt == "parquet":
                stream = io.BytesIO(_read_all(_Capped(stream, limit)))
            yield from iter_file_chunks(spec, path, stream, default_time_us=default_time_us)
    except _FileDead as exc:
        yield from _file_dead(parser, exc)
    except OSError as exc:
        yield from _file_dead(parser, _FileDead("unreadable_file",
                                                f"cannot be read: {exc.strerror or exc}"))
