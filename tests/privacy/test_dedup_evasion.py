"""Homoglyph + zero-width copies are duplicates: dedup keys use the PII path's Unicode fold."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from datanet.pipelines.run import run_datanet
from datanet.privacy.evasion import dedup_keys, fold_unicode
from datanet.privacy.normalise import normalise
from datanet.schemas.ids import content_hashes
from datanet.store.layout import init_datanet
from datanet.store.query import connect
from tests.conftest import ADDRS, TINY_SPEC

#: Package-description-like texts (written for this test), 40-70 words each.
ORIGINALS = [
    "A fast, extensible toolkit for parsing command line arguments. It builds help pages "
    "from type annotations, supports nested sub-commands and shell completion for bash, zsh "
    "and fish, and reports every error with the offending option and the closest valid one.",
    "Composable HTTP client with connection pooling, retries with exponential back-off, "
    "streaming uploads and downloads, and first-class support for timeouts. Responses are "
    "decoded lazily, cookies persist across requests of a session, and proxies are read "
    "from the environment.",
    "Columnar in-memory analytics: read and write Parquet, CSV and JSON files, compute "
    "group-by aggregates and joins on multiple cores, and exchange data with other processes "
    "without copying. The compute kernels operate on whole arrays rather than on individual "
    "Python objects.",
    "A small library for validating configuration files. Declare the expected keys with "
    "their types and ranges once, then load TOML or YAML and receive frozen objects; every "
    "problem is reported with the file, the dotted key, the bad value and what would have "
    "been accepted.",
    "Cryptographic primitives for Python: authenticated encryption, key derivation, "
    "signatures over elliptic curves and constant-time comparison helpers. Recipes cover "
    "the common cases, while the hazardous materials layer exposes the low level building "
    "blocks for protocol authors.",
    "Scheduler for recurring jobs with cron expressions and presets such as daily or "
    "weekly. Jobs survive restarts because their state is stored in a database, missed runs "
    "can be caught up or skipped, and a web page shows upcoming and past executions.",
    "Image processing routines for scientific work: filtering, segmentation, feature "
    "detection, geometric transforms and color space conversion. Algorithms accept numpy "
    "arrays of any dimension where it makes sense, and the gallery holds an example for "
    "each function.",
    "Lightweight template engine that compiles templates to Python bytecode. It supports "
    "inheritance, macros, automatic escaping of HTML, sandboxed execution for untrusted "
    "templates and asynchronous rendering, and reports template errors with the original "
    "line numbers.",
    "Date and time utilities: parse almost any human readable date, compute relative "
    "differences such as three months ago, work with time zones from the IANA database "
    "and format durations for display. Every function accepts and returns standard "
    "datetime objects.",
    "Testing framework with plain assert statements and detailed failure introspection. "
    "Fixtures provide setup and teardown by dependency injection, tests can be "
    "parametrised from tables, and hundreds of plugins add coverage, parallel runs and "
    "timeouts.",
]

#: Latin letters and the Cyrillic look-alikes the issue names (а е о с р).
SWAP = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440"}
ZWSP = "\u200b"


def disguise(text: str, rng: random.Random, rate: float) -> str:
    """Swap a share of a/e/o/c/p for Cyrillic and insert zero-width spaces inside words."""
    out = []
    for ch in text:
        out.append(SWAP[ch] if ch in SWAP and rng.random() < rate else ch)
        if ch.isalpha() and rng.random() < 0.05:
            out.append(ZWSP)
    return "".join(out)


def _copies() -> list[str]:
    rng = random.Random(13)
    return [disguise(t, rng, rate) for t, rate in
            zip(ORIGINALS, [0.1, 0.2, 0.3, 0.5, 1.0, 0.15, 0.25, 0.4, 0.6, 0.8], strict=True)]


def test_copies_really_differ_but_share_the_dedup_key() -> None:
    copies = _copies()
    assert all(c != o for c, o in zip(copies, ORIGINALS, strict=True))
    assert all("\u0430" in c or "\u0435" in c for c in copies) and all(ZWSP in c for c in copies)
    orig_norm, copy_norm = normalise(pa.array(ORIGINALS)), normalise(pa.array(copies))
    orig_hash = pa.array(content_hashes(orig_norm.to_pylist()))
    copy_hash = pa.array(content_hashes(copy_norm.to_pylist()))
    # content hashes (ids, roots) differ: without the fold every copy is a new text
    assert all(a != b for a, b in zip(orig_hash.to_pylist(), copy_hash.to_pylist(), strict=True))
    assert fold_unicode(copy_norm).to_pylist() == orig_norm.to_pylist()
    assert dedup_keys(copy_norm, copy_hash).to_pylist() == orig_hash.to_pylist()
    # ASCII texts: the key is the content hash itself
    assert dedup_keys(orig_norm, orig_hash).to_pylist() == orig_hash.to_pylist()


def _spec(near: bool) -> str:
    spec = TINY_SPEC.replace("max_chars = 400", "max_chars = 2000")
    if near:
        spec = spec.replace("\n[validators.near_duplicate]\nenabled = false\n", "\n")
    return spec


def _write(path, texts, contributor) -> str:
    import json

    with open(path, "w", encoding="utf-8") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"contributor": contributor, "text": t, "topic": "baking",
                                 "submitted_at": f"2026-10-{1 + i:02d}T12:00:00Z"}) + "\n")
    return str(path)


def test_every_disguised_copy_is_an_exact_duplicate_of_history(tmp_path) -> None:
    store = init_datanet(tmp_path / "dn", _spec(near=False))
    r1 = run_datanet(store, [_write(tmp_path / "a.jsonl", ORIGINALS, ADDRS[0])],
                     runner="DirectRunner")
    assert r1.counts["accepted"] == 10
    r2 = run_datanet(store, [_write(tmp_path / "b.jsonl", _copies(), ADDRS[1])],
                     runner="DirectRunner")
    assert (r2.counts["accepted"], r2.counts["rejected"]) == (0, 10)
    con = connect(store)
    rows = con.execute(
        "SELECT r.reasons, json_extract_string(v.details, '$.batch') FROM rejected r "
        "JOIN votes v USING (contribution_id) WHERE v.validator = 'exact_duplicate'").fetchall()
    assert rows == [(["exact_duplicate"], r1.batch_id)] * 10


@pytest.mark.parametrize("near", [False, True])
def test_disguised_copies_in_the_same_input_are_caught(tmp_path, near) -> None:
    """Exact copies by the fold; with near_duplicate on, copies with a word added too."""
    store = init_datanet(tmp_path / "dn", _spec(near=near))
    copies = _copies()
    texts = ORIGINALS + copies
    if near:
        rng = random.Random(7)
        texts += [disguise(t + " Maintained since 2019.", rng, 0.3) for t in ORIGINALS]
    r = run_datanet(store, [_write(tmp_path / "a.jsonl", texts, ADDRS[0])],
                    runner="DirectRunner")
    reasons = dict(connect(store).execute(
        "SELECT array_to_string(list_sort(reasons), ','), count(*) FROM rejected "
        "GROUP BY 1").fetchall())
    if near:
        assert reasons == {"exact_duplicate": 10, "near_duplicate": 10}
    else:
        assert reasons == {"exact_duplicate": 10}
    assert r.counts["accepted"] == 10
    accepted = {t for (t,) in connect(store).execute("SELECT text FROM accepted").fetchall()}
    assert accepted == set(ORIGINALS)  # the originals were submitted first
