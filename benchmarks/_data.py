"""Fast synthetic contributions for benchmarks: 100k-1M realistic ~1 KB records in seconds.

Records have the example datanet's shape (contributor, text, submitted_at, topic, metadata).
Texts are joined from a fixed pool of cooking sentences (filled from the cooking-qa example's
templates), chosen with numpy and concatenated with Arrow compute, never one Python object per
record. Every text is unique: its first two sentences are the digits, in base ``POOL``, of an
affine permutation of the row number, so rows ``start .. start + n - 1`` never repeat (for up
to ``(POOL - 1) ** 2`` rows). Other sentences are random, so unrelated rows share at most a few
sentences and stay far below near-duplicate thresholds.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["write_records", "sentence_pool", "POOL", "FORMATS"]

POOL = 4096  # sentences in the pool; (POOL - 1)**2 = 16.8M distinct (first, second) pairs
FORMATS = ("jsonl", "csv", "parquet")
CHUNK_ROWS = 50_000
_BASE = POOL - 1
_ROWS = _BASE**2  # distinct (first, second) pairs
_MULT = 1_000_003  # prime, coprime with _ROWS = (3**2 * 5 * 7 * 13)**2: a bijection mod _ROWS
_VOCAB = Path(__file__).resolve().parents[1] / "examples" / "cooking-qa" / "vocab.py"
_SLOT = re.compile(r"\{(\w+)\}")
_AN = re.compile(r"\b([Aa]) ([aeiouAEIOU])")
_T0 = 1_790_812_800  # 2026-10-01T00:00:00Z
_CLIENTS = ('{"lang": "en", "client": "web"}', '{"lang": "en", "client": "ios"}',
            '{"lang": "en", "client": "android"}', '{"lang": "en", "client": "api"}')
_pool_cache: dict[int, list[str]] = {}


def _vocab() -> Any:
    spec = importlib.util.spec_from_file_location("cooking_qa_vocab", _VOCAB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sentence_pool(size: int = POOL) -> list[str]:
    """``size`` distinct cooking sentences filled from the example's templates (fixed seed)."""
    if size in _pool_cache:
        return _pool_cache[size]
    vocab = _vocab()
    rng = random.Random(1)
    templates: list[tuple[str, str]] = []
    for topic, data in vocab.TOPIC_DATA.items():
        templates += [(topic, t) for t in data["facts"] + data["questions"]]
        templates += [(topic, f) for f in vocab.CAUSE_FRAMES + vocab.FIX_FRAMES]
        templates += [(topic, a) for a in data.get("anecdotes", vocab.ANECDOTES)]
    out: dict[str, None] = {}
    for _ in range(size * 200):
        topic, template = rng.choice(templates)
        data = vocab.TOPIC_DATA[topic]
        text = _SLOT.sub(lambda m, d=data: rng.choice(d.get(m.group(1))
                                                      or vocab.COMMON[m.group(1)]), template)
        out[_AN.sub(r"\1n \2", text[:1].upper() + text[1:])] = None
        if len(out) == size:
            break
    if len(out) < size:
        raise ValueError(f"the templates give only {len(out)} distinct sentences, < {size}")
    _pool_cache[size] = list(out)
    return _pool_cache[size]


def _addresses(count: int = 1000) -> list[str]:
    from eth_hash.auto import keccak
    from eth_utils import to_checksum_address

    return [to_checksum_address(keccak(f"bench/contributor/{i}".encode())[12:])
            for i in range(count)]


