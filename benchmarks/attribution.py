"""Attribution benchmark: index build, bytes per token, query latency (and ``serve`` load).

Records: ~1 KB of English (170 words) drawn from the word frequencies of real text found on
this machine (``benchmarks/corpus.py``), so every record is distinct while common words and
short phrases recur as they do in prose. Outputs: 200 tokens, 150 quoted verbatim (re-cased)
from one record and 50 novel.

Figures (printed):

1. ``build_shard`` time and records/s, shard bytes per token, at ``--sizes`` records
   (targets: >= 20k records/s, <= 16 bytes/token);
2. latency p50 / p95 of attributing one 200-token output against the largest index, in one
   process (target p95 <= 50 ms over 1M records);
3. the naive baseline in the same run: a Python ``dict`` from each 8-gram (a tuple of words)
   to the set of records holding it, built and queried on ``--baseline`` records (a dict of
   1M records would not fit in this machine's memory budget); its build rate, bytes per token
   (tracemalloc) and lookup latency, and the ratios;
4. with ``--serve``, requests/s and p95 of ``POST /attribute`` on ``datanet serve`` under
   ``--clients`` concurrent clients (targets: >= 200 requests/s, p95 <= 100 ms).

Run: ``python -m benchmarks.attribution [--sizes 100000 1000000] [--serve]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import time
import tracemalloc

import numba
import numpy as np
import pyarrow as pa

from benchmarks.corpus import paragraphs

WORDS_PER_RECORD = 170


def _vocabulary() -> tuple[list[str], np.ndarray]:
    counts = collections.Counter(
        w for p in paragraphs(10, 10_000) for w in re.findall(r"[A-Za-z][a-z']*", p))
    words, freq = zip(*counts.most_common(50_000), strict=True)
    p = np.asarray(freq, np.float64)
    return list(words), p / p.sum()


@numba.njit(cache=True)
def _join(ids: np.ndarray, blob: np.ndarray, woff: np.ndarray, out: np.ndarray,
          offsets: np.ndarray) -> None:
    pos = 0
    for r in range(ids.shape[0]):
        offsets[r] = pos
        for j in range(ids.shape[1]):
            w = ids[r, j]
            for b in range(woff[w], woff[w + 1]):
                out[pos] = blob[b]
                pos += 1
            out[pos] = 32
            pos += 1
    offsets[ids.shape[0]] = pos


def make_records(n: int, seed: int = 0) -> tuple[pa.Array, np.ndarray, list[str]]:
    """``n`` ~1 KB records (Arrow), their word ids and the vocabulary."""
    words, p = _vocabulary()
    ids = np.random.default_rng(seed).choice(len(words), size=(n, WORDS_PER_RECORD), p=p)
    raw = [w.encode() for w in words]
    woff = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(w) for w in raw], out=woff[1:])
    blob = np.frombuffer(b"".join(raw), np.uint8)
    size = int((woff[1:] - woff[:-1])[ids].sum() + ids.size)
    out = np.empty(size, np.uint8)
    offsets = np.empty(n + 1, np.int64)
    _join(ids, blob, woff, out, offsets)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))
    return arr, ids, words


def make_outputs(ids: np.ndarray, words: list[str], k: int, seed: int = 1) -> list[str]:
    """200-token outputs: 150 words quoted from a random record (upper-cased) + 50 novel."""
    rng = np.random.default_rng(seed)
    outs = []
    for _ in range(k):
        r = int(rng.integers(len(ids)))
        start = int(rng.integers(WORDS_PER_RECORD - 150))
        quote = " ".join(words[w] for w in ids[r, start:start + 150]).upper()
        novel = " ".join(f"novel{int(x)}" for x in rng.integers(1_000_000, size=50))
        outs.append(f"{quote}, {novel}.")
    return outs


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def bench_index(n: int, queries: int) -> dict[str, float]:
    from datanet.attribution.config import AttributionConfig
    from datanet.attribution.index import Shard, build_shard
    from datanet.attribution.match import AttributionIndex

    texts, ids, words = make_records(n)
    t0 = time.perf_counter()
    data, meta = build_shard(texts, 8)
    build = time.perf_counter() - t0
    table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    shard = Shard.from_table("0x" + "00" * 32, table)
    index = AttributionIndex.from_shards(
        [shard], [pa.array([f"0x{i:064x}" for i in range(n)])],
        [pa.array(["0x" + "11" * 20] * n)], config=AttributionConfig(), seq=1)
    outputs = make_outputs(ids, words, queries)
    index.attribute(outputs[0])  # compile / warm
    lat = []
    credited = []
    for text in outputs:
        t = time.perf_counter()
        r = index.attribute(text)
        lat.append(time.perf_counter() - t)
        credited.append(1 - r.unattributed)
    return {"records": n, "build_s": build, "records_per_s": n / build,
            "bytes_per_token": len(data) / meta["tokens"], "shard_mb": len(data) / 2**20,
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95),
            "mean_credited": float(np.mean(credited))}


def bench_many_shards(n: int, per: int, queries: int) -> dict[str, float]:
    """Latency when the same records are spread over ``n / per`` batches (one shard each)."""
    from datanet.attribution.index import Shard, build_shard
    from datanet.attribution.match import AttributionIndex

    texts, ids, words = make_records(n)
    shards = []
    for s in range(n // per):
        data, _ = build_shard(texts.slice(s * per, per), 8)
        t = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        shards.append(Shard.from_table(f"0x{s:064x}", t))
    index = AttributionIndex.from_shards(
        shards, [pa.array([f"0x{i:064x}" for i in range(n)])],
        [pa.array(["0x" + "11" * 20] * n)], seq=len(shards))
    outputs = make_outputs(ids, words, queries)
    index.attribute(outputs[0])
    lat = []
    for text in outputs:
        t0 = time.perf_counter()
        index.attribute(text)
        lat.append(time.perf_counter() - t0)
    return {"records": n, "shards": len(shards), "p50_ms": _pct(lat, 50),
            "p95_ms": _pct(lat, 95)}


def bench_baseline(n: int, queries: int) -> dict[str, float]:
    """Python dict of 8-gram shingles -> set of record numbers."""
    texts, ids, words = make_records(n)
    pylist = texts.to_pylist()

    def build_dict(rows: list[str]) -> tuple[dict[tuple[str, ...], set[int]], int]:
        index: dict[tuple[str, ...], set[int]] = {}
        tokens = 0
        for r, text in enumerate(rows):
            toks = re.findall(r"[0-9a-z]+", text.lower())
            tokens += len(toks)
            for i in range(len(toks) - 7):
                index.setdefault(tuple(toks[i:i + 8]), set()).add(r)
        return index, tokens

    t0 = time.perf_counter()
    index, _ = build_dict(pylist)
    build = time.perf_counter() - t0
    # memory on a tenth of the records (tracemalloc slows the build several times)
    tracemalloc.start()
    small, small_tokens = build_dict(pylist[: max(n // 10, 1)])
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del small
    lat = []
    for text in make_outputs(ids, words, queries):
        t = time.perf_counter()
        toks = re.findall(r"[0-9a-z]+", text.lower())
        hits = collections.defaultdict(int)
        for i in range(len(toks) - 7):
            for r in index.get(tuple(toks[i:i + 8]), ()):
                hits[r] += 1
        lat.append(time.perf_counter() - t)
    return {"records": n, "build_s": build, "records_per_s": n / build,
            "bytes_per_token": mem / small_tokens, "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95)}


def bench_serve(n: int, clients: int, requests: int) -> dict[str, float]:
    """``datanet serve`` on a datanet of ``n`` records: concurrent POST /attribute."""
    import asyncio
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import aiohttp

    from datanet.store.layout import init_datanet
    from tests.attribution.helpers import commit_texts
    from tests.conftest import TINY_SPEC

    texts, ids, words = make_records(n)
    root = Path(tempfile.mkdtemp()) / "dn"
    store = init_datanet(root, TINY_SPEC.replace('id = "tiny"', 'id = "bench"'))
    commit_texts(store, texts.to_pylist(), contributors=["0x" + "11" * 20] * n)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "datanet", "serve", str(root), "--port",
                             str(port)], stderr=subprocess.DEVNULL)
    outputs = make_outputs(ids, words, 64)
    url = f"http://127.0.0.1:{port}"

    async def run() -> tuple[list[float], float]:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{url}/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            lat: list[float] = []
            queue = list(range(requests))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    body = {"outputs": [{"id": str(i), "text": outputs[i % len(outputs)]}]}
                    t = time.perf_counter()
                    async with session.post(f"{url}/attribute", json=body) as r:
                        await r.read()
                        assert r.status == 200
                    lat.append(time.perf_counter() - t)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return lat, time.perf_counter() - t0

    try:
        lat, wall = asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait(10)
    return {"records": n, "clients": clients, "requests_per_s": requests / wall,
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--baseline", type=int, default=10_000)
    ap.add_argument("--many-records", type=int, default=200_000)
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--serve-records", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    base = bench_baseline(args.baseline, args.queries)
    print(json.dumps({"baseline_dict_8gram": base}))
    ours_small = bench_index(args.baseline, args.queries)
    print(json.dumps({"shards": ours_small}))
    print(json.dumps({"ratio_at_baseline_size": {
        "build_speedup": ours_small["records_per_s"] / base["records_per_s"],
        "bytes_per_token_ratio": base["bytes_per_token"] / ours_small["bytes_per_token"],
        "p95_speedup": base["p95_ms"] / ours_small["p95_ms"]}}))
    for n in args.sizes:
        print(json.dumps({"shards": bench_index(n, args.queries)}))
    print(json.dumps({"many_shards": bench_many_shards(args.many_records, args.per_shard,
                                                        args.queries)}))
    if args.serve:
        print(json.dumps({"serve": bench_serve(args.serve_records, args.clients,
                                               args.requests)}))


if __name__ == "__main__":
    main()
