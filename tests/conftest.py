"""Shared fixtures: tiny datanets and inputs with every awkward case."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from eth_account import Account

logging.getLogger("apache_beam").setLevel(logging.ERROR)

ADDRS = [Account.from_key(bytes([i + 1]) * 32).address for i in range(8)]

TINY_SPEC = """
id = "tiny"
name = "Tiny"

[limits]
max_record_bytes = 2048
min_chars = 20
max_chars = 400

[fields.topic]
type = "string"
choices = ["baking", "grilling"]

[fields.rating]
type = "int"
min = 1
max = 5
""" + "".join(
    # the foundation tests exercise intake, limits, exact dedup, signatures and PII on short
    # tips; the curation validators have their own tests
    f"\n[validators.{name}]\nenabled = false\n"
    for name in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "spam",
                 "language", "expectations", "near_duplicate", "flood")
)

TEXTS = [
    "Rest the dough for thirty minutes so the gluten relaxes before rolling it out.",
    "Salt the pasta water generously; it should taste like a mild sea broth.",
    "Preheat a cast iron pan for five minutes before adding the steak to sear.",
    "Toast whole spices in a dry pan until fragrant, then grind them fresh.",
    "Chill cookie dough overnight for deeper flavour and less spreading in the oven.",
    "Use a thermometer: chicken is safe once the thickest part reaches 74 degrees C.",
    "Deglaze the pan with a splash of wine to lift the browned bits into the sauce.",
    "Blanch green beans for two minutes, then shock them in ice water to keep colour.",
]


def record(i: int, **overrides) -> dict:
    """A valid input record (``i`` picks text and contributor)."""
    rec = {
        "contributor": ADDRS[i % len(ADDRS)],
        "text": TEXTS[i % len(TEXTS)] + f" Tip {i}.",
        "submitted_at": f"2026-10-{1 + i % 28:02d}T12:00:00Z",
        "topic": "baking",
        "metadata": {"lang": "en"},
    }
    rec.update(overrides)
    return rec


def write_jsonl(path: Path, records: list) -> Path:
    """Write dicts (as JSON) or raw bytes/str lines."""
    with open(path, "wb") as fh:
        for r in records:
            if isinstance(r, bytes):
                fh.write(r + b"\n")
            elif isinstance(r, str):
                fh.write(r.encode() + b"\n")
            else:
                fh.write(json.dumps(r).encode() + b"\n")
    return path


@pytest.fixture
def tiny_store(tmp_path):
    """An empty datanet with the tiny spec (anchoring off)."""
    from datanet.store.layout import init_datanet

    return init_datanet(tmp_path / "dn", TINY_SPEC)
