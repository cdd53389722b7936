"""Re-run benchmark: how long ``datanet run`` takes to say "nothing new" for a committed input.

For each size, ~1 KB records from ``benchmarks/_data.py`` are written as ``--shards`` JSONL
files and ingested into a fresh datanet with the default spec (every registered validator on
at its defaults, anchoring off: ``--no-anchor``); then the same command runs again. Both are
timed as whole ``python -m datanet run`` processes (interpreter start and imports included,
which is what an operator waits for); the re-run is recognised from the manifest's source
fingerprint (:mod:`datanet.pipelines.fingerprint`) without importing Beam. ``ratio`` =
re-run / first run (the issue's target: ≤ 5 %). ``lib_rerun_s`` is ``run_datanet``'s own
re-run time in-process (Beam already imported: match, hash, compare).

    python benchmarks/rerun.py --sizes 20000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parent


def _cli(root: Path, files: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "datanet", "run", str(root), *files,
                           "--no-anchor"], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t, proc.stdout.splitlines()[0]


def measure(n: int, shards: int, size: int, work: Path) -> dict[str, object]:
    """First run and re-run of ``n`` records in ``work``."""
    from scale import _generate

    from datanet.pipelines.run import run_datanet
    from datanet.store.layout import DatanetStore, init_datanet
    from datanet.validators.registry import default_spec_text

    files = _generate(work / "data", n, shards, size)
    root = work / "dn"
    init_datanet(root, default_spec_text("bench"))
    first_s, first_line = _cli(root, files)
    rerun_s, rerun_line = _cli(root, files)
    t = time.perf_counter()
    lib = run_datanet(DatanetStore(root), files)
    lib_s = time.perf_counter() - t
    assert "nothing new" in rerun_line and "nothing new" in lib.message, (rerun_line, lib)
    return {"records": n, "input_mb": round(sum(os.path.getsize(f) for f in files) / 1e6, 1),
            "first_s": round(first_s, 2), "rerun_s": round(rerun_s, 3),
            "ratio": round(rerun_s / first_s, 4), "lib_rerun_s": round(lib_s, 3),
            "first": first_line, "rerun": rerun_line}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000", help="comma-separated record counts")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--size", type=int, default=1000, help="approximate bytes per record")
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="datanet-rerun-") as tmp:
            row = measure(n, args.shards, args.size, Path(tmp))
        print(json.dumps(row), flush=True)
        print(f"{n} records: first run {row['first_s']:.2f}s, re-run {row['rerun_s']:.3f}s "
              f"= {100 * row['ratio']:.1f}% (library re-run {row['lib_rerun_s']:.3f}s)",
              flush=True)


if __name__ == "__main__":
    main()
