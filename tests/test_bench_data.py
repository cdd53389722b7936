"""benchmarks/_data.py: the synthetic record generator used by the benchmarks."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest
from eth_utils import is_checksum_address

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_data.py"
_spec = importlib.util.spec_from_file_location("bench_data", _PATH)
bench_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_data)

N = 20_000
COLUMNS = ["contributor", "text", "submitted_at", "topic", "metadata"]


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def test_jsonl_records_are_unique_sized_and_well_formed(tmp_path: Path) -> None:
    path = bench_data.write_records(tmp_path / "a.jsonl", N, seed=3)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    assert len(lines) == N + 1 and lines[-1] == b""
    assert 0.85 * 1024 < len(raw) / N < 1.15 * 1024
    first = json.loads(lines[0])
    assert list(first) == COLUMNS and first["metadata"]["lang"] == "en"
    table = pajson.read_json(path)
    assert table.num_rows == N
    assert pc.count_distinct(table["text"]).as_py() == N
    assert all(is_checksum_address(a) for a in set(table["contributor"].to_pylist()))
    assert set(table["topic"].to_pylist()) <= {"baking", "grilling", "food_safety", "technique",
                                               "ingredients", "equipment", "nutrition"}
    texts = table["text"].to_pylist()[:600]
    pool = bench_data.sentence_pool()
    assert len(set(pool)) == bench_data.POOL and min(map(len, pool)) >= 16
    by_prefix: dict[str, list[str]] = {}
    for p in pool:
        by_prefix.setdefault(p[:16], []).append(p)
    for text in texts[:500]:  # each text is distinct pool sentences joined by spaces
        pos, used = 0, []
        while pos < len(text):
            match = max((p for p in by_prefix.get(text[pos:pos + 16], ())
                         if text.startswith(p, pos)), key=len)
            used.append(match)
            pos += len(match) + 1
        assert len(used) == len(set(used)) >= 2, text
    postings: dict[tuple[str, ...], list[int]] = {}
    sizes: list[int] = []
    worst = 0.0
    for text in texts:
        sh = _shingles(text)
        shared = Counter(d for s in sh for d in postings.get(s, ()))
        worst = max([worst, *(c / (len(sh) + sizes[d] - c) for d, c in shared.items())])
        for s in sh:
            postings.setdefault(s, []).append(len(sizes))
        sizes.append(len(sh))
    assert worst < 0.5


def test_deterministic_and_disjoint_ranges(tmp_path: Path) -> None:
    a = bench_data.write_records(tmp_path / "a.jsonl", 3000, seed=1).read_bytes()
    b = bench_data.write_records(tmp_path / "b.jsonl", 3000, seed=1).read_bytes()
    assert a == b
    c = bench_data.write_records(tmp_path / "c.jsonl", 3000, seed=1, start=3000)
    texts_a = set(pajson.read_json(tmp_path / "a.jsonl")["text"].to_pylist())
    texts_c = set(pajson.read_json(c)["text"].to_pylist())
    assert len(texts_a) == len(texts_c) == 3000 and not texts_a & texts_c


@pytest.mark.parametrize("fmt, name", [("csv", "r.csv"), ("parquet", "r.parquet"),
                                       ("jsonl", "r.jsonl.gz")])
def test_other_formats_hold_the_same_records(tmp_path: Path, fmt: str, name: str) -> None:
    path = bench_data.write_records(tmp_path / name, 2000, seed=5, fmt=fmt, size=512)
    ref = pajson.read_json(bench_data.write_records(tmp_path / "ref.jsonl", 2000, seed=5,
                                                    size=512))
    if fmt == "csv":
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: "string" for c in COLUMNS}))
    elif fmt == "parquet":
        table = pq.read_table(path)
    else:
        table = pajson.read_json(path)
    assert table.column_names == COLUMNS and table.num_rows == 2000
    assert table["text"].to_pylist() == ref["text"].to_pylist()
    assert table["contributor"].to_pylist() == ref["contributor"].to_pylist()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt='xml' must be one of jsonl, csv, parquet"):
        bench_data.write_records(tmp_path / "x", 10, fmt="xml")
    with pytest.raises(ValueError, match="exceed"):
        bench_data.write_records(tmp_path / "x.jsonl", 10, start=(bench_data.POOL - 1) ** 2 - 5)
