"""A catalogue of hostile input files: each ends as records or dead-letters with exact reason
codes, file, line and field; whole-file problems are one dead-letter entry; no run fails.

Every case declares how many records its input holds (non-blank lines, CSV data rows, Parquet
rows; 1 for a file refused whole) and the dead-letter rows it must give. The parser is checked
per case (fast, Beam-free); the pipeline runs every case at once (one run per spec) and checks
``accepted + rejected + quarantine + dead-letter == records`` and that a re-run commits nothing.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import os
import tomllib
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from datanet.pipelines import intake
from datanet.pipelines.intake import iter_path_chunks
from datanet.schemas.spec import parse_spec
from tests.conftest import ADDRS, TEXTS, TINY_SPEC

BIG_SPEC = TINY_SPEC.replace("max_record_bytes = 2048", "max_record_bytes = 1048576").replace(
    'id = "tiny"', 'id = "tinybig"')
LIMIT = 8 << 20  # decompression limit used by these tests

_counter = iter(range(10_000))


def rec(**over) -> dict:
    """A valid record with a text no other case uses."""
    i = next(_counter)
    r = {"contributor": ADDRS[i % len(ADDRS)],
         "text": f"{TEXTS[i % len(TEXTS)]} Case tip number {i}.",
         "submitted_at": "2026-10-01T12:00:00Z", "topic": "baking", "rating": 4,
         "metadata": {"lang": "en"}}
    r.update(over)
    return r


def line(obj: dict | bytes) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def jsonl(*objs: dict | bytes, end: bytes = b"\n") -> bytes:
    return b"".join(line(o) + end for o in objs)


def jarray(*objs: bytes | dict) -> bytes:
    """A pretty JSON array file: ``[`` on line 1, element i on line i + 2, ``]`` last."""
    return b"[\n" + b",\n".join(line(o) for o in objs) + b"\n]\n"


def around(bad: bytes | dict) -> bytes:
    """good, bad, good: the bad one is line 2."""
    return jsonl(rec(), bad, rec())


def csv_bytes(rows: list[dict], *, end: str = "\n",
              cols=("contributor", "text", "submitted_at", "topic", "rating")) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cols), lineterminator=end, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


def pq_bytes(table: pa.Table, **kw) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kw)
    return sink.getvalue().to_pybytes()


def pq_records(n: int, **over) -> pa.Table:
    rows = [rec(**over) for _ in range(n)]
    for r in rows:
        r["metadata"] = json.dumps(r["metadata"])
    return pa.Table.from_pylist(rows)


@dataclass
class Case:
    """``data`` is the file's bytes or a function making the file at the given path."""

    name: str
    file: str
    data: bytes | Callable[[Path], None]
    records: int
    dead: list[tuple[str, str | None, int]] = field(default_factory=list)
    big: bool = False
    slow: bool = False
    pipeline: bool = True


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _dir(p: Path) -> None:
    p.mkdir()
    (p / "inner.jsonl").write_bytes(jsonl(rec()))


def _dev_zero(p: Path) -> None:
    p.symlink_to("/dev/zero")


def _loop(p: Path) -> None:
    p.symlink_to(p)


def _bomb(p: Path) -> None:
    z = zlib_gzip_of_zeros(2 * LIMIT)
    p.write_bytes(z)


