"""Spam heuristics and flood control.

:class:`SpamValidator` (batch) rejects link farms (``spam_links``), runs of one character
(``spam_repeated_chars``), repeated tokens (``spam_repeated_tokens``), shouting
(``spam_all_caps``), gibberish by character entropy and vowel-less words
(``spam_gibberish``) and blocklisted phrases (``spam_blocklist``; a default list of
crypto-scam / airdrop / "send ETH" and classic commercial spam patterns ships in
``data/spam_blocklist.txt``). Rules run on the normalised text, so homoglyph and zero-width
variants match. There is no published standard for these thresholds; each default is set so
that normal prose passes with a wide margin (measured values are in the comments).

:class:`FloodValidator` (keyed, sharded by contributor) caps the
records one contributor may submit per batch and rejects every record of a contributor who
posts more than ``max_records_per_hour`` in a rolling hour or a cluster of near-duplicates
(``contributor_flood``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import check, check_range
from datanet.validators.base import RuleValidator, first_reason
from datanet.validators.keyed import VOTE_COLUMNS, KeyedValidator, KeyRows, Resolved, Shard
from datanet.validators.textstats import TextStats, utf8_buffers

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "SpamConfig",
    "SpamValidator",
    "FloodConfig",
    "FloodValidator",
    "flood_members",
    "flood_votes",
    "default_blocklist",
    "byte_profile",
    "char_entropy",
    "max_char_run",
    "ascii_case_counts",
    "flood_reject",
    "minhash_config",
]

SPAM_REASONS = ("spam_blocklist", "spam_links", "spam_repeated_chars", "spam_repeated_tokens",
                "spam_all_caps", "spam_gibberish")
_LINK_RE = (r"(?i)(?:https?://|\bwww\.)\S+|\b[a-z0-9-]{2,}\.(?:com|net|org|io|xyz|ru|cn|info|biz|top|"
            r"click|link|ly|me|co|tk|gg|app|shop|site|online)\b")


@functools.lru_cache(maxsize=1)
def default_blocklist() -> tuple[str, ...]:
    """The shipped blocklist patterns (comments and blank lines dropped)."""
    text = resources.files("datanet.validators").joinpath("data/spam_blocklist.txt").read_text(
        encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


@dataclass(frozen=True)
class SpamConfig:
    """``[validators.spam]``."""

    #: Regex patterns (RE2, case-insensitive); empty = the shipped default list.
    blocklist: tuple[str, ...] = ()
    #: Patterns added to the blocklist in use.
    extra_blocklist: tuple[str, ...] = ()
    #: A Q&A answer may cite a source or two; more than 3 links is a link farm.
    max_links: int = 3
    #: Links per word: 0.1 = one link every ten words.
    max_link_ratio: float = 0.1
    #: Longest run of one character ("!!!!!!!!!!", "aaaaaaaaaa"); prose stays under 4.
    max_char_run: int = 10
    #: The same word this many times in a row ("buy buy buy buy").
    max_token_run: int = 4
    #: Share of the words taken by the most frequent non-stop word (prose: < 0.1).
    max_top_word_ratio: float = 0.3
    #: Uppercase / all ASCII letters, checked from min_letters letters on (prose: ~0.03).
    max_caps_ratio: float = 0.5
    min_letters: int = 20
    #: Shannon entropy of the characters in bits, checked from min_entropy_chars on. English
    #: prose measures 4.0-4.5; one repeated syllable is below 3, random base64 above 5.5.
    min_entropy: float = 3.0
    max_entropy: float = 5.5
    min_entropy_chars: int = 40
    #: Share of alphabetic words (>= 4 letters) without a vowel (a e i o u y); prose ~0.
    max_vowelless_ratio: float = 0.25
    disable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        import re

        for i, pattern in enumerate((*self.blocklist, *self.extra_blocklist)):
            try:
                re.compile(pattern)
            except re.error as exc:
                check(False, f"blocklist[{i}]", pattern, f"must be a valid regex ({exc})")
        check_range("max_links", self.max_links, 0)
        check_range("max_link_ratio", self.max_link_ratio, 0.0, 1.0)
        check_range("max_char_run", self.max_char_run, 2)
        check_range("max_token_run", self.max_token_run, 2)
        check_range("max_top_word_ratio", self.max_top_word_ratio, 0.0, 1.0)
        check_range("max_caps_ratio", self.max_caps_ratio, 0.0, 1.0)
        check_range("min_letters", self.min_letters, 0)
        check_range("min_entropy", self.min_entropy, 0.0, 8.0)
        check_range("max_entropy", self.max_entropy, self.min_entropy, 8.0)
        check_range("min_entropy_chars", self.min_entropy_chars, 0)
        check_range("max_vowelless_ratio", self.max_vowelless_ratio, 0.0, 1.0)
        for i, reason in enumerate(self.disable):
            check(reason in SPAM_REASONS, f"disable[{i}]", reason,
                  f"must be one of {', '.join(SPAM_REASONS)}")


def byte_profile(texts: pa.Array | pa.ChunkedArray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per text, from one compiled pass over its UTF-8 bytes: (Shannon entropy in bits of the
    byte distribution, ASCII uppercase letters, ASCII letters, longest run of one byte)."""
    from datanet.validators._kernels import byte_stats

    data, offsets = utf8_buffers(texts)
    hist, upper, letters, longest = byte_stats(data, offsets)
    counts = hist.astype(float)
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    # p log p of the bytes that occur (a quarter of the 256 columns in English text), summed
    # over the full rows: the same reduction, so the same bits as over every column
    nz = p > 0
    present = p[nz]
    terms = np.zeros_like(p)
    terms[nz] = present * np.log2(present)
    return -terms.sum(axis=1), upper, letters, longest


