#!/usr/bin/env python3
"""Generate the cooking-qa example datanet: ~2,000 home-cooking Q&A contributions.

Deterministic (one fixed seed, stdlib ``random`` only, no network): running it again gives
byte-identical files. Clean texts are composed from the templates and word lists in
``vocab.py`` and kept dissimilar by construction (every new clean text must have word
3-shingle Jaccard < 0.3 with every earlier one), so a MinHash near-duplicate filter does not
fire on them. Planted cases (exact and near duplicates, resubmissions, PII, spam, low-quality
and non-English text, a bad field value, a flooding contributor, malformed lines) are counted
and located line by line in ``expected.json`` so tests can assert exact outcomes.

Usage: ``python examples/cooking-qa/generate.py [--out DIR]`` (default: beside this script).
Writes ``contributions/part-1.jsonl``, ``contributions/part-2.jsonl.gz``,
``contributions/part-3.csv``, ``more/part-4.jsonl`` (a second delivery for incremental runs)
and ``expected.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import is_checksum_address, to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vocab

__all__ = ["generate", "contributor_key", "contributor_address", "jaccard", "SEED"]

SEED = 20261001
DATANET = "cooking-qa"
N_CONTRIBUTORS = 150
FLOOD_INDEX = 0  # contributor 0 floods the batch
SPAM_INDICES = range(140, 150)  # dedicated spam accounts
REGULAR_INDICES = range(1, 140)
PART1, PART2, PART3 = (
    "contributions/part-1.jsonl", "contributions/part-2.jsonl.gz", "contributions/part-3.csv",
)
MORE = "more/part-4.jsonl"
FILE_LINES = {PART1: 1200, PART2: 500, PART3: 300}  # data lines (CSV: rows, header excluded)
FILE_WEIGHTS = {PART1: 0.6, PART2: 0.25, PART3: 0.15}
JSONL_FILES = (PART1, PART2)
MALFORMED_PER_FILE = {PART1: 8, PART2: 4}
PLANTED = {
    "exact_duplicate": 40, "duplicate_submission": 5, "near_duplicate": 40, "pii": 40,
    "pii_obfuscated": 6, "spam": 30, "low_quality": 40, "non_english": 15, "bad_field": 3,
}
FLOOD = 60
MORE_CLEAN, MORE_DUPS = 100, 5
MAX_RECORD_BYTES = 16384  # must match datanet.toml [limits]
CLEAN_MAX_JACCARD = 0.3  # word 3-shingles; far below a 0.8 MinHash threshold
NEAR_MIN_JACCARD = 0.9
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
CLIENTS = ("web", "web", "ios", "android", "api")

_WORD = re.compile(r"\w+")
_SLOT = re.compile(r"\{(\w+)\}")
_AN = re.compile(r"\b([Aa]) ([aeiouAEIOU])")


# ----------------------------------------------------------------------------- ids, time


def contributor_key(i: int) -> bytes:
    """Private key of example contributor ``i`` (so tests can sign as that contributor)."""
    return keccak(f"datanet-example/{DATANET}/contributor/{i}".encode())


def contributor_address(i: int) -> str:
    """EIP-55 address of example contributor ``i``."""
    return Account.from_key(contributor_key(i)).address


def iso(ts: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, second precision."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- similarity


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    """Lower-cased word n-grams (``\\w+`` tokens)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int = 3) -> float:
    """Word n-shingle Jaccard similarity of two texts."""
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


class ShingleIndex:
    """Inverted index of word 3-shingles: the max Jaccard of a text against all added ones."""

    def __init__(self) -> None:
        self.postings: dict[tuple[str, ...], list[int]] = {}
        self.sizes: list[int] = []

    def max_jaccard(self, sh: set[tuple[str, ...]]) -> float:
        shared: Counter[int] = Counter()
        for s in sh:
            shared.update(self.postings.get(s, ()))
        return max((c / (len(sh) + self.sizes[d] - c) for d, c in shared.items()), default=0.0)

    def add(self, sh: set[tuple[str, ...]]) -> None:
        doc = len(self.sizes)
        self.sizes.append(len(sh))
        for s in sh:
            self.postings.setdefault(s, []).append(doc)


# ----------------------------------------------------------------------------- texts