def zlib_gzip_of_zeros(n: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        block = b"\0" * (1 << 20)
        for _ in range(n // len(block)):
            gz.write(block)
    return buf.getvalue()


def _invalid_utf8_string_column() -> bytes:
    good = pq_records(2)
    text = pa.array(["A fine enough tip about rising bread dough slowly overnight.",
                     "Rest the steak ten minutes after grilling so juices settle back."])
    raw = pa.Array.from_buffers(pa.string(), 2, text.buffers())
    data = bytearray(raw.buffers()[2].to_pybytes())
    data[0] = 0xFF
    bad = pa.Array.from_buffers(pa.string(), 2, [None, raw.buffers()[1], pa.py_buffer(data)])
    return pq_bytes(good.set_column(good.schema.get_field_index("text"), "text", bad))


def _cases() -> list[Case]:
    g = rec
    c: list[Case] = []
    add = c.append
    # --- JSON structure
    add(Case("nesting_100", "n100.jsonl",
             around(b'{"contributor": "%s", "text": "x", "metadata": %s}'
                    % (ADDRS[0].encode(), b"[" * 100 + b"]" * 100)), 3,
             [("too_deep", None, 2)]))
    add(Case("nesting_1100", "n1100.jsonl", around(b"[" * 1100 + b"]" * 1100), 3,
             [("too_deep", None, 2)], big=True))
    add(Case("nesting_50000", "n50000.jsonl", around(b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000),
             3, [("too_deep", None, 2)], big=True))
    add(Case("brackets_inside_a_string", "brk.jsonl",
             around(g(text="[{" * 150 + " a tip about brackets in a recipe")), 3))
    add(Case("metadata_60_levels", "m60.jsonl",
             around(line(g())[:-1] + b', "deep": ' + b"[" * 60 + b"]" * 60 + b"}"), 3))
    add(Case("truncated_json", "trunc.jsonl", around(b'{"contributor": "x", "text": '), 3,
             [("invalid_json", None, 2)]))
    add(Case("trailing_garbage_after_object", "tg.jsonl", around(line(g()) + b" xyz"), 3,
             [("invalid_json", None, 2)]))
    add(Case("two_objects_on_a_line", "two.jsonl", around(line(g()) + line(g())), 3,
             [("invalid_json", None, 2)]))
    add(Case("array_record", "arr.jsonl", around(b'["a", "list"]'), 3, [("bad_type", None, 2)]))
    add(Case("null_record", "null.jsonl", around(b"null"), 3, [("bad_type", None, 2)]))
    add(Case("number_record", "num.jsonl", around(b"12345"), 3, [("bad_type", None, 2)]))
    add(Case("empty_object", "empty_obj.jsonl", around(b"{}"), 3,
             [("missing_field", "contributor", 2)]))
    add(Case("duplicate_keys_last_wins", "dupkey.jsonl",
             around(b'{"text": 5, ' + line(g())[1:]), 3))
    add(Case("raw_nul_byte", "nul.jsonl", around(line(g())[:-2] + b'\x00"}'), 3,
             [("invalid_json", None, 2)]))
    add(Case("escaped_nul_in_text", "enul.jsonl",
             around(g(text="A tip with a NUL \u0000 character inside its text body.")), 3))
    add(Case("bidi_and_control_chars", "bidi.jsonl",
             around(g(text="Bake \u202egnol\u202c at 180C \u0007\u001b[31m until golden brown.")),
             3))
    add(Case("invalid_utf8_byte", "badutf8.jsonl", around(line(g())[:-3] + b'\xe9"}'), 3,
             [("invalid_utf8", None, 2)]))
    add(Case("utf8_encoded_surrogate", "encsur.jsonl", around(line(g())[:-3] + b'\xed\xa0\x80"}'),
             3, [("invalid_utf8", None, 2)]))
    # --- lone surrogates (escaped)
    for where in ("text", "topic", "contributor", "signature"):
        bad = json.dumps(g()).replace(f'"{where}": "', f'"{where}": "\\ud800', 1) \
            if where != "signature" else json.dumps(g(signature="0x\ud800"))
        add(Case(f"lone_surrogate_in_{where}", f"sur_{where}.jsonl", around(bad.encode()), 3,
                 [("invalid_utf8", where, 2)]))
    add(Case("lone_surrogate_in_metadata_value", "sur_mv.jsonl",
             around(json.dumps(g(metadata={"k": "\udfff"})).encode()), 3,
             [("invalid_utf8", "metadata", 2)]))
    add(Case("lone_surrogate_in_metadata_key", "sur_mk.jsonl",
             around(json.dumps(g(metadata={"\ud800": 1})).encode()), 3,
             [("invalid_utf8", "metadata", 2)]))
    add(Case("surrogate_pair_escape_is_fine", "pair.jsonl",
             around(json.dumps(g(text="An emoji \U0001F600 in a perfectly fine tip text."))
                    .encode()), 3))
    # --- timestamps
    for name, value, reason in (
            ("submitted_at_huge_int", "1" + "0" * 30, "bad_timestamp"),
            ("submitted_at_2000_digit_int", "9" * 2000, "bad_timestamp"),
            ("submitted_at_nan", "NaN", "bad_timestamp"),
            ("submitted_at_infinity", "Infinity", "bad_timestamp"),
            ("submitted_at_minus_infinity", "-Infinity", "bad_timestamp"),
            ("submitted_at_1e300", "1e300", "bad_timestamp"),
            ("submitted_at_year_10000", '"9999-12-31T23:59:59-01:00"', "bad_timestamp"),
            ("submitted_at_year_0", '"0001-01-01T00:00:00+01:00"', "bad_timestamp"),
            ("submitted_at_not_iso", '"yesterday"', "bad_type"),
            ("submitted_at_bool", "true", "bad_type"),
            ("submitted_at_list", "[1]", "bad_type")):
        body = json.dumps(g()).replace('"2026-10-01T12:00:00Z"', value)
        add(Case(name, f"{name}.jsonl", around(body.encode()), 3,
                 [(reason, "submitted_at", 2)], big=len(body) > 2000))
    # --- wrong type in every field
    for name, over, fld, reason in (
            ("contributor_int", {"contributor": 123}, "contributor", "bad_type"),
            ("contributor_null", {"contributor": None}, "contributor", "missing_field"),
            ("contributor_short_hex", {"contributor": "0x1234"}, "contributor", "bad_address"),
            ("text_list", {"text": ["a"]}, "text", "bad_type"),
            ("text_object", {"text": {"a": 1}}, "text", "bad_type"),
            ("text_missing", {"text": None}, "text", "missing_field"),
            ("metadata_list", {"metadata": [1]}, "metadata", "bad_type"),
            ("metadata_not_json", {"metadata": "not json"}, "metadata", "bad_type"),
            ("metadata_json_list", {"metadata": "[1]"}, "metadata", "bad_type"),
            ("metadata_nan", {"metadata": {"x": float("nan")}}, "metadata", "bad_type"),
            ("signature_int", {"signature": 5}, "signature", "bad_type"),
            ("topic_int", {"topic": 5}, "topic", "bad_type"),
            ("rating_string", {"rating": "5"}, "rating", "bad_type"),
            ("rating_float", {"rating": 4.5}, "rating", "bad_type"),
            ("rating_bool", {"rating": True}, "rating", "bad_type"),
            ("rating_2_pow_70", {"rating": 2**70}, "rating", "bad_type"),
            ("rating_1000_digits", {"rating": 10**999}, "rating", "bad_type")):
        add(Case(name, f"{name}.jsonl", around(g(**over)), 3, [(reason, fld, 2)]))
    # --- sizes, blank lines, line endings, BOMs, encodings
    add(Case("line_over_max_record_bytes", "long.jsonl", around(g(text="x" * 5000)), 3,
             [("too_large", None, 2)]))
    add(Case("line_50_MB", "huge.jsonl", around(b'{"text": "' + b"y" * 50_000_000 + b'"}'), 3,
             [("too_large", None, 2)], slow=True))
    add(Case("blank_and_whitespace_lines", "blank.jsonl",
             b"\n  \n" + jsonl(g()) + b"\t\n\n" + jsonl(g()) + b"\n", 2))
    add(Case("empty_file", "empty.jsonl", b"", 0))
    add(Case("only_newlines", "nl.jsonl", b"\n" * 1000, 0))
    add(Case("no_final_newline", "nofinal.jsonl", jsonl(g()) + line(g()), 2))
    add(Case("crlf_endings", "crlf.jsonl", jsonl(g(), g(), g(), end=b"\r\n"), 3))
    add(Case("cr_only_endings", "cr.jsonl", jsonl(*(g() for _ in range(10)), end=b"\r"), 10))
    add(Case("mixed_endings", "mixed.jsonl",
             line(g()) + b"\r" + line(g()) + b"\n" + line(g()) + b"\r\n", 3))
    add(Case("utf8_bom_before_first_line", "bom.jsonl", codecs.BOM_UTF8 + jsonl(g(), g()), 2))
    add(Case("bom_in_the_middle", "bom2.jsonl", jsonl(g()) + codecs.BOM_UTF8 + jsonl(g()), 2,
             [("invalid_json", None, 2)]))
    for codec in ("utf-16", "utf-16-be", "utf-32", "utf-32-le"):
        text = jsonl(g(text="Fold egg whites gently — don’t stir — for an airy soufflé."),
                     g(), g()).decode()
        data = text.encode(codec)
        if not codec.endswith(("16", "32")):
            bom = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE}[codec]
            data = bom + data
        add(Case(f"{codec}_with_bom", f"{codec}.jsonl", data, 3))
    add(Case("utf16_without_bom", "u16nobom.jsonl", jsonl(g(), g()).decode().encode("utf-16-le"),
             1, [("unsupported_encoding", None, 0)]))
    add(Case("utf16_bom_odd_length", "u16odd.jsonl", jsonl(g()).decode().encode("utf-16") + b"x",
             1, [("unsupported_encoding", None, 0)]))
    # --- compression
    add(Case("gzip_jsonl", "ok.jsonl.gz", gzip.compress(jsonl(g(), g(), g()), mtime=0), 3))
    add(Case("gzip_multi_member", "multi.jsonl.gz",
             gzip.compress(jsonl(g()), mtime=0) + gzip.compress(jsonl(g()), mtime=0), 2))
    add(Case("not_gzip", "plain.jsonl.gz", jsonl(g(), g()), 1,
             [("invalid_compression", None, 0)]))
    add(Case("truncated_gzip", "trunc.jsonl.gz",
             gzip.compress(jsonl(*(g() for _ in range(30))), mtime=0)[:300], 1,
             [("invalid_compression", None, 0)]))
    add(Case("gzip_trailing_garbage", "tail.jsonl.gz",
             gzip.compress(jsonl(g(), g()), mtime=0) + b"garbage!", 1,
             [("invalid_compression", None, 0)]))
    add(Case("gzip_bomb_over_limit", "bomb.jsonl.gz", _bomb, 1,
             [("decompression_limit", None, 0)]))
    add(Case("gzip_csv", "ok.csv.gz", gzip.compress(csv_bytes([g(), g()]), mtime=0), 2))
    add(Case("gzip_parquet", "ok.parquet.gz", gzip.compress(pq_bytes(pq_records(3)), mtime=0),
             3))
    add(Case("bz2_jsonl", "ok.jsonl.bz2", bz2.compress(jsonl(g(), g())), 2))
    add(Case("xz_jsonl", "ok.jsonl.xz", lzma.compress(jsonl(g(), g())), 2))
    add(Case("empty_gzip", "empty.jsonl.gz", gzip.compress(b"", mtime=0), 0))
    zst = zstandard.ZstdCompressor().compress
    add(Case("zstd_two_frames", "ok.jsonl.zst", zst(jsonl(g())) + zst(jsonl(g())), 2))
    add(Case("zstd_truncated", "trunc.jsonl.zst", zst(jsonl(g(), g()))[:-6], 1,
             [("invalid_compression", None, 0)]))
    add(Case("deflate_jsonl", "ok.jsonl.deflate", zlib.compress(jsonl(g(), g())), 2))
    add(Case("deflate_trailing_garbage", "tail.jsonl.deflate", zlib.compress(jsonl(g())) + b"x",
             1, [("invalid_compression", None, 0)]))
    add(Case("bz2_truncated", "trunc.jsonl.bz2", bz2.compress(jsonl(g(), g()))[:-10], 1,
             [("invalid_compression", None, 0)]))
    # --- CSV
    add(Case("csv_quoting_commas_quotes_newlines", "quoting.csv",
             csv_bytes([g(text='He said "rest it", then, later,\nslice thinly against the grain.'),
                        g()]), 2))
    rows21 = [g() for _ in range(21)]
    body = csv_bytes(rows21).decode().split("\n")
    body[6] = body[6].replace(',', ',"', 1)  # opens a quote on data row 6 that never closes
    add(Case("csv_unbalanced_quote_mid_file", "unbal.csv", "\n".join(body).encode(), 21,
             [("invalid_csv", None, 7)]))
    add(Case("csv_unterminated_quote_last_row", "unterm.csv",
             csv_bytes([g()]) + f'{ADDRS[0]},"never closed,x,baking,3\n'.encode(), 2,
             [("invalid_csv", None, 3)]))
    add(Case("csv_field_over_128KiB", "bigfield.csv",
             csv_bytes([g() for _ in range(10)] + [g(text="z " * 70_000)]
                       + [g() for _ in range(10)]), 21, big=True))
    add(Case("csv_row_over_max_record_bytes", "bigrow.csv",
             csv_bytes([g(), g(text="q" * 3000), g()]), 3, [("too_large", None, 3)]))
    add(Case("csv_ragged_fewer_fields", "fewer.csv",
             csv_bytes([g()]) + f"{ADDRS[1]},only two fields here and nothing more\n".encode()
             + csv_bytes([g()])[csv_bytes([]).__len__():], 3, [("invalid_csv", None, 3)]))
    add(Case("csv_ragged_more_fields", "more.csv",
             csv_bytes([g()]) + f"{ADDRS[1]},a,b,c,d,e,f\n".encode(), 2,
             [("invalid_csv", None, 3)]))
    add(Case("csv_invalid_utf8_in_field", "badutf8.csv",
             csv_bytes([g()]) + ADDRS[2].encode() + b",caf\xe9 au lait is a fine drink today,"
             b"2026-10-01T12:00:00Z,baking,4\n", 2, [("invalid_utf8", "text", 3)]))
    add(Case("csv_bad_quote_inside_field", "badq.csv",
             csv_bytes([g()]) + f'{ADDRS[3]},"quoted"then text,x,baking,4\n'.encode(), 2,
             [("invalid_csv", None, 3)]))
    add(Case("csv_bom_before_header", "bom.csv", codecs.BOM_UTF8 + csv_bytes([g(), g()]), 2))
    add(Case("csv_cr_only", "cr.csv", csv_bytes([g(), g(), g()], end="\r"), 3))
    add(Case("csv_crlf", "crlf.csv", csv_bytes([g(), g(), g()], end="\r\n"), 3))
    add(Case("csv_utf16_with_bom", "u16.csv", csv_bytes([g(), g()]).decode().encode("utf-16"),
             2))
    add(Case("csv_header_only", "header.csv", csv_bytes([]), 0))
    add(Case("csv_empty", "empty.csv", b"", 0))
    add(Case("csv_blank_lines", "blank.csv",
             csv_bytes([g()]) + b"\n\n" + csv_bytes([g()])[len(csv_bytes([])):], 2))
    add(Case("csv_duplicate_header", "duphdr.csv",
             b"contributor,text,text\n" + ADDRS[0].encode() + b",a,b\n", 1,
             [("invalid_csv", None, 0)]))
    add(Case("csv_no_contributor_column", "nocontrib.csv",
             csv_bytes([g(), g()], cols=("text", "topic")), 2,
             [("missing_field", "contributor", 2), ("missing_field", "contributor", 3)]))
    add(Case("csv_huge_int_in_extra_column", "hugeint.csv",
             csv_bytes([g(rating=10**40), g()]), 2, [("bad_type", "rating", 2)]))
    add(Case("csv_metadata_nested_900_levels", "deepmeta.csv",
             csv_bytes([g(metadata="[" * 900 + "]" * 900), g(metadata="{}")],
                       cols=("contributor", "text", "metadata")), 2,
             [("too_deep", "metadata", 2)]))
    add(Case("csv_nul_in_field", "nul.csv",
             csv_bytes([g(text="A tip with a NUL \x00 byte inside its text for the csv.")]), 1))
    # --- Parquet
    add(Case("parquet_ok", "ok.parquet", pq_bytes(pq_records(3)), 3))
    add(Case("parquet_zero_rows", "zero.parquet", pq_bytes(pq_records(1).slice(0, 0)), 0))
    add(Case("parquet_wrong_schema", "wrong.parquet",
             pq_bytes(pa.table({"a": [1, 2], "b": ["x", "y"]})), 2,
             [("missing_field", "contributor", 1), ("missing_field", "contributor", 2)]))
    t = pq_records(2)
    add(Case("parquet_nested_text", "nested.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("text"), "text",
                                   pa.array([["a"], ["b"]]))), 2,
             [("bad_type", "text", 1), ("bad_type", "text", 2)]))
    t = pq_records(2)
    add(Case("parquet_struct_metadata", "structmeta.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("metadata"), "metadata",
                                   pa.array([{"lang": "en"}, {"lang": "fr"}]))), 2))
    t = pq_records(3)
    add(Case("parquet_timestamp_out_of_range", "ts.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("submitted_at"), "submitted_at",
                                   pa.array([1_700_000_000, 10**13, -10**12],
                                            pa.timestamp("s")))), 3,
             [("bad_timestamp", "submitted_at", 2), ("bad_timestamp", "submitted_at", 3)]))
    t = pq_records(2)
    add(Case("parquet_timestamp_ns_tz", "tsns.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("submitted_at"), "submitted_at",
                                   pa.array([1_700_000_000_000_000_000] * 2,
                                            pa.timestamp("ns", tz="Europe/Paris")))), 2))
    t = pq_records(2)
    add(Case("parquet_uint64_rating", "u64.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("rating"), "rating",
                                   pa.array([2**64 - 1, 3], pa.uint64()))), 2,
             [("bad_type", "rating", 1)]))
    t = pq_records(2)
    add(Case("parquet_binary_text_invalid_utf8", "bintext.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("text"), "text",
                                   pa.array([b"\xff\xfe not utf8 at all, sorry",
                                             b"A valid tip text about resting pizza dough."]))),
             2,
             [("invalid_utf8", "text", 1)]))
    add(Case("parquet_string_column_invalid_utf8", "badstr.parquet",
             _invalid_utf8_string_column(), 2, [("invalid_utf8", "text", 1)]))
    t = pq_records(2)
    add(Case("parquet_decimal_in_metadata_struct", "dec.parquet",
             pq_bytes(t.set_column(t.schema.get_field_index("metadata"), "metadata",
                                   pa.array([{"p": 1}, {"p": 2}],
                                            pa.struct([("p", pa.decimal128(5, 2))])))), 2,
             [("bad_type", "metadata", 1), ("bad_type", "metadata", 2)]))
    add(Case("parquet_corrupt_footer", "footer.parquet", pq_bytes(pq_records(3))[:-12], 1,
             [("invalid_parquet", None, 0)]))
    add(Case("parquet_not_parquet", "text.parquet", jsonl(g()), 1,
             [("invalid_parquet", None, 0)]))
    add(Case("parquet_dictionary_text", "dict.parquet",
             pq_bytes(pq_records(3), use_dictionary=True), 3))
    # --- .json files holding a JSON array (a .json file not starting with [ is JSON Lines)
    add(Case("json_array", "arr3.json", jarray(g(), g(), g()), 3))
    add(Case("json_array_one_line", "arr1.json", b"[" + b", ".join(line(g()) for _ in range(3))
             + b"]", 3))
    add(Case("json_array_empty", "empty_arr.json", b" [ ]\n", 0))
    add(Case("json_lines_in_dot_json", "lines.json", jsonl(g(), g()), 2))
    add(Case("json_array_scalar_elements", "scal.json", jarray(g(), b"42", b'"text"', b"null"),
             4, [("bad_type", None, 3), ("bad_type", None, 4), ("bad_type", None, 5)]))
    add(Case("json_array_bad_element_goes_on", "badel.json",
             jarray(g(), b'{"contributor": tru}', g()), 3, [("invalid_json", None, 3)]))
    add(Case("json_array_deep_element", "deepel.json",
             jarray(g(), b"[" * 100 + b"]" * 100, g()), 3, [("too_deep", None, 3)]))
    add(Case("json_array_too_large_element", "bigel.json",
             jarray(g(), g(text="x" * 5000), g()), 3, [("too_large", None, 3)]))
    add(Case("json_array_brackets_in_strings", "strbr.json",
             jarray(g(text='a tip with ], [, {, } and \\" quotes inside the text'), g()), 2))
    add(Case("json_array_truncated", "trunc_arr.json",
             b"[\n" + line(g()) + b',\n{"contributor": "x", "te', 2,
             [("invalid_json", None, 3)]))
    add(Case("json_array_empty_element", "holes.json",
             b"[\n" + line(g()) + b",\n,\n" + line(g()) + b"\n]", 2,
             [("invalid_json", None, 3)]))
    add(Case("json_array_trailing_comma", "tcomma.json",
             b"[\n" + line(g()) + b",\n]", 2, [("invalid_json", None, 3)]))
    add(Case("json_array_bytes_after_close", "after.json", jarray(g(), g()) + b"xyz", 3,
             [("invalid_json", None, 5)]))
    add(Case("json_array_bom_utf16", "u16arr.json",
             codecs.BOM_UTF16_LE + jarray(g(), g()).decode().encode("utf-16-le"), 2))
    add(Case("json_array_gzip", "garr.json.gz", gzip.compress(jarray(g(), g(), g())), 3))
    # --- odd files
    add(Case("directory_named_jsonl", "adir.jsonl", _dir, 1, [("not_regular_file", None, 0)]))
    add(Case("fifo_named_jsonl", "fifo.jsonl", _fifo, 1, [("not_regular_file", None, 0)]))
    add(Case("symlink_to_dev_zero", "zero.jsonl", _dev_zero, 1,
             [("not_regular_file", None, 0)]))
    add(Case("symlink_loop", "loop.jsonl", _loop, 1, [("unreadable_file", None, 0)]))
    add(Case("symlink_to_nothing", "gone.jsonl", lambda p: p.symlink_to(p.parent / "nope"), 1,
             [("unreadable_file", None, 0)]))
    add(Case("glob_characters_in_name", "batch[1].jsonl", jsonl(g(), g()), 2))
    add(Case("undecodable_file_name", os.fsdecode(b"caf\xe9.jsonl"), jsonl(g()), 1))
    return c


