"""End to end: the pipeline writes no planted PII value anywhere, per policy; the example
datanet's planted PII is caught with exact counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datanet.pipelines.run import run_datanet
from tests.conftest import TINY_SPEC, record, write_jsonl

from .conftest import KEY

EMAIL = "jane.doe@example.org"  # reject
PHONE = "(212) 555-0147"  # redact
IP = "203.0.113.77"  # pseudonymise
URL = "https://bakery.example.com/rye"  # allow (private by default: URLs allowed)
CARD = "4111 1111 1111 1111"  # reject (default), obfuscated below
CARD_OBF = "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"

SPEC = TINY_SPEC + """
[validators.pii.entities]
PHONE_NUMBER = "redact"
IP_ADDRESS = "pseudonymise"
"""


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _decoded(path: Path) -> str:
    """Every value of a Parquet file as text (the files are zstd-compressed)."""
    return json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)


def test_pipeline_stores_no_planted_value(tmp_path, monkeypatch):
    from datanet.store.layout import init_datanet
    from datanet.store.query import connect

    monkeypatch.setenv("DATANET_PII_KEY", KEY)
    store = init_datanet(tmp_path / "dn", SPEC)
    texts = [
        f"Email me the recipe at {EMAIL} before the weekend please.",
        f"Call the bakery on {PHONE} to order the sourdough starter.",
        f"My home server {IP} hosts the family recipe collection.",
        f"The rye bread method is written up at {URL} with photos.",
        f"Pay for the class with card {CARD_OBF} at the front desk.",
    ]
    rows = [record(i, text=t) for i, t in enumerate(texts)] + [record(7)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    result = run_datanet(store, [str(src)], runner="DirectRunner")
    assert result.counts == {"accepted": 4, "rejected": 2, "quarantine": 0, "deadletter": 0,
                             "input": 6}

    con = connect(store)
    rejected = con.execute(
        "SELECT source_line, list_sort(reasons), text FROM rejected ORDER BY 1").fetchall()
    assert rejected == [(1, ["pii:EMAIL_ADDRESS"], None), (5, ["pii:CREDIT_CARD"], None)]
    accepted = dict(con.execute("SELECT source_line, text FROM accepted").fetchall())
    assert accepted[2] == "Call the bakery on <PHONE_NUMBER> to order the sourdough starter."
    assert accepted[3].startswith("My home server <IP_ADDRESS:")
    assert accepted[4] == texts[3]

    root = Path(store.root) if hasattr(store, "root") else tmp_path / "dn"
    files = _all_files(root)
    parquet = [p for p in files if p.suffix == ".parquet"]
    assert parquet
    # "41111111": the card de-obfuscated (a shorter digit run can occur in hex ids by chance)
    planted = [EMAIL, "jane.doe", PHONE, "555-0147", IP, CARD, CARD_OBF, "41111111"]
    for path in files:
        raw = path.read_bytes()
        for value in planted:
            assert value.encode() not in raw, (path, value)
    decoded = "".join(_decoded(p) for p in parquet)
    for value in planted:
        assert value not in decoded, value
    assert URL in decoded  # control: an allowed value is stored and the grep sees it
    manifest = store.last_manifest()
    assert manifest.report["pii"]["ner"].startswith("disabled: no spaCy model")


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cooking-qa"


@pytest.mark.skipif(not (EXAMPLE / "expected.json").exists(), reason="example not present")
def test_example_planted_pii_exact_counts():
    """All 46 planted PII records (40 plain + 6 obfuscated) of the example are rejected with
    their entity's reason; no clean record trips the PII validator."""
    import gzip

    import pyarrow as pa

    from datanet.privacy.policy import PiiConfig
    from datanet.validators.pii import PiiValidator

    expected = json.loads((EXAMPLE / "expected.json").read_text())
    texts, where = [], []
    for rel in expected["files"]:
        path = EXAMPLE / rel
        if rel.endswith(".csv"):
            import csv

            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                start = 2  # physical line where the row starts (quoted fields span lines)
                for row in reader:
                    texts.append(row.get("text") or "")
                    where.append((rel, start))
                    start = reader.line_num + 1
            continue
        raw = gzip.decompress(path.read_bytes()) if rel.endswith(".gz") else path.read_bytes()
        for line, chunk in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
            try:
                rec = json.loads(chunk)
            except ValueError:
                rec = {}
            text = rec.get("text") if isinstance(rec, dict) else None
            texts.append(text if isinstance(text, str) else "")
            where.append((rel, line))
    v = PiiValidator(PiiConfig())
    v.setup()
    batch = pa.record_batch({"contribution_id": [str(i) for i in range(len(texts))],
                             "text": texts})
    reasons = v.validate(batch).votes.column("reason").to_pylist()
    got = {w: r for w, r in zip(where, reasons, strict=True) if r}
    planted = {(p["file"], p["line"]): p for p in expected["planted"]
               if p["kind"] in ("pii", "pii_obfuscated")}
    entity_reason = {"ETH_ADDRESS": "pii:CRYPTO"}
    want = {k: entity_reason.get(p["entity"], f"pii:{p['entity']}") for k, p in planted.items()}
    assert len(want) == expected["counts"]["pii"] + expected["counts"]["pii_obfuscated"] == 46
    assert {k: got.get(k) for k in want} == want
    kinds = {(p["file"], p["line"]): p["kind"] + ":" + p["variant"] for p in expected["planted"]}
    extra = Counter((kinds.get(k, "clean"), r) for k, r in got.items() if k not in want)
    # The only other records tripping it are the spam ones asking for ETH sent to a wallet
    # address (a wallet identifier in the text: rejected under the private default).
    assert extra == {("spam:double_eth", "pii:CRYPTO"): 6}
    assert Counter(want.values()) == Counter(
        {f"pii:{e}" if e != "ETH_ADDRESS" else "pii:CRYPTO": n
         for e, n in expected["pii_entities"].items()})


