"""The bundled cooking-qa example: reproducible bytes and every planted case as documented."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_utils import is_checksum_address

from datanet.privacy.normalise import normalise_text
from datanet.schemas.spec import load_spec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cooking-qa"
DATA_FILES = (
    "contributions/part-1.jsonl", "contributions/part-2.jsonl.gz", "contributions/part-3.csv",
    "more/part-4.jsonl", "expected.json",
)
TOPICS = {"baking", "grilling", "food_safety", "technique", "ingredients", "equipment",
          "nutrition"}
_WORD = re.compile(r"\w+")


def _raw(name: str) -> bytes:
    data = (EXAMPLE / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _rows(name: str) -> dict[int, Any]:
    """line number -> parsed record (dict) or the raw bytes when the line is not a record."""
    raw = _raw(name)
    out: dict[int, Any] = {}
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
        prev = 1
        for row in reader:
            row["metadata"] = json.loads(row["metadata"])
            out[prev + 1] = row
            prev = reader.line_num
        return out
    for i, line in enumerate(raw.split(b"\n")[:-1], start=1):
        try:
            out[i] = json.loads(line.decode("utf-8"))
        except ValueError:
            out[i] = line
    return out


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads((EXAMPLE / "expected.json").read_text())


@pytest.fixture(scope="module")
def files(expected: dict[str, Any]) -> dict[str, dict[int, Any]]:
    return {name: _rows(name) for name in [*expected["files"], expected["more"]["file"]]}


def _at(files: dict[str, dict[int, Any]], ref: dict[str, Any]) -> Any:
    return files[ref["file"]][ref["line"]]


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def _jaccard(a: str, b: str, n: int) -> float:
    sa, sb = _shingles(a, n), _shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def _clean(expected: dict[str, Any], files: dict[str, dict[int, Any]]) -> list[dict[str, Any]]:
    planted = {(p["file"], p["line"]) for p in expected["planted"]}
    planted |= {(m["file"], m["line"]) for m in expected["malformed"]}
    return [rec for name in expected["files"] for line, rec in files[name].items()
            if (name, line) not in planted]


def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "generate.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(proc.stdout)["total_lines"] == 2000
    for name in DATA_FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


def test_spec_loads() -> None:
    spec = load_spec(EXAMPLE / "datanet.toml")
    assert (spec.id, spec.license, spec.schedule) == ("cooking-qa", "CC-BY-4.0", "@daily")
    assert (spec.limits.max_record_bytes, spec.limits.min_chars, spec.limits.max_chars) == (
        16384, 20, 4000)
    (topic,) = spec.fields
    assert (topic.name, topic.type, set(topic.choices)) == ("topic", "string", TOPICS)
    assert not spec.validators and not spec.policy and not spec.anchoring


def test_counts_add_up(expected: dict[str, Any], files: dict[str, dict[int, Any]]) -> None:
    assert {n: len(files[n]) for n in expected["files"]} == {
        "contributions/part-1.jsonl": 1200, "contributions/part-2.jsonl.gz": 500,
        "contributions/part-3.csv": 300}
    assert expected["total_lines"] == 2000
    counts = expected["counts"]
    assert counts == {
        "exact_duplicate": 40, "duplicate_submission": 5, "near_duplicate": 40, "pii": 40,
        "pii_obfuscated": 6, "spam": 30, "low_quality": 40, "non_english": 15, "bad_field": 3,
        "malformed": 12, "flood": 60, "clean": 1769,
    }
    planted = Counter(p["kind"] for p in expected["planted"])
    assert all(planted[k] == counts[k] for k in planted)
    assert counts["clean"] + sum(planted.values()) + counts["malformed"] == 2000
    assert len(_clean(expected, files)) == counts["clean"]
    assert expected["pii_entities"] == {
        "CREDIT_CARD": 7, "EMAIL_ADDRESS": 8, "ETH_ADDRESS": 5, "IBAN_CODE": 6, "IP_ADDRESS": 5,
        "PHONE_NUMBER": 8, "US_SSN": 7}
    assert expected["contributors"] == 150


def test_malformed_lines_fail_for_the_documented_reason(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    reasons = Counter()
    for m in expected["malformed"]:
        assert m["file"].endswith((".jsonl", ".jsonl.gz"))
        raw = _raw(m["file"]).split(b"\n")[m["line"] - 1]
        value = _at(files, m)
        reason = m["reason"]
        reasons[reason] += 1
        if reason == "too_large":
            assert len(raw) > 16384 and isinstance(value, dict)
            continue
        assert len(raw) < 16384
        if reason == "invalid_utf8":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        elif reason == "invalid_json":
            raw.decode("utf-8")
            assert isinstance(value, bytes)
        elif reason == "missing_field":
            assert m["field"] in ("text", "contributor") and m["field"] not in value
        elif reason == "bad_type":
            assert m["field"] == "text" and not isinstance(value["text"], str)
        elif reason == "bad_address":
            assert m["field"] == "contributor" and not is_checksum_address(value["contributor"])
            assert not re.fullmatch(r"0x[0-9a-f]{40}", value["contributor"])
    assert reasons == {"invalid_json": 2, "invalid_utf8": 2, "missing_field": 2, "bad_type": 2,
                       "bad_address": 3, "too_large": 1}


def test_every_other_line_is_a_well_formed_record(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    malformed = {(m["file"], m["line"]) for m in expected["malformed"]}
    bad_field = {(p["file"], p["line"]) for p in expected["planted"] if p["kind"] == "bad_field"}
    oct_1, nov_1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    for name in expected["files"]:
        for line, rec in files[name].items():
            if (name, line) in malformed:
                continue
            assert list(rec) == ["contributor", "text", "submitted_at", "topic", "metadata"]
            assert is_checksum_address(rec["contributor"])
            assert isinstance(rec["text"], str) and rec["metadata"]["lang"] == "en"
            ts = datetime.fromisoformat(rec["submitted_at"])
            assert oct_1 <= ts < nov_1 and rec["submitted_at"].endswith("Z")
            assert (rec["topic"] in TOPICS) == ((name, line) not in bad_field)


def test_clean_texts_are_varied_and_dissimilar(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    from datasketch import MinHash, MinHashLSH

    clean = _clean(expected, files)
    words = [len(r["text"].split()) for r in clean]
    assert min(words) >= 40 and max(words) <= 200
    assert len({normalise_text(r["text"]) for r in clean}) == len(clean)
    # exact max pairwise word 3-shingle Jaccard via an inverted index
    postings: dict[tuple[str, ...], list[int]] = {}
    sizes: list[int] = []
    worst = 0.0
    for rec in clean:
        sh = _shingles(rec["text"], 3)
        shared = Counter(d for s in sh for d in postings.get(s, ()))
        worst = max([worst, *(c / (len(sh) + sizes[d] - c) for d, c in shared.items())])
        for s in sh:
            postings.setdefault(s, []).append(len(sizes))
        sizes.append(len(sh))
    assert worst < 0.35
    # a MinHash LSH at 0.8 finds no pair among clean records but finds every near-duplicate
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    hashes = {}
    for i, rec in enumerate(clean):
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(s).encode() for s in _shingles(rec["text"], 5)])
        assert not lsh.query(m), rec["text"]
        lsh.insert(i, m)
        hashes[normalise_text(rec["text"])] = i
    for p in expected["planted"]:
        if p["kind"] == "near_duplicate":
            m = MinHash(num_perm=128)
            m.update_batch([" ".join(s).encode()
                            for s in _shingles(_at(files, p)["text"], 5)])
            assert hashes[normalise_text(_at(files, p["source"])["text"])] in lsh.query(m)


def test_duplicates_and_near_duplicates(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    variants = Counter()
    order = list(expected["files"])
    for p in expected["planted"]:
        if p["kind"] not in ("exact_duplicate", "duplicate_submission", "near_duplicate"):
            continue
        rec, src = _at(files, p), _at(files, p["source"])
        assert (order.index(p["source"]["file"]), p["source"]["line"]) < (
            order.index(p["file"]), p["line"])
        assert rec["submitted_at"] > src["submitted_at"]
        same_norm = normalise_text(rec["text"]) == normalise_text(src["text"])
        if p["kind"] == "duplicate_submission":
            assert rec["contributor"] == src["contributor"] and rec["text"] == src["text"]
        elif p["kind"] == "exact_duplicate":
            variants[p["variant"]] += 1
            assert rec["contributor"] != src["contributor"] and same_norm
            assert (rec["text"] == src["text"]) == (p["variant"] == "identical")
        else:
            assert rec["contributor"] != src["contributor"] and not same_norm
            assert min(_jaccard(rec["text"], src["text"], n) for n in (3, 5)) > 0.9
            assert p["jaccard"] > 0.9
    assert variants == {"identical": 20, "whitespace": 8, "zero_width": 6, "fullwidth": 6}
    sources = [(p["source"]["file"], p["source"]["line"]) for p in expected["planted"]
               if "source" in p]
    assert len(sources) == len(set(sources)) == 85


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_pii_values_are_valid_and_present(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    import phonenumbers

    entities = Counter()
    for p in expected["planted"]:
        if p["kind"] not in ("pii", "pii_obfuscated"):
            continue
        text, value, entity = _at(files, p)["text"], p["value"], p["entity"]
        assert value in text
        entities[(p["kind"], entity)] += 1
        if p["kind"] == "pii_obfuscated":
            continue
        digits = re.sub(r"\D", "", value)
        if entity == "CREDIT_CARD":
            assert len(digits) == 16 and _luhn(digits)
        elif entity == "IBAN_CODE":
            s = value.replace(" ", "")
            assert int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1
        elif entity == "PHONE_NUMBER":
            assert phonenumbers.is_valid_number(phonenumbers.parse(value, "US"))
        elif entity == "US_SSN":
            assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", value)
            assert value[:3] not in ("000", "666") and value[:1] != "9"
        elif entity == "ETH_ADDRESS":
            assert is_checksum_address(value)
        elif entity == "EMAIL_ADDRESS":
            assert re.fullmatch(r"[\w.]+@[\w]+\.com", value)
        elif entity == "IP_ADDRESS":
            assert all(0 <= int(x) <= 255 for x in value.split("."))
    assert sum(n for (k, _), n in entities.items() if k == "pii_obfuscated") == 6


def test_flood_spam_and_other_planted(
    expected: dict[str, Any], files: dict[str, dict[int, Any]]
) -> None:
    clean = _clean(expected, files)
    per = Counter(r["contributor"] for r in clean)
    assert per[expected["flood_contributor"]] == 60
    assert max(n for a, n in per.items() if a != expected["flood_contributor"]) <= 30
    spam_ids = set(expected["spam_contributors"])
    by_kind: dict[str, list[str]] = {}
    for p in expected["planted"]:
        rec = _at(files, p)
        by_kind.setdefault(p["kind"], []).append(rec["text"])
        assert (rec["contributor"] in spam_ids) == (p["kind"] == "spam")
    assert sum(len(normalise_text(t)) < 20 for t in by_kind["low_quality"]) == 8
    assert all(len(normalise_text(t)) >= 20 for t in by_kind["spam"] + by_kind["pii"])
    assert all(re.search(r"https?://|0x[0-9a-fA-F]{40}|!!!|(.)\1{5}", t)
               for t in by_kind["spam"])
    assert not any(re.search(r"https?://", r["text"]) for r in clean)
    langs = Counter(p["variant"] for p in expected["planted"] if p["kind"] == "non_english")
    assert langs == {"es": 5, "fr": 5, "de": 5}


def test_second_delivery(expected: dict[str, Any], files: dict[str, dict[int, Any]]) -> None:
    more = expected["more"]
    rows = files[more["file"]]
    assert (len(rows), more["clean"], more["exact_duplicate_of_history"]) == (105, 100, 5)
    dup_lines = {p["line"] for p in more["planted"]}
    first = {normalise_text(r["text"]) for name in expected["files"]
             for r in files[name].values()
             if isinstance(r, dict) and isinstance(r.get("text"), str)}
    for line, rec in rows.items():
        assert is_checksum_address(rec["contributor"]) and rec["topic"] in TOPICS
        assert rec["submitted_at"] >= "2026-11-01"
        assert (normalise_text(rec["text"]) in first) == (line in dup_lines)
    for p in more["planted"]:
        src = _at(files, p["source"])
        assert p["source"]["file"] == "contributions/part-1.jsonl"
        assert rows[p["line"]]["text"] == src["text"]
        assert rows[p["line"]]["contributor"] != src["contributor"]