def _norm(text: str) -> str:
    """Stdlib mirror of ``datanet.privacy.normalise``: NFKC, drop invisibles, fold spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class Writer:
    """Composes texts from ``vocab`` with one ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.index = ShingleIndex()

    def fill(self, template: str, topic: str, ctx: dict[str, str]) -> str:
        data = vocab.TOPIC_DATA[topic]

        def pick(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in ctx:
                return ctx[key]
            return self.rng.choice(data.get(key) or vocab.COMMON[key])

        return _AN.sub(r"\1n \2", _cap(_SLOT.sub(pick, template)))

    def _frame(self, frames: list[str], slot: str, topic: str, ctx: dict[str, str]) -> str:
        value = self.rng.choice(vocab.TOPIC_DATA[topic][slot])
        return self.fill(self.rng.choice(frames), topic, {**ctx, slot: value})

    def compose(self, topic: str, *, single_line: bool, lo: int = 40, hi: int = 200) -> str:
        """One clean text (question + answer, tip, or question with context), lo..hi words."""
        rng = self.rng
        data = vocab.TOPIC_DATA[topic]
        ctx = {"dish": rng.choice(data["dish"])}
        target = int(lo + (hi - lo) * rng.random() ** 1.4)
        facts = rng.sample(data["facts"], len(data["facts"]))
        kind = rng.choices(("qa", "tip", "ask"), weights=(5, 3, 2))[0]
        head: list[str] = []
        body: list[str] = []
        tail: list[str] = []
        anecdotes = data.get("anecdotes", vocab.ANECDOTES)
        if kind == "qa":
            question = rng.choice(data["questions"])
            head.append(self.fill(question, topic, ctx))
            if rng.random() < 0.5:
                body.append(rng.choice(vocab.OPENERS))
            if "{problem}" in question or "sank" in question:
                body.append(self._frame(vocab.CAUSE_FRAMES, "cause", topic, ctx))
            body.append(self._frame(vocab.FIX_FRAMES, "fix", topic, ctx))
            if rng.random() < 0.35:
                tail.append(self.fill(rng.choice(anecdotes), topic, ctx))
            if rng.random() < 0.4:
                tail.append(rng.choice(vocab.CLOSERS))
        elif kind == "tip":
            body.append(rng.choice(vocab.TIP_PREFIXES) + " " + self.fill(facts.pop(), topic, ctx))
            if rng.random() < 0.6:
                body.append(self._frame(vocab.FIX_FRAMES, "fix", topic, ctx))
            if rng.random() < 0.5:
                tail.append(self.fill(rng.choice(anecdotes), topic, ctx))
        else:
            head.append(self.fill(rng.choice(data["questions"]), topic, ctx))
            for frame in rng.sample(vocab.TRIED_FRAMES, 2):
                body.append(self._frame([frame], "fix", topic, ctx))
            tail.append(rng.choice(("Any advice?", "What am I doing wrong?", "Thanks in advance!",
                                    "Would love to hear what works for you.")))
            target = min(target, 110)

        def words() -> int:
            return sum(len(s.split()) for s in head + body + tail)

        while words() < target and facts:
            body.append(self.fill(facts.pop(), topic, ctx))
        while words() > hi and len(body) > 1:
            body.pop()
        parts = [" ".join(head), " ".join(body + tail)]
        if kind == "qa" and head:
            labels = rng.choice((("Q:", "A:"), ("Question:", "Answer:"), ("", "")))
            sep = " " if single_line else rng.choice(("\n", "\n\n"))
            if labels[0]:
                return f"{labels[0]} {parts[0]}{sep}{labels[1]} {parts[1]}"
            return f"{parts[0]}{sep}{parts[1]}"
        return " ".join(p for p in parts if p)

    def clean(self, topic: str, *, single_line: bool, lo: int = 40, hi: int = 200) -> str:
        """A clean text dissimilar (3-shingle Jaccard < 0.3) to every earlier clean text."""
        for _ in range(200):
            text = self.compose(topic, single_line=single_line, lo=lo, hi=hi)
            n = len(text.split())
            if not lo <= n <= hi:
                continue
            sh = shingles(text)
            if self.index.max_jaccard(sh) < CLEAN_MAX_JACCARD:
                self.index.add(sh)
                return text
        raise RuntimeError(f"could not compose a dissimilar {topic} text")


# ----------------------------------------------------------------------------- planted text

FIRST = ["jane", "maria", "david", "priya", "tom", "aisha", "kenji", "lucia", "omar", "sarah",
         "ben", "chloe", "diego", "hannah", "ravi", "emma"]
LAST = ["doe", "lopez", "kim", "patel", "nguyen", "miller", "okafor", "rossi", "schmidt",
        "walker", "tanaka", "garcia", "brennan", "haddad"]
MAIL = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "protonmail.com"]
AREA = ["212", "312", "415", "503", "617", "646", "702", "773", "818", "919"]
DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the check digit's left neighbour
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    """Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_number(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check."""
    s = iban.replace(" ", "")
    return _iban_number(s[4:] + s[:4]) % 97 == 1


def _iban(rng: random.Random) -> str:
    country = rng.choice(("DE", "GB", "NL"))
    if country == "DE":
        bban = "".join(str(rng.randrange(10)) for _ in range(18))
    elif country == "GB":
        bban = rng.choice(("NWBK", "BARC", "MIDL", "LOYD")) + "".join(
            str(rng.randrange(10)) for _ in range(14))
    else:
        bban = rng.choice(("ABNA", "INGB", "RABO")) + "".join(
            str(rng.randrange(10)) for _ in range(10))
    check = 98 - _iban_number(bban + country + "00") % 97
    iban = f"{country}{check:02d}{bban}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.6 else iban