def char_entropy(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Shannon entropy (bits) of each text's UTF-8 byte distribution."""
    return byte_profile(texts)[0]


def ascii_case_counts(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (ASCII uppercase letters, ASCII letters), counted on the UTF-8 bytes."""
    return byte_profile(texts)[1:3]


def max_char_run(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Longest run of one repeated byte in each text (ASCII characters in practice)."""
    return byte_profile(texts)[3]


class SpamValidator(RuleValidator):
    """Heuristic spam filter over the normalised text."""

    name: ClassVar[str] = "spam"
    config_cls = SpamConfig
    summary = ("Spam: blocklisted phrases, link farms, character and token runs, shouting, "
               "gibberish.")
    reason_codes = SPAM_REASONS

    def __init__(self, config: SpamConfig, spec: Any = None):
        self.config = config
        patterns = (*(config.blocklist or default_blocklist()), *config.extra_blocklist)
        # matched against lowercased text, so no (slower) case-insensitive RE2 flag
        self.blocklist_re = "|".join(f"(?:{p})" for p in patterns)

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        c = self.config
        s = TextStats.of(batch)
        lower = pc.utf8_lower(s.norm)
        links = pc.count_substring_regex(s.norm, _LINK_RE).to_numpy(zero_copy_only=False)
        ids, distinct = s.bare_codes
        content = ~s.stop_word & (s.bare_len > 0)
        from datanet.validators._kernels import ascii_word_shapes, top_count_per_doc

        # per record: the most frequent content word's count and the longest run of one
        # word in a row (one compiled pass)
        top, token_run = top_count_per_doc(s.word_doc.astype(np.int64), ids, content, s.n,
                                           len(distinct))
        entropy, upper, letters, char_run = byte_profile(s.norm)
        # bare words that are 4+ ASCII lowercase letters (``^[a-z]{4,}$``) without a vowel
        alpha4, has_vowel = (a[ids] for a in ascii_word_shapes(*utf8_buffers(distinct)))
        vowelless = alpha4 & ~has_vowel
        n_alpha4 = s.per_doc(s.word_doc[alpha4])
        vowelless_ratio = np.divide(s.per_doc(s.word_doc[vowelless]), n_alpha4,
                                    out=np.zeros(s.n), where=n_alpha4 > 0)
        n_words = np.maximum(s.n_words, 1)
        checked = s.chars >= c.min_entropy_chars
        rules = [
            ("spam_blocklist", pc.match_substring_regex(lower, self.blocklist_re)),
            ("spam_links", (links > c.max_links) | (links / n_words > c.max_link_ratio)),
            ("spam_repeated_chars", char_run >= c.max_char_run),
            ("spam_repeated_tokens", (token_run >= c.max_token_run)
             | ((s.n_words >= 10) & (top / n_words > c.max_top_word_ratio))),
            ("spam_all_caps", (letters >= c.min_letters)
             & (upper > c.max_caps_ratio * np.maximum(letters, 1))),
            ("spam_gibberish", (checked & ((entropy < c.min_entropy) | (entropy > c.max_entropy)))
             | (vowelless_ratio > c.max_vowelless_ratio)),
        ]
        off = set(c.disable)
        return first_reason([(r, m) for r, m in rules if r not in off], s.n)


# ---------------------------------------------------------------------------- flood control


@dataclass(frozen=True)
class FloodConfig:
    """``[validators.flood]``: per-contributor caps within one batch."""

    #: Records one contributor may submit per batch; later ones (by submitted_at, id) are
    #: rejected. Generous: it stops a script dumping a file, not a prolific contributor.
    max_records_per_contributor: int = 1000
    #: Records one contributor may submit within any rolling hour; above it the contributor
    #: is flooding and every record of theirs in the batch is rejected. A person writing
    #: real answers does not post 20 in an hour; a script does.
    max_records_per_hour: int = 20
    #: A contributor with this many records that near-duplicate another of their own
    #: records in the batch (MinHash settings of ``near_duplicate``) is flooding: every
    #: record of theirs in the batch is rejected. 0 disables this check.
    max_near_duplicates: int = 5
    #: Contributor shards of the keyed shuffle (its parallelism); any value gives the same
    #: votes.
    shards: int = 32

    def __post_init__(self) -> None:
        check_range("shards", self.shards, 1, 65536)
        check_range("max_records_per_contributor", self.max_records_per_contributor, 1)
        check_range("max_records_per_hour", self.max_records_per_hour, 1)
        check_range("max_near_duplicates", self.max_near_duplicates, 0)


def flood_reject(ranked_ids: list[str], sig: np.ndarray, config: FloodConfig,
                 minhash: Any, submitted_at: list[int] | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """Flood decisions for one contributor's records (ranked earliest first).

    ``submitted_at`` (µs, same order) enables the hourly rate check. Returns
    ``contribution_id -> details`` of the records to reject.
    """
    from datanet.validators._kernels import near_earlier_count
    from datanet.validators.minhash import lsh_params

    out: dict[str, dict[str, Any]] = {}
    n = len(ranked_ids)
    if submitted_at is not None and n > config.max_records_per_hour:
        ts = np.sort(np.asarray(submitted_at, dtype=np.int64))
        in_hour = np.arange(n) - np.searchsorted(ts, ts - 3_600_000_000, side="left") + 1
        peak = int(in_hour.max())
        if peak > config.max_records_per_hour:
            details = {"kind": "rate", "count": peak, "limit": config.max_records_per_hour}
            return {cid: details for cid in ranked_ids}
    if config.max_near_duplicates and n > config.max_near_duplicates:
        bands, rows = lsh_params(minhash)
        near = near_earlier_count(np.ascontiguousarray(sig, dtype=np.uint32), bands, rows,
                                  float(minhash.threshold))
        if near >= config.max_near_duplicates:
            details = {"kind": "near_duplicates", "count": near,
                       "limit": config.max_near_duplicates}
            return {cid: details for cid in ranked_ids}
    cap = config.max_records_per_contributor
    for cid in ranked_ids[cap:]:
        out[cid] = {"kind": "records", "count": n, "limit": cap}
    return out


class FloodValidator(KeyedValidator):
    """Flood control per contributor: key rows sharded by contributor, a shard decided with
    one Arrow sort (:func:`flood_votes`)."""

    name: ClassVar[str] = "flood"
    config_cls = FloodConfig
    summary = ("Flood control per contributor: records per batch and per hour, clusters of near-"
               "duplicates.")
    reason_codes = ("contributor_flood",)

    def __init__(self, config: FloodConfig, spec: DatanetSpec | None = None):
        self.config = config
        self.spec = spec
        self.minhash = minhash_config(spec)

    def key(self, batch: pa.RecordBatch) -> KeyRows:
        from datanet.validators.keyed import hex64

        members = flood_members(batch, self.config, self.minhash)
        return KeyRows(members.add_column(0, "shard_key", pa.array(
            hex64(members.column("contributor")))).append_column(
            "_row", pa.array(np.arange(batch.num_rows, dtype=np.int32))))

    def resolve(self, shard: Shard) -> Resolved:
        members = shard.rows
        votes = flood_votes(members.drop_columns(["shard_key", "_row", "_part", "_history"]),
                            self.config, self.minhash)
        reject = pc.equal(votes.column("verdict"), "reject")
        flagged = pc.count_distinct(members.column("contributor").filter(reject)).as_py()
        out = votes.append_column("_part", members.column("_part")).append_column(
            "_row", members.column("_row")).filter(reject)
        return Resolved(votes=out.select(list(VOTE_COLUMNS)),
                        counters={"contributors_flagged": flagged})


def flood_members(batch: pa.RecordBatch | pa.Table, config: FloodConfig,
                  minhash: Any) -> pa.Table:
    """What flood control needs of each record: contributor, id, submitted_at (µs) and, when
    the near-duplicate check is on, the MinHash signature (``fixed_size_binary``)."""
    from datanet.privacy.evasion import fold_unicode
    from datanet.validators.minhash import MinHasher

    table = pa.table({
        "contributor": batch.column("contributor"),
        "contribution_id": batch.column("contribution_id"),
        "submitted_at": batch.column("submitted_at").cast(pa.int64()),
    })
    if config.max_near_duplicates:
        # the homoglyph fold near_duplicate sketches: a look-alike flood clusters like
        # its plain copy (and the batch's MinHash is near-duplicate's, computed once)
        sig = MinHasher(minhash).signatures(fold_unicode(batch.column("text_norm"))
                                            ).astype("<u4")
        width = sig.shape[1] * 4
        table = table.append_column("signature", pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), len(sig), [None, pa.py_buffer(sig.tobytes())]))
    return table


def flood_votes(members: pa.Table, config: FloodConfig, minhash: Any) -> pa.Table:
    """One ``flood`` vote per row of ``members`` (see :func:`flood_members`), in row order.

    Contributors are grouped with one Arrow sort; only those with more records than the
    smallest limit (a handful, normally) go through :func:`flood_reject`.
    """
    from datanet.validators.base import make_votes

    n = members.num_rows
    order = pc.sort_indices(members, [("contributor", "ascending"),
                                      ("submitted_at", "ascending"),
                                      ("contribution_id", "ascending")]).to_numpy()
    who = members.column("contributor").to_numpy(zero_copy_only=False)[order]
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]]) if n else np.array([], int)
    smallest = min(config.max_records_per_contributor, config.max_records_per_hour,
                   config.max_near_duplicates or config.max_records_per_contributor)
    verdicts = np.full(n, "accept", dtype=object)
    reasons = np.full(n, None, dtype=object)
    details = np.full(n, None, dtype=object)
    for begin, end in zip(starts, np.r_[starts[1:], n], strict=True):
        if end - begin <= smallest:
            continue
        rows = order[begin:end]
        group = members.take(pa.array(rows))
        ids = group.column("contribution_id").to_pylist()
        if "signature" in group.column_names:
            sig = np.frombuffer(b"".join(group.column("signature").to_pylist()),
                                dtype="<u4").reshape(len(rows), minhash.num_perm)
        else:
            sig = np.zeros((len(rows), 0), dtype=np.uint32)
        rejected = flood_reject(ids, sig, config, minhash,
                                group.column("submitted_at").to_pylist())
        for row, cid in zip(rows, ids, strict=True):
            if cid in rejected:
                verdicts[row] = "reject"
                reasons[row] = "contributor_flood"
                details[row] = rejected[cid]
    return make_votes(members.column("contribution_id"), FloodValidator.name,
                      verdicts.tolist(), reasons=reasons.tolist(), details=details.tolist())


def minhash_config(spec: Any) -> Any:
    """The near-duplicate MinHash settings of the spec (defaults without a spec)."""
    from datanet.validators.minhash import MinHashConfig

    if spec is None:
        return MinHashConfig()
    from datanet.validators.registry import validator_config

    return validator_config(spec, "near_duplicate")
