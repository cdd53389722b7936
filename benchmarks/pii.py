"""PII benchmark: vanilla Presidio AnalyzerEngine vs datanet's pii validator, same run.

Corpus: deterministic (Faker, fixed seed) ~2 KB English documents; a share of them carry
planted, labelled personal data (e-mail, phone, card, IBAN, IP, SSN, BTC / ETH wallet), half
of it obfuscated the way people dodge filters (``jane at example dot com``, ``[at]``,
homoglyphs, fullwidth or Arabic-Indic digits, zero-width characters, spaced-out digits).
Everyday numbers (years, amounts, page numbers) sit in many clean documents too.

Reports per entity precision / recall for both, docs/s for both (medians of ``--repeat``
vanilla runs, each cut into ``--slices`` parts with a whole run of ours after each part, so
slow and fast phases of the machine hit both alike; wall clock and this process's CPU time;
ours from a fresh validator per run, set up outside the clock), and the parity of the fast
path (windowed Presidio) with ``AnalyzerEngine.analyze`` run on whole records: the
detector's findings (offsets, entity, score) and the timed run's vote spans, on every
document.

    PYTHONPATH=. python benchmarks/pii.py --docs 2000 --pii-rate 0.2 --json out.json

Vanilla = ``AnalyzerEngine(nlp_engine=NoOpNlpEngine)`` with Presidio's default registry,
``analyze(text, "en", entities=<the 7 default entities>, score_threshold=0.3)``: the same
pattern recognizers datanet uses (no spaCy model is installed here; with one, vanilla would be
slower still). Its EmailRecognizer calls ``tldextract.extract``, which would download the
suffix list; the benchmark points tldextract at its bundled snapshot so both run offline.
Ours turns on python-phonenumbers' pattern cache (a process-wide switch), so vanilla runs
with it too (it makes vanilla ~25% faster; the ratio does not profit from it).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
            "US_SSN", "CRYPTO"]
ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і",
              "A": "А", "B": "В", "E": "Е", "K": "К", "M": "М", "O": "О", "T": "Т"}
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class Label:
    entity: str
    start: int
    end: int
    obfuscated: bool


def base58check(payload: bytes) -> str:
    """Bitcoin base58check encoding (for valid P2PKH test addresses)."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


