"""Intake round trips per format and every dead-letter reason code (Beam-free parser)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tomllib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.errors import IntakeError
from datanet.pipelines.intake import detect_format, iter_file_chunks
from datanet.schemas.spec import parse_spec
from tests.conftest import ADDRS, TINY_SPEC, record


@pytest.fixture(scope="module")
def spec():
    return parse_spec(tomllib.loads(TINY_SPEC))


def _run(spec, name: str, data: bytes):
    records, dead = [], []
    for _key, batch, dl in iter_file_chunks(spec, name, io.BytesIO(data), default_time_us=0):
        if batch is not None:
            records.extend(batch.to_pylist())
        if dl is not None:
            dead.extend(dl.to_pylist())
    return records, dead


def _jsonl(recs) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in recs)


def test_jsonl_round_trip(spec):
    recs = [record(i) for i in range(5)]
    rows, dead = _run(spec, "in.jsonl", _jsonl(recs))
    assert dead == []
    assert [r["text"] for r in rows] == [r["text"] for r in recs]
    assert [r["source_line"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["contributor"] == ADDRS[0]
    assert rows[0]["metadata"] == '{"lang": "en"}'
    assert rows[0]["topic"] == "baking"
    assert rows[0]["submitted_at"].isoformat() == "2026-10-01T12:00:00+00:00"
    assert rows[0]["contribution_id"].startswith("0x") and len(rows[0]["contribution_id"]) == 66


def test_gzip_csv_parquet_give_the_same_records(spec):
    recs = [record(i) for i in range(4)]
    base, _ = _run(spec, "in.jsonl", _jsonl(recs))

    gz, _ = _run(spec, "in.jsonl", gzip.decompress(gzip.compress(_jsonl(recs))))

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["contributor", "text", "submitted_at", "topic",
                                        "metadata"])
    w.writeheader()
    for r in recs:
        w.writerow({**r, "metadata": json.dumps(r["metadata"])})
    rows_csv, dead_csv = _run(spec, "in.csv", buf.getvalue().encode())

    table = pa.Table.from_pylist([{**r, "metadata": json.dumps(r["metadata"])} for r in recs])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    rows_pq, dead_pq = _run(spec, "in.parquet", sink.getvalue().to_pybytes())

    key = ("contribution_id", "contributor", "text", "submitted_at", "topic", "metadata")
    for rows in (gz, rows_csv, rows_pq):
        assert [tuple(r[k] for k in key) for r in rows] == [tuple(r[k] for k in key)
                                                            for r in base]
    assert dead_csv == dead_pq == []
    assert [r["source_line"] for r in rows_csv] == [2, 3, 4, 5]  # physical line (header = 1)


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        (b'{"contributor": "x", "text": ', "invalid_json", None),
        (b'{"contributor": "%s", "text": "caf\xe9 au lait is great"}' % ADDRS[0].encode(),
         "invalid_utf8", None),
        (json.dumps({"text": "no contributor in this record"}).encode(), "missing_field",
         "contributor"),
        (json.dumps({"contributor": ADDRS[0]}).encode(), "missing_field", "text"),
        (json.dumps({"contributor": ADDRS[0], "text": 42}).encode(), "bad_type", "text"),
        (json.dumps(["a", "list"]).encode(), "bad_type", None),
        (json.dumps(record(0, rating="five")).encode(), "bad_type", "rating"),
        (json.dumps(record(0, submitted_at="yesterday")).encode(), "bad_type", "submitted_at"),
        (json.dumps(record(0, contributor="0x1234")).encode(), "bad_address", "contributor"),
        (json.dumps(record(0, contributor=ADDRS[0][:-1] + ("a" if ADDRS[0][-1] != "a" else "b")
                           )).encode(), "bad_address", "contributor"),
        (json.dumps(record(0, text="x" * 3000)).encode(), "too_large", None),
    ],
)
def test_each_deadletter_reason(spec, line, reason, field):
    data = _jsonl([record(1), line, record(2)])
    rows, dead = _run(spec, "bad.jsonl", data)
    assert len(rows) == 2
    assert len(dead) == 1
    d = dead[0]
    assert (d["reason"], d["field"], d["source_line"], d["source_file"]) == (
        reason, field, 2, "bad.jsonl")
    assert d["message"].startswith("bad.jsonl:2: ")
    assert d["raw_bytes"] > 0


def test_lowercase_address_is_checksummed_and_mixed_bad_checksum_rejected(spec):
    rows, dead = _run(spec, "a.jsonl", _jsonl([record(0, contributor=ADDRS[0].lower())]))
    assert rows[0]["contributor"] == ADDRS[0] and dead == []


def test_csv_invalid_utf8_and_ragged_rows(spec):
    data = (b"contributor,text,topic\n"
            + f"{ADDRS[0]},A perfectly fine tip about bread baking,baking\n".encode()
            + ADDRS[1].encode() + b",caf\xe9 is nice and long enough,baking\n"
            + f"{ADDRS[2]},too,many,fields,here\n".encode())
    rows, dead = _run(spec, "c.csv", data)
    assert len(rows) == 1
    assert [(d["reason"], d["field"], d["source_line"]) for d in dead] == [
        ("invalid_utf8", "text", 3), ("invalid_csv", None, 4)]


def test_chunks_respect_batch_rows():
    spec = parse_spec({**tomllib.loads(TINY_SPEC), "pipeline": {"batch_rows": 3}})
    chunks = list(iter_file_chunks(spec, "f.jsonl", io.BytesIO(_jsonl([record(i)
                                                                        for i in range(7)])),
                                   default_time_us=0))
    assert [c[1].num_rows for c in chunks] == [3, 3, 1]
    assert [c[0] for c in chunks] == ["f.jsonl#000000", "f.jsonl#000001", "f.jsonl#000002"]


def test_unknown_format_is_a_clear_error():
    with pytest.raises(IntakeError, match=r"data.xml: unknown input format"):
        detect_format("data.xml")
    assert detect_format("x.JSONL.GZ") == "jsonl"
    assert detect_format("x.csv.bz2") == "csv"


def test_json_array_gives_the_jsonl_records(spec):
    """The same records as a JSON array (pretty or on one line) and as JSON Lines: every
    column equal but the line (element i of a pretty array is on line i + 2)."""
    recs = [record(i) for i in range(5)]
    base, _ = _run(spec, "in.jsonl", _jsonl(recs))
    pretty = b"[\n" + b",\n".join(json.dumps(r).encode() for r in recs) + b"\n]\n"
    one_line = json.dumps(recs).encode()
    for data, lines in ((pretty, [2, 3, 4, 5, 6]), (one_line, [1] * 5)):
        rows, dead = _run(spec, "in.json", data)
        assert dead == []
        assert [r.pop("source_line") for r in rows] == lines
        assert [{k: v for k, v in r.items() if k != "source_file"} for r in rows] == [
            {k: v for k, v in r.items() if k not in ("source_file", "source_line")}
            for r in base]


def test_json_array_oversized_element_is_counted_never_held(spec):
    """A 40 MB element is skipped as ``too_large`` with its size while the reader holds about
    a block (1 MiB), not the element; the records around it stand."""
    import tracemalloc

    big = b'{"contributor": "%s", "text": "%s"}' % (ADDRS[0].encode(), b"x" * (40 << 20))
    data = b"[" + json.dumps(record(0)).encode() + b",\n" + big + b",\n" + \
        json.dumps(record(1)).encode() + b"]"
    tracemalloc.start()
    try:
        rows, dead = _run(spec, "big.json", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r["text"] for r in rows] == [record(0)["text"], record(1)["text"]]
    assert [(d["source_line"], d["reason"]) for d in dead] == [(2, "too_large")]
    assert f"record is {len(big)} bytes" in dead[0]["message"]
    assert peak < 8 << 20, peak