def _chunks(n: int, *, size: int, seed: int, start: int) -> Iterator[dict[str, pa.Array]]:
    """Columns of successive chunks of at most CHUNK_ROWS rows (texts raw, not escaped)."""
    if start < 0 or start + n > _ROWS:
        raise ValueError(f"rows {start}..{start + n - 1} exceed the {_ROWS} unique texts")
    pool = sentence_pool()
    pool_arr = pa.array(pool, pa.string())
    mean = float(np.mean([len(s) for s in pool])) + 1
    per_text = max(2, round((size - 190) / mean))  # ~190 bytes of JSON around the text
    contributors = pa.array(_addresses(), pa.string())
    vocab = _vocab()
    topics = pa.array(list(vocab.TOPICS), pa.string())
    meta = pa.array(_CLIENTS, pa.string())
    rng = np.random.default_rng(seed)
    offset = (seed * 7_919) % _ROWS
    for lo in range(start, start + n, CHUNK_ROWS):
        rows = np.arange(lo, min(lo + CHUNK_ROWS, start + n), dtype=np.int64)
        k = len(rows)
        key = (rows * _MULT + offset) % _ROWS
        first = key % _BASE
        second = (first + 1 + key // _BASE) % POOL  # != first; (first, second) <-> key
        parts = [pool_arr.take(pa.array(first)), pool_arr.take(pa.array(second))]
        # the others from disjoint windows after the first, skipping the second: no sentence
        # twice in a text
        window = POOL // per_text
        for j in range(1, per_text - 1):
            r = rng.integers(1, window, k)
            r = np.where((first + j * window + r) % POOL == second,
                         np.where(r + 1 < window, r + 1, r - 1), r)
            parts.append(pool_arr.take(pa.array((first + j * window + r) % POOL)))
        order = rng.permutation(len(parts))  # unique pair need not lead the text
        text = pc.binary_join_element_wise(*[parts[i] for i in order], " ")
        ts = pa.array(_T0 + rng.integers(0, 31 * 86_400, k), pa.timestamp("s", tz="UTC"))
        yield {
            "contributor": contributors.take(pa.array(rng.integers(0, len(contributors), k))),
            "text": text,
            "submitted_at": pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ"),
            "topic": topics.take(pa.array(rng.integers(0, len(topics), k))),
            "metadata": meta.take(pa.array(rng.integers(0, len(meta), k))),
        }


def _json_escape(arr: pa.Array) -> pa.Array:
    # the pool has no control characters; only backslashes and quotes may need escaping
    if not any('"' in s or "\\" in s for s in sentence_pool()):
        return arr
    arr = pc.replace_substring(arr, "\\", "\\\\")
    return pc.replace_substring(arr, '"', '\\"')


def _jsonl_bytes(cols: dict[str, pa.Array]) -> memoryview:
    lines = pc.binary_join_element_wise(
        '{"contributor": "', cols["contributor"], '", "text": "', _json_escape(cols["text"]),
        '", "submitted_at": "', cols["submitted_at"], '", "topic": "', cols["topic"],
        '", "metadata": ', cols["metadata"], "}\n", "",
    )
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:]
    data = lines.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[len(lines)]]


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=1)
    return open(path, "wb")


def write_records(
    path: str | Path, n: int, *, size: int = 1024, seed: int = 0, fmt: str = "jsonl",
    start: int = 0,
) -> Path:
    """Write ``n`` records of about ``size`` bytes (as JSONL) to ``path``; return the path.

    ``fmt`` is ``jsonl``, ``csv`` or ``parquet``; a ``.gz`` suffix gzips JSONL / CSV.
    ``seed`` picks the filler sentences, contributors, times and topics; ``start`` numbers the
    rows so that files written with disjoint ``start .. start + n`` ranges share no text.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} must be one of {', '.join(FORMATS)}")
    if n < 0 or size < 256:
        raise ValueError(f"n={n} must be >= 0 and size={size} >= 256")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["contributor", "text", "submitted_at", "topic", "metadata"]
    schema = pa.schema([(c, pa.string()) for c in names])
    chunks = _chunks(n, size=size, seed=seed, start=start)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, schema) as writer:
            for cols in chunks:
                writer.write_table(pa.table(cols, schema=schema))
        return path
    with _open(path) as out:
        if fmt == "jsonl":
            for cols in chunks:
                out.write(_jsonl_bytes(cols))
        else:
            import pyarrow.csv as pacsv

            with pacsv.CSVWriter(out, schema) as writer:
                for cols in chunks:
                    writer.write_table(pa.table(cols, schema=schema))
    return path


if __name__ == "__main__":
    import sys
    import time

    target, count = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    fmt = next((f for f in FORMATS if f in Path(target).name), "jsonl")
    write_records(target, count, fmt=fmt)
    took = time.perf_counter() - t0
    print(json.dumps({"path": target, "rows": count, "seconds": round(took, 2),
                      "rows_per_s": round(count / took)}))