def test_index_keeps_the_shingle_set_of_a_redacted_record_only(tmp_path, monkeypatch):
    """``index/minhash`` commits a shingle set only for the redacted record (its stored text
    is not the text it was validated with); a later near-duplicate of either record is found
    against history with the exact Jaccard of the texts as validated."""
    import pyarrow as pa

    from datanet.privacy.evasion import fold_unicode
    from datanet.privacy.normalise import normalise
    from datanet.store.layout import init_datanet
    from datanet.validators.minhash import MinHashConfig, MinHasher, exact_jaccard

    monkeypatch.setenv("DATANET_PII_KEY", KEY)
    spec = SPEC.replace("[validators.near_duplicate]\nenabled = false",
                        "[validators.near_duplicate]\nenabled = true")
    store = init_datanet(tmp_path / "dn", spec)
    texts = [
        f"Call the bakery on {PHONE} to order the sourdough starter, then feed it twice a "
        "day with equal weights of flour and water, keep it somewhere warm, and wait until "
        "it doubles within six hours before you bake the first loaf of bread.",
        "Toast whole cumin and coriander seeds in a dry pan over medium heat until they "
        "smell fragrant and darken slightly, then tip them onto a cold plate, let them cool "
        "completely, and grind them fresh in a mortar just before cooking the curry tonight.",
    ]
    first = run_datanet(store, [str(write_jsonl(tmp_path / "a.jsonl", [
        record(i, text=t) for i, t in enumerate(texts)]))], runner="DirectRunner")
    assert first.counts["accepted"] == 2
    index = pq.read_table(store.files("index/minhash")[0])
    accepted = pq.read_table(store.files("accepted")[0])
    text_of = dict(zip(accepted.column("contribution_id").to_pylist(),
                       accepted.column("text").to_pylist(), strict=True))
    sets = dict(zip(index.column("contribution_id").to_pylist(),
                    index.column("shingles").to_pylist(), strict=True))
    redacted = next(i for i, t in text_of.items() if "<PHONE_NUMBER>" in t)
    plain = next(i for i in text_of if i != redacted)
    assert sets[plain] is None and len(sets[redacted]) > 30

    def near(text: str) -> str:
        words = text.split()
        words[-3] = "really"
        return " ".join(words)

    second = run_datanet(store, [str(write_jsonl(tmp_path / "b.jsonl", [
        record(i + 2, text=near(t)) for i, t in enumerate(texts)]))], runner="DirectRunner")
    assert second.counts == {"accepted": 0, "rejected": 2, "quarantine": 0, "deadletter": 0,
                             "input": 2}
    hasher = MinHasher(MinHashConfig())

    def validated(ts: list[str]) -> pa.ListArray:
        return hasher.sketch(fold_unicode(normalise(pa.array(ts))))[1]

    expected = exact_jaccard(validated(texts), validated([near(t) for t in texts]))
    votes = [v for f in store.files("votes") for v in pq.read_table(f).to_pylist()
             if v["validator"] == "near_duplicate" and v["verdict"] == "reject"]
    got = {json.loads(v["details"])["matched"]: json.loads(v["details"]) for v in votes}
    assert set(got) == {redacted, plain}
    for i, cid in enumerate((redacted, plain)):
        assert got[cid]["history"] is True
        assert got[cid]["jaccard"] == round(float(expected[i]), 4)