def _phone(rng: random.Random) -> tuple[str, str]:
    area, last = rng.choice(AREA), f"01{rng.randrange(100):02d}"
    fmt = rng.choice(("({a}) 555-{l}", "{a}-555-{l}", "{a}.555.{l}", "+1 {a} 555 {l}"))
    return fmt.format(a=area, l=last), f"{area}555{last}"


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"


def _card(rng: random.Random) -> str:
    number = _luhn_complete(rng.choice(("4", "51", "52", "53", "54", "55")), 16, rng)
    sep = rng.choice((" ", "-", ""))
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def _eth(rng: random.Random) -> str:
    return to_checksum_address(keccak(rng.randbytes(32))[12:])


def _email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice((f"{first}.{last}", f"{first}{last}{rng.randrange(10, 99)}",
                        f"{first[0]}{last}", f"{first}_{last}"))
    return f"{local}@{rng.choice(MAIL)}"


def _ipv4(rng: random.Random) -> str:
    return rng.choice((
        f"192.168.{rng.randrange(0, 3)}.{rng.randrange(2, 250)}",
        f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(2, 250)}",
        f"203.0.113.{rng.randrange(2, 250)}", f"198.51.100.{rng.randrange(2, 250)}",
    ))


PII_SENTENCES = {
    "EMAIL_ADDRESS": [
        "If you want my grandmother's full recipe card, email me at {v} and I'll send a scan.",
        "Questions about the method? Reach me directly at {v}.",
        "I run a small supper club; write to {v} if you want to join the waiting list.",
    ],
    "PHONE_NUMBER": [
        "Text me at {v} if you live nearby and want some of my sourdough starter.",
        "You can call me at {v} after six and I will walk you through it.",
        "My catering line is {v} if anyone needs help with a party menu.",
    ],
    "CREDIT_CARD": [
        "I ordered the pan online with my card {v}, and it arrived in two days.",
        "The shop charged my card ({v}) twice for the same knife, so check your statements.",
    ],
    "IBAN_CODE": [
        "For the cooking club fee, transfer 20 euros to {v} and put your name in the reference.",
        "Class deposits go to my account {v} before Friday, please.",
    ],
    "IP_ADDRESS": [
        "My smart oven sits at {v} on the home network, so I can start the preheat from my phone.",
        "The recipe app kept failing to sync and its error page said my IP was {v}.",
    ],
    "US_SSN": [
        "The class signup form asked for my social security number, {v}, which feels excessive.",
        "I had to give my SSN {v} to rent the commercial kitchen for the bake sale.",
    ],
    "ETH_ADDRESS": [
        "Our supper club splits grocery costs in crypto; send your share to my wallet {v}.",
        "For the potluck fund, the group wallet is {v}.",
    ],
}
PII_MAKERS = {
    "EMAIL_ADDRESS": _email, "PHONE_NUMBER": lambda r: _phone(r)[0], "CREDIT_CARD": _card,
    "IBAN_CODE": _iban, "IP_ADDRESS": _ipv4, "US_SSN": _ssn, "ETH_ADDRESS": _eth,
}