CASES = _cases()


def _make(case: Case, directory: Path) -> Path:
    path = directory / case.file
    if callable(case.data):
        case.data(path)
    else:
        path.write_bytes(case.data)
    return path


def _parse(spec, path: Path) -> tuple[int, list[tuple[str, str | None, int]]]:
    n, dead = 0, []
    for _key, batch, dl in iter_path_chunks(spec, str(path), lambda p: open(p, "rb"),
                                            default_time_us=0, max_decompressed=LIMIT):
        if batch is not None:
            n += batch.num_rows
        if dl is not None:
            dead += [(d["reason"], d["field"], d["source_line"]) for d in dl.to_pylist()]
    return n, dead


@pytest.fixture(scope="module")
def specs():
    return {False: parse_spec(tomllib.loads(TINY_SPEC)), True: parse_spec(tomllib.loads(BIG_SPEC))}


def test_catalogue_is_big_and_named_uniquely():
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert len({c.file for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] * c.slow)
                                  for c in CASES])
def test_hostile_file_parses_to_exact_outcome(case, specs, tmp_path):
    path = _make(case, tmp_path)
    n, dead = _parse(specs[case.big], path)
    assert sorted(dead, key=str) == sorted(case.dead, key=str)
    assert n + len(dead) == case.records


def test_whole_file_entry_names_the_file_and_reason(specs, tmp_path):
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    out = list(iter_path_chunks(specs[False], str(path), lambda p: open(p, "rb"),
                                default_time_us=0))
    (row,), = [d.to_pylist() for _, _, d in out]
    assert row["source_file"] == str(path) and row["source_line"] == 0
    assert row["reason"] == "invalid_compression"
    assert row["message"].startswith(f"{path}:0: not a valid gz file: BadGzipFile")


