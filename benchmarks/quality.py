"""Quality / spam / language throughput on ~1 KB English records.

1. The four heuristic quality validators (Gopher quality + repetition, C4, FineWeb),
   vectorised over Arrow batches, against a per-record pure-Python implementation of the
   same rules written the usual way (datatrove-style loops over words and lines), same
   documents, same run; the two must agree on every record.
2. Records/s of every batch validator at its defaults.

Run: ``python -m benchmarks.quality [--docs 4000]``.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import pyarrow as pa

from benchmarks.corpus import records
from datanet.privacy.normalise import normalise
from datanet.validators.quality import (
    DUP_NGRAMS,
    POLICY_PHRASES,
    STOP_WORDS,
    TOP_NGRAMS,
    C4QualityConfig,
    FineWebQualityConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
)
from datanet.validators.textstats import _PUNCT

_STOP = set(STOP_WORDS)


def _dups(items: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        seen.add(x)
    return n, chars


def per_record(text: str, norm: str) -> bool:
    """True if the record passes all four rule sets (the Python baseline)."""
    g, r, c, f = (GopherQualityConfig(), GopherRepetitionConfig(), C4QualityConfig(),
                  FineWebQualityConfig())
    words = norm.split()
    n = len(words)
    bare = [w.lower().strip(_PUNCT) for w in words]
    real = [b for b in bare if b]
    lines = [ln.strip() for ln in re.split(r"\n+", text.replace("\r", "")) if ln.strip()]
    paras = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r", "")) if p.strip()]
    mean = sum(map(len, real)) / len(real) if real else 0
    symbols = norm.count("#") + norm.count("...") + norm.count("…")
    if (n < g.min_words or n > g.max_words
            or (n and not g.min_mean_word_length <= mean <= g.max_mean_word_length)
            or (n and symbols / n > g.max_symbol_word_ratio)
            or (lines and sum(bool(re.match(r"^\s*[•‣◦▪●○\-*–]", ln)) for ln in lines)
                / len(lines) > g.max_bullet_lines_ratio)
            or (lines and sum(ln.endswith(("...", "…")) for ln in lines) / len(lines)
                > g.max_ellipsis_lines_ratio)
            or (n and sum(any(ch.isalpha() for ch in w) for w in words) / n
                < g.min_alpha_words_ratio)
            or (n >= g.stop_words_min_words and sum(b in _STOP for b in bare)
                < g.min_stop_words)):
        return False
    chars = len(text)
    dl, dlc = _dups(lines)
    dp, dpc = _dups(paras)
    if ((lines and dl / len(lines) > r.max_dup_line_frac)
            or (paras and dp / len(paras) > r.max_dup_para_frac)
            or (chars and dlc / chars > r.max_dup_line_char_frac)
            or (chars and dpc / chars > r.max_dup_para_char_frac)):
        return False
    text_chars = len(norm) or 1
    for k, limit in zip(TOP_NGRAMS, r.max_top_ngram_char_frac, strict=True):
        grams = Counter(tuple(words[i:i + k]) for i in range(len(words) - k + 1))
        if grams and n >= r.min_words_for_ngrams:
            gram, count = grams.most_common(1)[0]
            if count > 1 and count * len(" ".join(gram)) / text_chars > limit:
                return False
    for k, limit in zip(DUP_NGRAMS, r.max_dup_ngram_char_frac, strict=True):
        if n < r.min_words_for_ngrams:
            break
        seen: set[tuple[str, ...]] = set()
        covered = [False] * len(words)
        for i in range(len(words) - k + 1):
            gram = tuple(words[i:i + k])
            if gram in seen:
                for j in range(i, i + k):
                    covered[j] = True
            seen.add(gram)
        if sum(len(w) for w, cv in zip(words, covered, strict=True) if cv) / text_chars > limit:
            return False
    low = text.lower()
    if ("lorem ipsum" in low or "{" in text
            or any(len(w) > c.max_word_length for w in words)
            or len(re.findall(r"[.!?]+(\s|$)", norm)) < c.min_sentences
            or ("c4_javascript" not in c.disable and "javascript" in low)
            or ("c4_policy" not in c.disable and any(p in low for p in POLICY_PHRASES))):
        return False
    if lines:
        if sum(ln.endswith((".", "'", '"', "!", "?")) for ln in lines) / len(lines) \
                < f.min_line_punct_ratio:
            return False
        if sum(len(ln) <= f.short_line_length for ln in lines) / len(lines) \
                > f.max_short_line_ratio:
            return False
        if _dups(lines)[1] / max(sum(map(len, lines)), 1) > f.max_char_dup_ratio:
            return False
    return not (n and text.count("\n") / n > f.max_new_line_ratio)


def _batch(texts: list[str]) -> pa.RecordBatch:
    from tests.validators.records import batch

    return batch(texts)


def main() -> None:
    from datanet.validators.registry import enabled_validators
    from tests.validators.records import spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--batch-rows", type=int, default=2000)
    args = ap.parse_args()
    docs = records(args.docs)
    batches = [_batch(docs[i:i + args.batch_rows]) for i in range(0, len(docs),
                                                                 args.batch_rows)]
    validators = {v.name: v for v in enabled_validators(spec())}
    for v in validators.values():
        v.setup()
    quality = [validators[n] for n in ("gopher_quality", "gopher_repetition", "c4_quality",
                                       "fineweb_quality")]
    print(f"== {len(docs)} records of ~{sum(map(len, docs)) / len(docs) / 1e3:.2f} KB, "
          f"batches of {args.batch_rows}")
    norms = normalise(pa.array(docs)).to_pylist()
    t = time.perf_counter()
    base = [per_record(d, n) for d, n in zip(docs, norms, strict=True)]
    base_rate = len(docs) / (time.perf_counter() - t)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        ok: list[bool] = []
        for b in batches:
            votes = [v.validate(b).votes.column("verdict").to_pylist() for v in quality]
            ok.extend(all(x == "accept" for x in row) for row in zip(*votes, strict=True))
        best = max(best, len(docs) / (time.perf_counter() - t))
    agree = sum(a == b for a, b in zip(ok, base, strict=True))
    print(f"quality rules, per-record Python baseline  {base_rate:9.0f} docs/s")
    print(f"quality rules, vectorised (4 validators)   {best:9.0f} docs/s   "
          f"x{best / base_rate:.1f}   (agree on {agree}/{len(docs)}, "
          f"{sum(ok)} accepted)")
    print("== every batch validator at its defaults")
    for name, v in validators.items():
        v.validate(batches[0].slice(0, 10))
        t = time.perf_counter()
        for b in batches:
            v.validate(b)
        print(f"{name:20s} {len(docs) / (time.perf_counter() - t):9.0f} records/s")


if __name__ == "__main__":
    main()