def obfuscated_pii(rng: random.Random, variant: str) -> tuple[str, str, str]:
    """(entity, value as written, sentence) for an obfuscated PII variant."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if variant == "email_spelled":
        v = f"{first} dot {last} at {rng.choice(('gmail', 'outlook', 'yahoo'))} dot com"
        return "EMAIL_ADDRESS", v, f"Drop me a line at {v} and I'll share the spreadsheet."
    if variant == "email_brackets":
        v = f"{first}{last}{rng.randrange(10, 99)} [at] outlook [dot] com"
        return "EMAIL_ADDRESS", v, f"Full recipe by email: {v}."
    if variant == "phone_spaced":
        digits = _phone(rng)[1]
        v = " ".join(digits)
        return "PHONE_NUMBER", v, f"Call or text {v} for the class schedule."
    if variant == "phone_words":
        digits = _phone(rng)[1]
        v = " ".join(DIGIT_WORDS[int(d)] for d in digits)
        return "PHONE_NUMBER", v, f"My number is {v}, ask for the bakery orders."
    if variant == "card_spaced":
        v = " ".join(_card(rng).replace(" ", "").replace("-", ""))
        return "CREDIT_CARD", v, f"Use my card {v} to pay for the class supplies."
    if variant == "ssn_spaced":
        v = _ssn(rng).replace("-", " ")
        return "US_SSN", v, f"The form wanted my social, {v}, just to book a knife class."
    raise ValueError(variant)


OBFUSCATED = ("email_spelled", "email_brackets", "phone_spaced", "phone_words", "card_spaced",
              "ssn_spaced")

SPAM_DOMAINS = ["cheftoken-airdrop.xyz", "free-eth-kitchen.io", "claim-recipe-coin.net",
                "bestcookdeals.biz", "yummy-crypto.top", "kitchen-gifts.click"]


def spam_text(rng: random.Random, kind: str) -> str:
    """A spam text of one kind."""
    dom = rng.choice(SPAM_DOMAINS)
    tok = rng.choice(("$CHEF", "$YUM", "$SPOON", "$BAKE"))
    n = rng.choice((500, 1000, 2500, 5000, 10000))
    if kind == "airdrop":
        return rng.choice((
            f"🚀 HUGE AIRDROP LIVE NOW! Connect your wallet at https://{dom}/claim and get {n} "
            f"{tok} tokens free before midnight!!! Only {rng.randrange(50, 500)} slots left.",
            f"Official {tok} airdrop for all home cooks 🍳 Verify your wallet at https://{dom} "
            f"within 24 hours to receive {n} tokens. Don't miss out, this is not a drill!",
            f"Congratulations! Your account qualifies for the {tok} community airdrop. Go to "
            f"https://{dom}/airdrop?ref={rng.randrange(10**5, 10**6)} and sign the message to "
            f"unlock your reward.",
        ))
    if kind == "double_eth":
        addr, amt = _eth(rng), rng.choice(("0.1", "0.5", "1", "2"))
        return rng.choice((
            f"Send {amt} ETH to {addr} and receive {float(amt) * 2:g} ETH back instantly. "
            f"Official giveaway, verified by the team. Limited time!",
            f"DOUBLE YOUR ETH 💰 Every transfer to {addr} is returned 2x within minutes. "
            f"Min {amt} ETH. Thousands already paid out!",
            f"Giveaway for recipe lovers: send any amount of ETH to {addr} and we send back "
            f"double to celebrate our launch. Hurry, ends today.",
        ))
    if kind == "free_tokens":
        return rng.choice((
            f"Claim your free tokens now at https://{dom} !!! {n} {tok} waiting for you, no "
            f"fees, instant withdrawal.",
            f"FREE TOKENS for every recipe you post! Register at https://{dom}/signup and claim "
            f"{n} {tok} today.",
            f"You have unclaimed rewards: {n} {tok}. Claim your free tokens at http://{dom}/r/"
            f"{rng.randrange(1000, 9999)} before they expire.",
        ))
    if kind == "link_farm":
        k = rng.randrange(6, 11)
        links = " ".join(
            f"https://{rng.choice(SPAM_DOMAINS)}/{rng.choice(('recipe', 'deal', 'cook', 'buy'))}"
            f"{rng.randrange(100, 999)}" for _ in range(k))
        label = rng.choice(("Best recipes", "Cheap cookware", "Top deals", "More here"))
        return f"{label}: {links}"
    if kind == "shouting":
        return rng.choice((
            "BUY CHEAP KITCHEN KNIVES NOW!!! BEST PRICES GUARANTEED!!! FREE SHIPPING TODAY ONLY "
            "CLICK THE LINK IN MY PROFILE!!!",
            "THIS IS THE BEST RECIPE SITE IN THE WORLD STOP WASTING TIME HERE AND GO THERE NOW "
            "YOU WILL NOT REGRET IT!!!",
            "ATTENTION ALL COOKS!!! MAKE $500 A DAY FROM HOME POSTING RECIPES!!! ASK ME HOW!!!",
            "WORLD'S GREATEST SAUCE!!! ORDER NOW BEFORE IT SELLS OUT!!! LIMITED STOCK!!!",
        ))
    if kind == "repeated_chars":
        return rng.choice((
            "Sooooooooo gooooooood!!!!!!!!!!! Best cookies everrrrrrrrrr!!!!!!! Check my "
            "profileeeeeee!!!!!!!",
            "Wowwwwwwwwwwww amaaaaaazing recipeeeeeeeee 😍😍😍😍😍😍😍😍 follow meeeeeeeeee",
            "yesssssssssssssssssss!!!!!!!!!!!!!!!!!!!!!!!!!!!! deliciousssssssssssssssss",
            "Hahahahahahahahahahahahaha lolllllllllllllll!!!!!!!!!!!!!! nommmmmmmmmmmmm",
        ))
    raise ValueError(kind)


SPAM_KINDS = ["airdrop"] * 6 + ["double_eth"] * 6 + ["free_tokens"] * 5 + ["link_farm"] * 5 \
    + ["shouting"] * 4 + ["repeated_chars"] * 4
LOW_KINDS = ["too_short"] * 8 + ["keyboard_mash"] * 7 + ["repeated_lines"] * 7 \
    + ["lorem_ipsum"] * 6 + ["symbols"] * 6 + ["non_alpha"] * 6
KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890")


def low_quality_text(rng: random.Random, kind: str, writer: Writer, topic: str) -> str:
    """A low-quality text of one kind."""
    if kind == "too_short":
        return rng.choice(vocab.SHORT_JUNK)
    if kind == "keyboard_mash":
        chunks = []
        for _ in range(rng.randrange(6, 12)):
            row = rng.choice(KEY_ROWS)
            start = rng.randrange(len(row) - 3)
            chunks.append(row[start:start + rng.randrange(3, len(row) - start + 1)]
                          + rng.choice(("", ";", "j", "f")))
        return " ".join(chunks)
    if kind == "repeated_lines":
        line = writer.fill(rng.choice(vocab.TOPIC_DATA[topic]["facts"]), topic,
                           {"dish": rng.choice(vocab.TOPIC_DATA[topic]["dish"])})
        return "\n".join([line] * rng.randrange(6, 11))
    if kind == "lorem_ipsum":
        words = [rng.choice(vocab.LOREM) for _ in range(rng.randrange(40, 90))]
        return _cap(" ".join(words)) + "."
    if kind == "symbols":
        syms = ("***", "###", "!!!", "$$$", "%%%", "^^^", "&&&", "+++", "~~~", ">>>", "<<<",
                "===", "---", "|||", "@@@")
        return " ".join(rng.choice(syms) for _ in range(rng.randrange(12, 30)))
    if kind == "non_alpha":
        toks = [rng.choice((f"{rng.randrange(100, 500)}°", f"{rng.randrange(1, 12)}/"
                            f"{rng.choice((2, 3, 4, 8))}", f"{rng.randrange(1, 60)}:"
                            f"{rng.randrange(10, 60)}", f"{rng.randrange(1, 999)}g",
                            f"#{rng.randrange(1, 99)}", "--", "%", "=", f"({rng.randrange(9)})"))
                for _ in range(rng.randrange(15, 35))]
        return " ".join(toks) + " tsp"
    raise ValueError(kind)


def near_variant(text: str, rng: random.Random) -> tuple[str, float] | None:
    """Change one or two words of ``text``; None unless 3- and 5-shingle Jaccard > 0.9."""
    tokens = text.split(" ")
    spots = [i for i, t in enumerate(tokens) if t.strip(".,!?:;").lower() in vocab.SYNONYMS]
    if not spots:
        return None
    for i in rng.sample(spots, min(len(spots), rng.choice((1, 2)))):
        tok = tokens[i]
        core = tok.strip(".,!?:;")
        new = vocab.SYNONYMS[core.lower()]
        if core[:1].isupper():
            new = _cap(new)
        tokens[i] = tok.replace(core, new, 1)
    out = " ".join(tokens)
    j = min(jaccard(text, out, 3), jaccard(text, out, 5))
    return (out, j) if j > NEAR_MIN_JACCARD else None


def exact_variant(text: str, rng: random.Random, variant: str, *, single_line: bool) -> str:
    """A copy of ``text`` that normalises (NFKC, invisibles, whitespace) to the same text."""
    if variant == "identical":
        return text
    if variant == "whitespace":
        words = text.split(" ")
        seps = ["  ", "\t", "   "] + ([] if single_line else ["\n"])
        out = words[0]
        for w in words[1:]:
            out += rng.choice(seps) if rng.random() < 0.15 else " "
            out += w
        return rng.choice(("", " ", "  ")) + out + rng.choice((" ", "  ", "\t"))
    if variant == "zero_width":
        words = text.split(" ")
        for i in rng.sample(range(len(words)), min(len(words), 6)):
            w = words[i]
            if len(w) > 2:
                k = rng.randrange(1, len(w))
                words[i] = w[:k] + rng.choice(("\u200b", "\u200d", "\u2060", "\ufeff")) + w[k:]
        return " ".join(words)
    if variant == "fullwidth":
        words = text.split(" ")
        for i in rng.sample(range(len(words)), min(len(words), 5)):
            words[i] = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in words[i])
        return " ".join(words)
    raise ValueError(variant)


EXACT_VARIANTS = ["identical"] * 20 + ["whitespace"] * 8 + ["zero_width"] * 6 \
    + ["fullwidth"] * 6
NON_EN_TOPICS = ["baking", "technique", "technique", "food_safety", "technique", "baking",
                 "technique", "technique", "food_safety", "baking", "baking", "technique",
                 "food_safety", "technique", "baking"]
BAD_TOPICS = ["desserts", "bbq", "vegan"]


# ----------------------------------------------------------------------------- assembly


class _Rec(dict):
    """A record plus bookkeeping (file, time, planted info) kept out of the output."""

    def __init__(self, file: str, ts: datetime, contributor: str, text: str, topic: str,
                 meta: dict[str, Any], info: dict[str, Any] | None = None):
        super().__init__(contributor=contributor, text=text, submitted_at=iso(ts), topic=topic,
                         metadata=meta)
        self.file, self.ts, self.info, self.line = file, ts, info, 0


def _meta(rng: random.Random) -> dict[str, Any]:
    client = rng.choice(CLIENTS)
    meta: dict[str, Any] = {"lang": "en", "client": client}
    if client in ("ios", "android"):
        meta["app_version"] = rng.choice(("3.4.1", "3.5.0", "3.5.2"))
    return meta


def _malformed(rng: random.Random, addresses: list[str], writer: Writer) -> list[dict[str, Any]]:
    """The malformed JSONL lines: raw bytes with the reason and field intake must report."""
    addr = rng.choice(addresses)
    text = writer.compose("baking", single_line=True)
    ts = iso(OCT + timedelta(seconds=rng.randrange(31 * 86400)))
    good = json.dumps({"contributor": addr, "text": text, "submitted_at": ts,
                       "topic": "baking", "metadata": {"lang": "en", "client": "web"}},
                      ensure_ascii=False)

    def obj(**kw: Any) -> bytes:
        base = {"contributor": addr, "text": text, "submitted_at": ts, "topic": "technique",
                "metadata": {"lang": "en", "client": "api"}}
        base.update(kw)
        return json.dumps({k: v for k, v in base.items() if v is not None},
                          ensure_ascii=False).encode()

    wrong_case = addresses[3]
    flipped = "0x" + "".join(c.swapcase() if c.isalpha() and i % 3 == 0 else c
                             for i, c in enumerate(wrong_case[2:]))
    assert not is_checksum_address(flipped) and flipped.lower() != flipped
    long_text = " ".join(writer.compose(t, single_line=True, lo=150, hi=200)
                         for t in vocab.TOPICS * 14)
    out = [
        ("invalid_json", None, "truncated object", good[: len(good) // 2].encode()),
        ("invalid_json", None, "single quotes",
         ("{'contributor': '" + addr + "', 'text': 'Rest the dough for an hour before rolling "
          "it out, or it will shrink back in the pan.'}").encode()),
        ("invalid_utf8", None, "latin-1 bytes",
         ('{"contributor": "' + addr + '", "text": "How do I stop my crème brûlée from '
          'turning grainy when I bake it in a water bath?", "topic": "technique"}'
          ).encode("latin-1")),
        ("invalid_utf8", None, "stray bytes", good.encode()[:60] + b"\xff\xfe\xfa" + good.encode()
         [60:]),
        ("missing_field", "text", "no text", obj(text=None, body=text)),
        ("missing_field", "contributor", "no contributor", obj(contributor=None)),
        ("bad_type", "text", "text is a number", obj(text=42)),
        ("bad_type", "text", "text is a list",
         obj(text=["Preheat the oven to 375°F.", "Cream the butter and sugar."])),
        ("bad_address", "contributor", "wrong length", obj(contributor=addr[:-2])),
        ("bad_address", "contributor", "bad checksum", obj(contributor=flipped)),
        ("bad_address", "contributor", "not an address", obj(contributor="chef_maria_88")),
        ("too_large", None, f"line over {MAX_RECORD_BYTES} bytes", obj(text=long_text)),
    ]
    assert len(out[-1][3]) > MAX_RECORD_BYTES + 1
    return [{"reason": r, "field": f, "note": n, "raw": raw} for r, f, n, raw in out]


def generate(out_dir: str | Path) -> dict[str, Any]:
    """Write every example file under ``out_dir``; return the expected-outcome summary."""
    rng = random.Random(SEED)
    writer = Writer(rng)
    out = Path(out_dir)
    addresses = [contributor_address(i) for i in range(N_CONTRIBUTORS)]
    regular_w = [rng.uniform(0.4, 1.6) for _ in REGULAR_INDICES]

    def regular(exclude: str | None = None) -> str:
        while True:
            a = addresses[rng.choices(REGULAR_INDICES, weights=regular_w)[0]]
            if a != exclude:
                return a

    def oct_ts(lo: datetime = OCT, hi: datetime = NOV) -> datetime:
        return lo + timedelta(seconds=rng.randrange(int((hi - lo).total_seconds())))

    # 1. where each planted record goes
    kinds: list[tuple[str, str]] = (
        [("exact_duplicate", v) for v in EXACT_VARIANTS]
        + [("duplicate_submission", "same_contributor")] * PLANTED["duplicate_submission"]
        + [("near_duplicate", "word_swap")] * PLANTED["near_duplicate"]
        + [("pii", e) for e in sorted(PII_MAKERS) for _ in range(PLANTED["pii"] // 7)]
        + [("pii", "EMAIL_ADDRESS"), ("pii", "PHONE_NUMBER"), ("pii", "CREDIT_CARD"),
           ("pii", "US_SSN"), ("pii", "IBAN_CODE")][: PLANTED["pii"] - 7 * (PLANTED["pii"] // 7)]
        + [("pii_obfuscated", v) for v in OBFUSCATED]
        + [("spam", k) for k in SPAM_KINDS]
        + [("low_quality", k) for k in LOW_KINDS]
        + [("non_english", str(i)) for i in range(PLANTED["non_english"])]
        + [("bad_field", t) for t in BAD_TOPICS]
    )
    assert len(kinds) == sum(PLANTED.values()), (len(kinds), sum(PLANTED.values()))
    files = list(FILE_LINES)
    placed: list[tuple[str, str, str]] = []
    for kind, sub in kinds:
        allowed = JSONL_FILES if sub == "repeated_lines" else files
        f = rng.choices(allowed, weights=[FILE_WEIGHTS[x] for x in allowed])[0]
        placed.append((kind, sub, f))
    per_file = Counter(f for _, _, f in placed)
    n_clean = {f: FILE_LINES[f] - per_file[f] - MALFORMED_PER_FILE.get(f, 0) for f in files}

    # 2. clean records (flood contributor's records all in part-1, within two hours)
    records: list[_Rec] = []
    clean: list[_Rec] = []
    flood_start = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)
    for f in files:
        for k in range(n_clean[f]):
            topic = rng.choice(vocab.TOPICS)
            text = writer.clean(topic, single_line=(f == PART3))
            if f == PART1 and k < FLOOD:
                rec = _Rec(f, flood_start + timedelta(seconds=rng.randrange(7200)),
                           addresses[FLOOD_INDEX], text, topic, {"lang": "en", "client": "api"},
                           {"kind": "flood"})
            else:
                rec = _Rec(f, oct_ts(), regular(), text, topic, _meta(rng))
            records.append(rec)
            clean.append(rec)

    # sources for copies: clean, not flood, early enough to leave room for a later copy
    used: set[int] = set()

    eligible = [(files.index(r.file), len(r["text"].split()), r) for r in clean
                if r.info is None and r.ts < NOV - timedelta(days=3)]

    def source(copy_file: str, *, min_words: int = 0) -> _Rec:
        limit = files.index(copy_file)
        pool = [r for fi, nw, r in eligible
                if fi <= limit and nw >= min_words and id(r) not in used]
        r = rng.choice(pool)
        used.add(id(r))
        return r

    seen = {_norm(r["text"]) for r in clean}

    def unique(make: Any) -> str:
        for _ in range(100):
            text = make()
            if _norm(text) not in seen:
                seen.add(_norm(text))
                return text
        raise RuntimeError("could not make a unique planted text")

    # 3. planted records
    for kind, sub, f in placed:
        single = f == PART3
        info: dict[str, Any] = {"kind": kind, "variant": sub}
        if kind in ("exact_duplicate", "duplicate_submission"):
            src = source(f)
            who = src["contributor"] if kind == "duplicate_submission" else regular(
                src["contributor"])
            text = src["text"] if kind == "duplicate_submission" else exact_variant(
                src["text"], rng, sub, single_line=single)
            info["source"] = src
            rec = _Rec(f, oct_ts(src.ts + timedelta(minutes=1), NOV), who, text, src["topic"],
                       _meta(rng), info)
        elif kind == "near_duplicate":
            while True:
                src = source(f, min_words=110)
                got = near_variant(src["text"], rng)
                if got:
                    break
            info["source"], info["jaccard"] = src, round(got[1], 4)
            rec = _Rec(f, oct_ts(src.ts + timedelta(minutes=1), NOV), regular(src["contributor"]),
                       got[0], src["topic"], _meta(rng), info)
        elif kind in ("pii", "pii_obfuscated"):
            topic = rng.choice(vocab.TOPICS)
            base = writer.clean(topic, single_line=True, lo=30, hi=140)
            if kind == "pii":
                entity, value = sub, PII_MAKERS[sub](rng)
                sentence = rng.choice(PII_SENTENCES[sub]).format(v=value)
            else:
                entity, value, sentence = obfuscated_pii(rng, sub)
            info.update(entity=entity, value=value)
            text = f"{base} {sentence}" if rng.random() < 0.7 else f"{sentence} {base}"
            rec = _Rec(f, oct_ts(), regular(), text, topic, _meta(rng), info)
        elif kind == "spam":
            who = addresses[rng.choice(SPAM_INDICES)]
            rec = _Rec(f, oct_ts(), who, unique(lambda s=sub: spam_text(rng, s)),
                       rng.choice(vocab.TOPICS),
                       {"lang": "en", "client": "api"}, info)
        elif kind == "low_quality":
            topic = rng.choice(vocab.TOPICS)
            text = unique(lambda s=sub, t=topic: low_quality_text(rng, s, writer, t))
            rec = _Rec(f, oct_ts(), regular(), text, topic, _meta(rng), info)
        elif kind == "non_english":
            i = int(sub)
            lang, text = vocab.NON_ENGLISH[i]
            info["variant"] = lang
            rec = _Rec(f, oct_ts(), regular(), text, NON_EN_TOPICS[i], _meta(rng), info)
        else:  # bad_field: clean text, topic outside the spec's choices
            text = writer.clean("technique", single_line=single)
            rec = _Rec(f, oct_ts(), regular(), text, sub, _meta(rng), info)
        records.append(rec)

    # 4. order each file by submission time, insert malformed lines, number the lines
    malformed = _malformed(rng, addresses, writer)
    rng.shuffle(malformed)
    by_file: dict[str, list[Any]] = {f: sorted((r for r in records if r.file == f),
                                               key=lambda r: (r.ts, r["contributor"]))
                                     for f in files}
    cursor = 0
    for f, n in MALFORMED_PER_FILE.items():
        for bad in malformed[cursor:cursor + n]:
            by_file[f].insert(rng.randrange(len(by_file[f]) + 1), bad)
        cursor += n
    payload: dict[str, bytes] = {}
    for f in files:
        if f == PART3:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["contributor", "text", "submitted_at", "topic", "metadata"])
            line = 2
            for r in by_file[f]:
                r.line = line
                w.writerow([r["contributor"], r["text"], r["submitted_at"], r["topic"],
                            json.dumps(r["metadata"], separators=(",", ":"))])
                line += 1 + r["text"].count("\n")
            payload[f] = buf.getvalue().encode()
        else:
            lines = []
            for i, r in enumerate(by_file[f], start=1):
                if isinstance(r, _Rec):
                    r.line = i
                    lines.append(json.dumps(r, ensure_ascii=False).encode())
                else:
                    r["file"], r["line"] = f, i
                    lines.append(r["raw"])
            payload[f] = b"\n".join(lines) + b"\n"

    # 5. the second delivery: new clean records + exact duplicates of part-1 records
    more: list[_Rec] = []
    for _ in range(MORE_CLEAN):
        topic = rng.choice(vocab.TOPICS)
        more.append(_Rec(MORE, oct_ts(NOV, NOV + timedelta(days=3)), regular(),
                         writer.clean(topic, single_line=False), topic, _meta(rng)))
    for _ in range(MORE_DUPS):
        src = source(PART1)
        more.append(_Rec(MORE, oct_ts(NOV, NOV + timedelta(days=3)), regular(src["contributor"]),
                         src["text"], src["topic"], _meta(rng),
                         {"kind": "exact_duplicate", "variant": "history", "source": src}))
    more.sort(key=lambda r: (r.ts, r["contributor"]))
    for i, r in enumerate(more, start=1):
        r.line = i
    payload[MORE] = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in more)

    # 6. write
    for f, data in payload.items():
        path = out / f
        path.parent.mkdir(parents=True, exist_ok=True)
        if f.endswith(".gz"):
            raw = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=9) as gz:
                gz.write(data)
            data = raw.getvalue()
        path.write_bytes(data)
    expected = _expected(records, malformed, more, addresses, n_clean)
    (out / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=True) + "\n")
    return expected


def _ref(r: _Rec) -> dict[str, Any]:
    return {"file": r.file, "line": r.line}


def _expected(records: list[_Rec], malformed: list[dict[str, Any]], more: list[_Rec],
              addresses: list[str], n_clean: dict[str, int]) -> dict[str, Any]:
    planted = []
    for r in sorted((r for r in records if r.info and r.info["kind"] != "flood"),
                    key=lambda r: (r.file, r.line)):
        entry: dict[str, Any] = {**_ref(r), "kind": r.info["kind"], "variant": r.info["variant"]}
        if "source" in r.info:
            entry["source"] = _ref(r.info["source"])
        for key in ("jaccard", "entity", "value"):
            if key in r.info:
                entry[key] = r.info[key]
        if r.info["kind"] == "bad_field":
            entry["field"], entry["reason"] = "topic", "field_choice:topic"
        planted.append(entry)
    kinds = Counter(p["kind"] for p in planted)
    counts = {k: kinds[k] for k in PLANTED}
    counts["malformed"] = len(malformed)
    counts["flood"] = sum(1 for r in records if r.info and r.info["kind"] == "flood")
    counts["clean"] = sum(1 for r in records if not r.info or r.info["kind"] == "flood")
    lines = {f: FILE_LINES[f] for f in FILE_LINES}
    pii_entities = Counter(p["entity"] for p in planted if "entity" in p)
    contributors = {r["contributor"] for r in records}
    return {
        "datanet": DATANET,
        "seed": SEED,
        "files": {f: {"lines": n, "format": "csv" if f.endswith(".csv") else "jsonl",
                      "physical_lines": n + 1 if f.endswith(".csv") else n}
                  for f, n in lines.items()},
        "total_lines": sum(lines.values()),
        "counts": counts,
        "clean_per_file": n_clean,
        "pii_entities": dict(sorted(pii_entities.items())),
        "contributors": len(contributors),
        "flood_contributor": addresses[FLOOD_INDEX],
        "spam_contributors": [addresses[i] for i in SPAM_INDICES],
        "malformed": [{"file": m["file"], "line": m["line"], "reason": m["reason"],
                       "field": m["field"], "note": m["note"]}
                      for m in sorted(malformed, key=lambda m: (m["file"], m["line"]))],
        "planted": planted,
        "more": {
            "file": MORE,
            "lines": len(more),
            "clean": sum(1 for r in more if not r.info),
            "exact_duplicate_of_history": sum(1 for r in more if r.info),
            "planted": [{**_ref(r), "kind": "exact_duplicate", "variant": "history",
                         "source": _ref(r.info["source"])} for r in more if r.info],
        },
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: ``generate.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent),
                        help="output directory (default: beside this script)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    expected = generate(args.out)
    took = time.perf_counter() - t0
    print(json.dumps({"counts": expected["counts"], "total_lines": expected["total_lines"],
                      "contributors": expected["contributors"],
                      "seconds": round(took, 2)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