def test_unbalanced_quote_costs_one_line(specs, tmp_path):
    case = next(c for c in CASES if c.name == "csv_unbalanced_quote_mid_file")
    path = _make(case, tmp_path)
    out = [b for _, b, _ in iter_path_chunks(specs[False], str(path), lambda p: open(p, "rb"),
                                             default_time_us=0) if b is not None]
    lines = [x for b in out for x in b.column("source_line").to_pylist()]
    assert lines == [i for i in range(2, 23) if i != 7]


def _pipeline_cases(big: bool, slow: bool) -> list[Case]:
    return [c for c in CASES if c.pipeline and c.big == big and (slow or not c.slow)]


#: the tiny spec with every validator on (the curation ones too): hostile text reaches them all
ALL_VALIDATORS_SPEC = TINY_SPEC.split("\n[validators.")[0]


def _run_catalogue(tmp_path, monkeypatch, big: bool, slow: bool, spec_text: str | None = None):
    from datanet.pipelines.run import run_datanet
    from datanet.store.layout import init_datanet
    from datanet.store.query import connect

    monkeypatch.setattr(intake, "MAX_DECOMPRESSED_BYTES", LIMIT)
    cases = _pipeline_cases(big, slow)
    data = tmp_path / "in"
    data.mkdir()
    paths = [_make(c, data) for c in cases]
    store = init_datanet(tmp_path / "dn", spec_text or (BIG_SPEC if big else TINY_SPEC))
    inputs = [str(data / "*")] + [str(p) for p in paths if p.is_dir()]
    result = run_datanet(store, inputs, runner="DirectRunner")
    expected = sum(c.records for c in cases)
    c = result.counts
    assert c["accepted"] + c["rejected"] + c["quarantine"] + c["deadletter"] == expected
    assert c["input"] == expected
    dead = connect(store).execute(
        "SELECT source_file, source_line, reason, field FROM deadletter").fetchall()
    want = Counter((os.fsdecode(intake.display_path(str(data / cs.file))), ln, r, f)
                   for cs in cases for r, f, ln in cs.dead)
    assert Counter(dead) == want
    again = run_datanet(store, inputs, runner="DirectRunner")
    assert not again.committed and "already committed" in again.message
    return result, len(cases), expected