class Corpus:
    """Deterministic labelled documents."""

    def __init__(self, seed: int):
        from faker import Faker

        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)

    # -- values --------------------------------------------------------------------------
    def phone(self) -> str:
        import phonenumbers

        while True:
            raw = self.fake.numerify(self.rng.choice(
                ["(###) ###-####", "###-###-####", "###.###.####", "+1 ### ### ####"]))
            try:  # "011 ..." reads as the US international prefix + a calling code
                num = phonenumbers.parse(raw, "US")
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                return raw

    def card(self) -> str:
        digits = self.fake.credit_card_number(
            card_type=self.rng.choice(["visa16", "mastercard", "amex", "discover"]))
        style = self.rng.choice(["plain", "space", "dash"])
        if style == "plain" or len(digits) != 16:
            return digits
        sep = " " if style == "space" else "-"
        return sep.join(digits[i:i + 4] for i in range(0, 16, 4))

    def iban(self) -> str:
        iban = self.fake.iban()
        if self.rng.random() < 0.5:
            return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return iban

    def ip(self) -> str:
        return self.fake.ipv4() if self.rng.random() < 0.6 else self.fake.ipv6()

    def wallet(self) -> str:
        payload = bytes(self.rng.getrandbits(8) for _ in range(20))
        if self.rng.random() < 0.5:
            return base58check(b"\x00" + payload)
        from eth_utils import to_checksum_address

        return to_checksum_address(payload)

    def value(self, entity: str) -> str:
        return {
            "EMAIL_ADDRESS": self.fake.email,
            "PHONE_NUMBER": self.phone,
            "CREDIT_CARD": self.card,
            "IBAN_CODE": self.iban,
            "IP_ADDRESS": self.ip,
            "US_SSN": self.fake.ssn,
            "CRYPTO": self.wallet,
        }[entity]()

    # -- obfuscations --------------------------------------------------------------------
    def obfuscate(self, entity: str, value: str) -> str:
        rng = self.rng
        if entity == "EMAIL_ADDRESS":
            kind = rng.choice(["words", "brackets", "homoglyph", "fullwidth", "zw"])
            if kind == "words":
                return value.replace("@", " at ").replace(".", " dot ")
            if kind == "brackets":
                return value.replace("@", " [at] ").replace(".", " [dot] ")
        else:
            choices = ["fullwidth", "zw", "homoglyph"]
            if entity in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN"):
                choices += ["spaced", "arabic"]
            if entity == "IP_ADDRESS" and ":" not in value:
                choices += ["arabic"]
            kind = rng.choice(choices)
        if kind == "fullwidth":
            return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)
        if kind == "arabic":
            return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in value)
        if kind == "spaced":
            return " ".join(c for c in value if c != " ")
        if kind == "homoglyph":
            out = [HOMOGLYPHS.get(c, c) if rng.random() < 0.5 else c for c in value]
            if out == list(value):  # nothing to swap: fall back to a zero-width split
                return self.obfuscate_zw(value)
            return "".join(out)
        return self.obfuscate_zw(value)

    def obfuscate_zw(self, value: str) -> str:
        pos = sorted(self.rng.sample(range(1, len(value)), k=min(2, len(value) - 1)))
        out, last = [], 0
        for p in pos:
            out.append(value[last:p])
            out.append(self.rng.choice(ZW))
            last = p
        out.append(value[last:])
        return "".join(out)

    # -- documents -----------------------------------------------------------------------
    def numbers_sentence(self) -> str:
        r = self.rng
        return r.choice([
            f"In {r.randint(1950, 2030)} the team shipped {r.randint(2, 90000)} units.",
            f"See page {r.randint(1, 400)} of the {r.randint(1990, 2025)} report.",
            f"The budget was ${r.randint(1000, 9_999_999):,} over {r.randint(2, 36)} months.",
            f"Order {r.randint(10000, 99999)} shipped on {self.fake.date()}.",
        ])

    def document(self, pii: bool, size: int = 2048) -> tuple[str, list[Label]]:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size - 200:
            parts.append(self.fake.paragraph(nb_sentences=5))
            if self.rng.random() < 0.3:
                parts.append(self.numbers_sentence())
        labels: list[Label] = []
        if not pii:
            return " ".join(parts), labels
        planted = {}
        for _ in range(self.rng.randint(1, 3)):
            entity = self.rng.choice(ENTITIES)
            value = self.value(entity)
            obfuscated = self.rng.random() < 0.5
            if obfuscated:
                value = self.obfuscate(entity, value)
            lead = self.rng.choice(["Contact:", "Details", "Use", "My info is", "Ref"])
            idx = self.rng.randrange(len(parts) + 1)
            parts.insert(idx, f"{lead} {value} thanks.")
            planted[id(parts[idx])] = (entity, len(lead) + 1, len(value), obfuscated)
        text, pos = [], 0
        for part in parts:
            if id(part) in planted:
                entity, off, length, obf = planted[id(part)]
                labels.append(Label(entity, pos + off, pos + off + length, obf))
            text.append(part)
            pos += len(part) + 1
        return " ".join(text), labels


