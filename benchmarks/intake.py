"""Intake throughput: read → parse → normalise → hash → write → commit, vs bare pyarrow.

Baseline, measured in the same run on the same file: ``pyarrow.json.read_json`` of the JSONL
file + ``pyarrow.parquet.write_table`` (no validation, no ids, no dead-letter handling). The
datanet run has every validator off except what intake itself does (parse + validate fields,
normalise, content hash, contribution id, batch id, content-addressed Parquet, manifest
commit, Merkle tree), on the DirectRunner in-memory mode. The same records as one ``.json``
file holding a JSON array (the streaming element splitter, then the same per-record path) are
timed too, parsing only (``iter_path_chunks``), against the JSONL file parsed the same way.

    python benchmarks/intake.py --records 200000
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.json as pj
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import write_records

from datanet.pipelines.run import run_datanet
from datanet.store.layout import init_datanet
from datanet.validators.registry import BATCH_VALIDATORS, KEYED_VALIDATORS

SPEC = (
    'id = "bench"\n[limits]\nmax_record_bytes = 65536\n[pipeline]\nbatch_rows = 5000\n'
    + "".join(f"[validators.{name}]\nenabled = false\n"
              for name in (*BATCH_VALIDATORS, *KEYED_VALIDATORS))
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "input.jsonl"
        t0 = time.perf_counter()
        write_records(data, args.records, size=args.size, seed=0)
        gen = time.perf_counter() - t0
        mb = data.stat().st_size / 1e6
        print(f"generated {args.records} records ({mb:.0f} MB) in {gen:.1f}s")

        t0 = time.perf_counter()
        table = pj.read_json(data)
        pq.write_table(table, Path(tmp) / "baseline.parquet", compression="zstd")
        base = time.perf_counter() - t0

        store = init_datanet(Path(tmp) / "dn", SPEC)
        t0 = time.perf_counter()
        result = run_datanet(store, [str(data)], runner="DirectRunner")
        ours = time.perf_counter() - t0
        assert result.committed and result.counts["input"] == args.records, result.counts

        array = Path(tmp) / "input.json"
        with open(data, "rb") as src, open(array, "wb") as out:
            out.write(b"[")
            for i, row in enumerate(src):
                out.write((b",\n" if i else b"") + row.rstrip(b"\n"))
            out.write(b"]\n")
        jsonl_s, n1 = _parse_seconds(store.spec, data)
        array_s, n2 = _parse_seconds(store.spec, array)
        assert n1 == n2 == args.records, (n1, n2)

    print(f"{'pipeline':<42}{'seconds':>9}{'records/s':>12}{'MB/s':>8}")
    print(f"{'baseline: pyarrow read_json + write_parquet':<42}{base:>9.2f}"
          f"{args.records / base:>12,.0f}{mb / base:>8.1f}")
    print(f"{'datanet intake → commit (DirectRunner)':<42}{ours:>9.2f}"
          f"{args.records / ours:>12,.0f}{mb / ours:>8.1f}")
    print(f"ratio datanet / baseline throughput: {base / ours:.3f} "
          f"(baseline is {ours / base:.1f}x faster; it validates nothing)")
    print(f"parse only: JSONL {args.records / jsonl_s:,.0f} records/s, JSON array "
          f"{args.records / array_s:,.0f} records/s (array / JSONL {jsonl_s / array_s:.2f})")


def _parse_seconds(spec: object, path: Path) -> tuple[float, int]:
    from datanet.pipelines.intake import iter_path_chunks

    t0 = time.perf_counter()
    n = 0
    for _key, batch, _dead in iter_path_chunks(spec, str(path), lambda p: open(p, "rb"),
                                                default_time_us=0):
        n += batch.num_rows if batch is not None else 0
    return time.perf_counter() - t0, n


if __name__ == "__main__":
    main()