def test_catalogue_in_one_run_accounts_for_every_record(tmp_path, monkeypatch):
    result, kinds, expected = _run_catalogue(tmp_path, monkeypatch, big=False, slow=False)
    assert result.committed and kinds >= 60
    print(f"\ncatalogue: {kinds} kinds, 1 run survived, {expected} records accounted")


@pytest.mark.slow
@pytest.mark.parametrize(("big", "every_validator"), [(True, False), (False, False), (False, True)],
                         ids=["big_spec", "tiny_spec_with_slow_cases", "every_validator_on"])
def test_catalogue_slow_runs(tmp_path, monkeypatch, big, every_validator):
    result, kinds, _ = _run_catalogue(tmp_path, monkeypatch, big=big, slow=True,
                                      spec_text=ALL_VALIDATORS_SPEC if every_validator else None)
    assert result.committed and kinds == len(_pipeline_cases(big, True))


def test_literal_path_with_glob_characters_and_operator_errors(tmp_path):
    from datanet.errors import IntakeError
    from datanet.pipelines.run import match_inputs

    (tmp_path / "batch[1].jsonl").write_bytes(jsonl(rec()))
    (tmp_path / "batch1.jsonl").write_bytes(jsonl(rec()))
    assert match_inputs([str(tmp_path / "batch[1].jsonl")]) == [str(tmp_path / "batch[1].jsonl")]
    assert match_inputs([str(tmp_path / "batch[12].jsonl")]) == [str(tmp_path / "batch1.jsonl")]
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    assert match_inputs([str(tmp_path / "loop.jsonl")]) == [str(tmp_path / "loop.jsonl")]
    assert str(tmp_path / "loop.jsonl") in match_inputs([str(tmp_path / "*.jsonl")])
    with pytest.raises(IntakeError, match=r"nope.jsonl: no input file matches"):
        match_inputs([str(tmp_path / "nope.jsonl")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(IntakeError, match=r"notes.txt: unknown input format"):
        match_inputs([str(tmp_path / "*")])


def test_cli_run_exits_zero_on_hostile_files(tmp_path):
    from typer.testing import CliRunner

    from datanet.cli import app
    from datanet.store.layout import init_datanet

    init_datanet(tmp_path / "dn", TINY_SPEC)
    data = tmp_path / "in"
    data.mkdir()
    os.mkfifo(data / "fifo.jsonl")
    (data / "z.jsonl").symlink_to("/dev/zero")
    (data / "x.csv.gz").write_bytes(b"not gzip")
    (data / "deep.jsonl").write_bytes(b"[" * 50_000 + b"\n" + jsonl(rec()))
    (data / "loop.jsonl").symlink_to(data / "loop.jsonl")
    r = CliRunner().invoke(app, ["run", str(tmp_path / "dn"), str(data / "*"), "--no-anchor"])
    assert r.exit_code == 0, r.output
    assert "6 records → 1 accepted, 0 rejected, 0 needs review, 5 dead-letter" in r.output


@pytest.mark.slow
def test_300_small_files_one_run(tmp_path):
    from datanet.pipelines.run import run_datanet
    from datanet.store.layout import init_datanet

    store = init_datanet(tmp_path / "dn", TINY_SPEC)
    data = tmp_path / "in"
    data.mkdir()
    for i in range(300):
        (data / f"f{i:03d}.jsonl").write_bytes(jsonl(rec()) if i % 3 else b"{bad\n")
    result = run_datanet(store, [str(data / "*.jsonl")], runner="DirectRunner")
    assert result.counts["input"] == 300 and result.counts["deadletter"] == 100


@pytest.mark.slow
def test_gzip_decompressing_to_2_GB_is_refused_in_bounded_memory(specs, tmp_path):
    import resource

    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as gz:
        block = b"\n" * (1 << 20)
        for _ in range(2048):
            gz.write(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = list(iter_path_chunks(specs[False], str(path), lambda p: open(p, "rb"),
                                default_time_us=0))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    (row,) = [r for _, _, d in out for r in d.to_pylist()]
    assert row["reason"] == "decompression_limit"
    assert grown_mib < 64


def test_chunk_that_arrow_refuses_falls_back_to_rows(specs):
    """A value that slips past validation fails its row only (``bad_value``), not the chunk."""
    parser = intake.RecordParser(specs[False], "f.jsonl", 0)
    for i in range(3):
        parser.add(rec(), i + 1, 100)
    parser.cols["text"][1] = "\ud800"
    key, batch = parser.flush()
    assert key == "f.jsonl#000000" and batch.column("source_line").to_pylist() == [1, 3]
    (dead,) = parser.dead_batch().to_pylist()
    assert (dead["reason"], dead["source_line"], dead["raw_bytes"]) == ("bad_value", 2, 100)