def score(findings: list[list[tuple[str, int, int]]], labels: list[list[Label]]) -> dict:
    """Per entity: recall (labels overlapped by a finding of that entity), precision."""
    tp_l: dict[str, int] = defaultdict(int)
    n_l: dict[str, int] = defaultdict(int)
    tp_l_obf: dict[str, int] = defaultdict(int)
    n_l_obf: dict[str, int] = defaultdict(int)
    tp_f: dict[str, int] = defaultdict(int)
    n_f: dict[str, int] = defaultdict(int)
    for found, labs in zip(findings, labels, strict=True):
        for lab in labs:
            hit = any(e == lab.entity and s < lab.end and lab.start < t for e, s, t in found)
            n_l[lab.entity] += 1
            tp_l[lab.entity] += hit
            if lab.obfuscated:
                n_l_obf[lab.entity] += 1
                tp_l_obf[lab.entity] += hit
        for e, s, t in found:
            if e not in ENTITIES:
                continue
            n_f[e] += 1
            tp_f[e] += any(lab.entity == e and s < lab.end and lab.start < t for lab in labs)
    out = {}
    for e in ENTITIES:
        out[e] = {
            "labels": n_l[e],
            "recall": round(tp_l[e] / n_l[e], 4) if n_l[e] else None,
            "recall_obfuscated": round(tp_l_obf[e] / n_l_obf[e], 4) if n_l_obf[e] else None,
            "findings": n_f[e],
            "precision": round(tp_f[e] / n_f[e], 4) if n_f[e] else None,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--pii-rate", type=float, default=0.2,
                        help="share of documents carrying planted PII")
    parser.add_argument("--seed", type=int, default=20261122)
    from datanet.schemas.spec import PipelineOptions

    parser.add_argument("--batch-rows", type=int, default=PipelineOptions().batch_rows,
                        help="rows per validate() call (default: the pipeline's batch_rows)")
    parser.add_argument("--vanilla-docs", type=int, default=0,
                        help="time vanilla on the first N docs only (0 = all)")
    parser.add_argument("--phone-regions", default="",
                        help="comma-separated regions for ours (default: Presidio's 8)")
    parser.add_argument("--parity-docs", type=int, default=0,
                        help="parity with whole-record analyze on the first N docs (0 = all)")
    parser.add_argument("--slices", type=int, default=5,
                        help="parts of each vanilla run, with a run of ours after each")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed vanilla runs, each cut into --slices parts with a run of "
                             "ours after each; the medians are reported")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import phonenumbers
    import pyarrow as pa
    import tldextract
    import tldextract.tldextract as tld_module
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    from datanet.privacy.detector import PiiDetector
    from datanet.validators.pii import PiiConfig, PiiValidator

    tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    corpus = Corpus(args.seed)
    docs, labels = [], []
    for _ in range(args.docs):
        text, labs = corpus.document(pii=corpus.rng.random() < args.pii_rate)
        docs.append(text)
        labels.append(labs)
    chars = sum(len(d) for d in docs)

    # python-phonenumbers' pattern cache is a process-wide switch; ours turns it on in setup(),
    # so vanilla gets it too (it makes vanilla ~25% faster: the ratio is not inflated by it).
    if hasattr(phonenumbers, "enable_pattern_cache"):
        phonenumbers.enable_pattern_cache()
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    vanilla = AnalyzerEngine(nlp_engine=nlp)
    vanilla.analyze(docs[0], language="en", entities=ENTITIES, score_threshold=0.3)
    gc.freeze()  # long-lived engine state out of the cyclic GC (as datanet's workers do)
    n_v = args.vanilla_docs or len(docs)
    regions = tuple(r for r in args.phone_regions.split(",") if r)

    def run_vanilla(part: list[str]) -> tuple[float, float, list[list[tuple[str, int, int]]]]:
        t0, c0 = time.perf_counter(), time.process_time()
        found = [[(r.entity_type, r.start, r.end) for r in
                  vanilla.analyze(d, language="en", entities=ENTITIES, score_threshold=0.3)]
                 for d in part]
        return time.perf_counter() - t0, time.process_time() - c0, found

    def run_ours() -> tuple[float, float, list[Any], PiiValidator]:
        # A fresh validator per run (its caches start empty), set up and warmed outside the
        # clock as a pipeline worker's setup() would be.
        validator = PiiValidator(PiiConfig(phone_regions=regions))
        validator.setup()
        validator.validate(pa.record_batch({"contribution_id": ["w"], "text": [docs[0]]}))
        validator.detector._cache.clear()
        gc.freeze()  # as the pipeline's worker does after setup (vanilla's state is frozen too)
        # Input batches are built and the votes decoded outside the clock: only validate()
        # is timed (vanilla's clock holds only analyze() calls on the same strings).
        batches = [pa.record_batch({"contribution_id": [str(i) for i in range(len(chunk))],
                                    "text": chunk})
                   for chunk in (docs[lo:lo + args.batch_rows]
                                 for lo in range(0, len(docs), args.batch_rows))]
        results = []
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in batches:
            results.append(validator.validate(batch))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        gc.unfreeze()  # as the worker's teardown does: this validator may be collected
        return wall, cpu, results, validator

    # Finely interleaved, so that load from other processes and the machine's slow and fast
    # phases hit both alike: each vanilla run is cut into --slices parts with one full run
    # of ours after each part; medians reported (vanilla over runs, ours over all its runs).
    t_v_runs: list[float] = []
    t_o_runs: list[float] = []
    c_v_runs: list[float] = []
    c_o_runs: list[float] = []
    bounds = [round(k * n_v / args.slices) for k in range(args.slices + 1)]
    for _ in range(args.repeat):
        t_v = c_v = 0.0
        v_found = []
        for lo, hi in itertools.pairwise(bounds):
            t, c, part = run_vanilla(docs[lo:hi])
            t_v += t
            c_v += c
            v_found += part
            t, c, results, validator = run_ours()
            t_o_runs.append(t)
            c_o_runs.append(c)
        t_v_runs.append(t_v)
        c_v_runs.append(c_v)
    # The last run's votes: rejections and the spans each document's votes carry.
    ours: list[list[tuple[str, int, int]]] = []
    rejected = 0
    for result in results:
        rejected += sum(v == "reject" for v in result.votes.column("verdict").to_pylist())
        for d in result.votes.column("details").to_pylist():
            spans = json.loads(d)["spans"] if d else []
            ours.append([(e, s, t) for s, t, e, _ in spans])
    t_vanilla = statistics.median(t_v_runs)
    t_ours = statistics.median(t_o_runs)
    # CPU time of this process: what the docs/s would be without other processes' load.
    c_vanilla = statistics.median(c_v_runs)
    c_ours = statistics.median(c_o_runs)

    # Parity of the fast path: windowed detection == AnalyzerEngine.analyze on whole views.
    full = PiiDetector(validator.detector.entities, windowed=False, phone_regions=regions)
    n_p = min(len(docs), args.parity_docs or len(docs))
    slow = full.detect(docs[:n_p])
    # Findings (offsets, entity, score) of the fast path, and the timed run's vote spans.
    fast = PiiDetector(validator.detector.entities, phone_regions=regions).detect(docs[:n_p])
    parity_docs = sum(a == b for a, b in zip(fast, slow, strict=True))
    parity_votes = sum(sorted(o) == sorted((f.entity, f.start, f.end) for f in w)
                       for o, w in zip(ours[:n_p], slow, strict=True))
    # Same findings as vanilla on documents without obfuscation (datanet adds ETH wallets).
    plain = [i for i in range(n_v) if not any(lab.obfuscated for lab in labels[i])]
    same_plain = sum(
        sorted(x for x in ours[i] if not (x[0] == "CRYPTO" and docs[i][x[1]:x[1] + 2] == "0x"))
        == sorted(v_found[i]) for i in plain)

    report = {
        "docs": len(docs),
        "phone_regions": list(regions) or "presidio default (8)",
        "avg_chars": round(chars / len(docs)),
        "pii_docs": sum(bool(labs) for labs in labels),
        "labels": sum(len(labs) for labs in labels),
        "vanilla_docs_per_s": round(n_v / t_vanilla, 1),
        "ours_docs_per_s": round(len(docs) / t_ours, 1),
        "speedup": round((len(docs) / t_ours) / (n_v / t_vanilla), 1),
        "cpu_vanilla_docs_per_s": round(n_v / c_vanilla, 1),
        "cpu_ours_docs_per_s": round(len(docs) / c_ours, 1),
        "cpu_speedup": round((len(docs) / c_ours) / (n_v / c_vanilla), 1),
        "runs": args.repeat,
        "ours_runs": len(t_o_runs),
        "vanilla_docs_per_s_runs": [round(n_v / t, 1) for t in t_v_runs],
        "ours_docs_per_s_runs": [round(len(docs) / t, 1) for t in t_o_runs],
        "ours_rejected": rejected,
        "parity_fast_vs_whole_record": f"{parity_docs}/{n_p}",
        "parity_timed_votes_vs_whole_record": f"{parity_votes}/{n_p}",
        "same_as_vanilla_on_plain_docs": f"{same_plain}/{len(plain)}",
        "vanilla": score(v_found, labels[:n_v]),
        "ours": score(ours, labels),
        "detector_stats": vars(validator.detector.stats),
    }
    print(json.dumps(report, indent=2))
    print(f"\n{'entity':<14} {'labels':>6} {'vanilla R':>9} {'ours R':>7} {'ours R(obf)':>11} "
          f"{'vanilla P':>9} {'ours P':>7}")
    for e in ENTITIES:
        v, o = report["vanilla"][e], report["ours"][e]
        print(f"{e:<14} {o['labels']:>6} {v['recall']!s:>9} {o['recall']!s:>7} "
              f"{o['recall_obfuscated']!s:>11} {v['precision']!s:>9} {o['precision']!s:>7}")
    print(f"\ndocs/s (medians of {args.repeat} / {len(t_o_runs)} runs) vanilla "
          f"{report['vanilla_docs_per_s']}  ours "
          f"{report['ours_docs_per_s']}  = x{report['speedup']} vanilla (CPU time: "
          f"{report['cpu_vanilla_docs_per_s']} vs {report['cpu_ours_docs_per_s']} = "
          f"x{report['cpu_speedup']}); parity with whole-record AnalyzerEngine.analyze "
          f"{report['parity_fast_vs_whole_record']} docs (timed votes "
          f"{report['parity_timed_votes_vs_whole_record']}); same as vanilla on plain docs "
          f"{report['same_as_vanilla_on_plain_docs']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
