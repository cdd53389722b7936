"""Property tests (hypothesis): generated hostile JSONL / CSV / Parquet files, plain or gzip,
with every line ending, BOM and UTF-16: every record of the input ends exactly once (a record
or one dead-letter row at its own line), with a documented reason, and parsing never raises.

The default run keeps few examples; ``-m slow`` runs a bigger profile.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import tomllib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datanet.pipelines.intake import DEADLETTER_REASONS, FILE_REASONS, iter_path_chunks
from datanet.schemas.spec import parse_spec
from tests.conftest import ADDRS, TINY_SPEC

SPEC = parse_spec(tomllib.loads(TINY_SPEC))
REASONS = set(DEADLETTER_REASONS) | set(FILE_REASONS)
_EOL = re.compile(r"\r\n|\r|\n")

FAST = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SLOW = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["\ud800", "\udfff x", "2026-13-45T99:00:00Z", "9999-12-31T23:59:59-05:00",
                     "0001-01-01T00:00:00+14:00", "1970-01-01", "\u202e\u0000\u0007"]),
)
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=12)


@st.composite
def valid_record(draw) -> dict:
    return {
        "contributor": draw(st.sampled_from(ADDRS)),
        "text": draw(st.text(min_size=0, max_size=120)),
        "submitted_at": draw(st.sampled_from(["2026-10-01T12:00:00Z", 1_700_000_000, None])),
        "topic": draw(st.sampled_from(["baking", "grilling", None])),
        "rating": draw(st.integers(min_value=1, max_value=5)),
        "metadata": {"lang": "en"},
    }


@st.composite
def hostile_record(draw) -> dict:
    rec = draw(valid_record())
    for key in draw(st.lists(st.sampled_from(
            ["contributor", "text", "submitted_at", "topic", "rating", "metadata", "signature",
             "extra"]), max_size=3)):
        rec[key] = draw(json_values)
    return rec


def _no_eol(b: bytes) -> bytes:
    return b.replace(b"\r", b" ").replace(b"\n", b" ")


# one JSONL line (bytes, no line terminator, non-blank)
jsonl_line = st.one_of(
    valid_record().map(lambda r: json.dumps(r).encode()),
    hostile_record().map(lambda r: json.dumps(r).encode()),
    st.binary(min_size=1, max_size=60).map(lambda b: b"#" + _no_eol(b)),
    st.integers(min_value=1, max_value=1000).map(lambda k: b"[" * k + b"]" * k),
    st.integers(min_value=2100, max_value=9000).map(lambda k: b'{"text": "' + b"x" * k + b'"}'),
    hostile_record().map(lambda r: json.dumps(r).encode()[:-3]),
)


def _check(parsed: list, dead: list, expected_lines: list[int], whole_file_ok: bool) -> None:
    for d in dead:
        assert d["reason"] in REASONS, d
    lines = sorted([*parsed, *(d["source_line"] for d in dead)])
    if whole_file_ok and [d["source_line"] for d in dead] == [0] and not parsed:
        return  # one entry for the whole file
    assert lines == sorted(expected_lines)


def _parse(tmp_path, name: str, data: bytes) -> tuple[list[int], list[dict]]:
    path = tmp_path / name
    path.write_bytes(data)
    parsed, dead = [], []
    for _, batch, dl in iter_path_chunks(SPEC, str(path), lambda p: open(p, "rb"),
                                         default_time_us=0):
        if batch is not None:
            parsed += batch.column("source_line").to_pylist()
        if dl is not None:
            dead += dl.to_pylist()
    return parsed, dead


def _wrap(data: bytes, gz: bool) -> bytes:
    return gzip.compress(data, mtime=0) if gz else data


def _jsonl_case(tmp_path, lines, eol, bom, gz, utf16, final_eol):
    body = eol.join(lines) + (eol if final_eol else b"")
    if utf16:
        body = body.decode("utf-8", "replace").encode("utf-16")
    if bom and not utf16:
        body = codecs.BOM_UTF8 + body
    parsed, dead = _parse(tmp_path, "p.jsonl" + (".gz" if gz else ""), _wrap(body, gz))
    _check(parsed, dead, list(range(1, len(lines) + 1)), whole_file_ok=utf16)


def _csv_case(tmp_path, rows, eol, bom, gz):
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator=eol)
    cols = ["contributor", "text", "submitted_at", "topic", "rating"]
    w.writerow(cols)
    out = [buf.getvalue().encode()]
    line, expected = 2, []
    for row in rows:
        if isinstance(row, bytes):
            text = row + eol.encode()
        else:
            b = io.StringIO()
            csv.writer(b, quoting=csv.QUOTE_ALL, lineterminator=eol).writerow(
                ["" if row.get(c) is None else str(row[c]) for c in cols])
            text = b.getvalue().encode("utf-8", "surrogatepass")
        expected.append(line)
        line += len(_EOL.findall(text.decode("utf-8", "surrogateescape")))
        out.append(text)
    body = (codecs.BOM_UTF8 if bom else b"") + b"".join(out)
    parsed, dead = _parse(tmp_path, "p.csv" + (".gz" if gz else ""), _wrap(body, gz))
    _check(parsed, dead, expected, whole_file_ok=False)


csv_raw_line = st.one_of(
    st.binary(min_size=1, max_size=60).map(lambda b: _no_eol(b).replace(b'"', b"'")),
    st.text(max_size=40).map(lambda t: f'{ADDRS[0]},"{t}'.encode("utf-8", "surrogatepass")
                             .replace(b"\r", b" ").replace(b"\n", b" ")
                             .replace(b'"', b"'").replace(b",'", b',"', 1)),
)
csv_row = st.one_of(valid_record(), hostile_record(), csv_raw_line)

_TYPES = {
    "string": (pa.string(), st.text(max_size=60)),
    "int": (pa.int64(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "uint": (pa.uint64(), st.integers(min_value=0, max_value=2**64 - 1)),
    "float": (pa.float64(), st.floats()),
    "ts_s": (pa.timestamp("s"), st.integers(min_value=-9 * 10**15, max_value=9 * 10**15)),
    "ts_ns_tz": (pa.timestamp("ns", tz="UTC"), st.integers(min_value=-(2**62), max_value=2**62)),
    "binary": (pa.binary(), st.binary(max_size=40)),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
    "struct": (pa.struct([("a", pa.string())]), st.fixed_dictionaries({"a": st.text(max_size=5)})),
    "addr": (pa.string(), st.sampled_from(ADDRS)),
}


@st.composite
def parquet_table(draw) -> pa.Table:
    n = draw(st.integers(min_value=0, max_value=12))
    cols = {}
    for name in ("contributor", "text", "submitted_at", "topic", "rating", "metadata"):
        kind = draw(st.sampled_from(sorted(_TYPES)))
        if kind == "string" and draw(st.booleans()):
            continue  # a missing column
        typ, values = _TYPES[kind]
        cols[name] = pa.array(draw(st.lists(st.one_of(st.none(), values), min_size=n,
                                            max_size=n)), typ)
    return pa.table(cols) if cols else pa.table({"x": pa.nulls(n)})


def _parquet_case(tmp_path, table, gz):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=5)
    data = sink.getvalue().to_pybytes()
    parsed, dead = _parse(tmp_path, "p.parquet" + (".gz" if gz else ""), _wrap(data, gz))
    _check(parsed, dead, list(range(1, table.num_rows + 1)), whole_file_ok=False)


eols = st.sampled_from([b"\n", b"\r\n", b"\r"])


@FAST
@given(lines=st.lists(jsonl_line, max_size=12), eol=eols, bom=st.booleans(), gz=st.booleans(),
       utf16=st.booleans(), final_eol=st.booleans())
def test_jsonl_every_line_ends_once(tmp_path, lines, eol, bom, gz, utf16, final_eol):
    _jsonl_case(tmp_path, lines, eol, bom, gz, utf16, final_eol)


@FAST
@given(rows=st.lists(csv_row, max_size=12), eol=st.sampled_from(["\n", "\r\n", "\r"]),
       bom=st.booleans(), gz=st.booleans())
def test_csv_every_row_ends_once(tmp_path, rows, eol, bom, gz):
    _csv_case(tmp_path, rows, eol, bom, gz)


@FAST
@given(table=parquet_table(), gz=st.booleans())
def test_parquet_every_row_ends_once(tmp_path, table, gz):
    _parquet_case(tmp_path, table, gz)


@pytest.mark.slow
@SLOW
@given(lines=st.lists(jsonl_line, max_size=40), eol=eols, bom=st.booleans(), gz=st.booleans(),
       utf16=st.booleans(), final_eol=st.booleans())
def test_jsonl_every_line_ends_once_many(tmp_path, lines, eol, bom, gz, utf16, final_eol):
    _jsonl_case(tmp_path, lines, eol, bom, gz, utf16, final_eol)


@pytest.mark.slow
@SLOW
@given(rows=st.lists(csv_row, max_size=40), eol=st.sampled_from(["\n", "\r\n", "\r"]),
       bom=st.booleans(), gz=st.booleans())
def test_csv_every_row_ends_once_many(tmp_path, rows, eol, bom, gz):
    _csv_case(tmp_path, rows, eol, bom, gz)


@pytest.mark.slow
@SLOW
@given(table=parquet_table(), gz=st.booleans())
def test_parquet_every_row_ends_once_many(tmp_path, table, gz):
    _parquet_case(tmp_path, table, gz)


# one JSON value that is a whole element of a JSON array: valid or hostile records, scalars,
# deep nesting, oversized texts, objects broken inside (a bad element must stay one entry)
json_element = st.one_of(
    valid_record().map(lambda r: json.dumps(r).encode()),
    hostile_record().map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=300).map(lambda k: b"[" * k + b"]" * k),
    st.integers(min_value=2100, max_value=9000).map(lambda k: b'{"text": "' + b"x" * k + b'"}'),
    hostile_record().map(lambda r: json.dumps(r).encode().replace(b":", b" ", 1)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(elements=st.lists(json_element, max_size=12),
       sep=st.sampled_from([b",", b",\n", b" ,\r\n "]), gz=st.booleans())
def test_json_array_elements_end_like_the_same_jsonl_lines(tmp_path, elements, sep, gz):
    """A JSON array and the JSON Lines file of its elements give the same records (texts,
    ids) and the same dead-letter reasons, one entry per element, none lost."""
    lines = [e.replace(b"\n", b" ").replace(b"\r", b" ") for e in elements]
    arr = _parse(tmp_path, "a.json" + (".gz" if gz else ""),
                 _wrap(b"[" + sep.join(lines) + b"]", gz))
    jl = _parse(tmp_path, "l.jsonl", b"\n".join(lines) + b"\n")
    assert len(arr[0]) == len(jl[0])
    assert sorted(d["reason"] for d in arr[1]) == sorted(d["reason"] for d in jl[1])
    assert len(arr[0]) + len(arr[1]) == len(elements)


@FAST
@given(data=st.lists(st.sampled_from([b"\n", b"\r", b"\r\n", b"a", b"bc", b"\xc3\xa9", b" "]),
                     max_size=60).map(b"".join),
       block=st.sampled_from([1, 2, 3, 5, 8, 1 << 20]), max_bytes=st.integers(0, 6))
def test_lines_are_the_same_whatever_the_block_size(data, block, max_bytes):
    """``_iter_lines`` (LF-only blocks split in C, others by the regex) gives, for any block
    size, the lines a split on LF / CRLF / CR gives, oversized ones as None with their size."""
    from datanet.pipelines.intake import _iter_lines

    want = []
    pos = 0
    for m in re.finditer(rb"\r\n|\r|\n", data):
        line = data[pos:m.start()]
        want.append((line if len(line) <= max_bytes else None, len(line), m.group()))
        pos = m.end()
    if pos < len(data):
        tail = data[pos:]
        want.append((tail if len(tail) <= max_bytes else None, len(tail), b""))
    assert list(_iter_lines(io.BytesIO(data), max_bytes, block)) == want
