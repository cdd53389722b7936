"""Build normalised record batches (RECORD_SCHEMA) for validator tests."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from datanet.privacy.normalise import normalise_text
from datanet.schemas.contribution import RECORD_SCHEMA
from datanet.schemas.ids import content_hash, contribution_id
from datanet.schemas.spec import parse_spec

DATANET = "cooking-qa"
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20


def spec(validators: dict | None = None):
    """A default spec (every validator on) with optional ``[validators]`` tables."""
    return parse_spec({"id": DATANET, "validators": validators or {}})


def batch(texts: Sequence[str], *, contributors: Sequence[str] | None = None,
          start_us: int = 1_700_000_000_000_000, source: str = "in.jsonl") -> pa.RecordBatch:
    """Records with increasing submitted_at (1 s apart) in the given order."""
    contributors = list(contributors or [ALICE] * len(texts))
    norms = [normalise_text(t) for t in texts]
    hashes = [content_hash(t) for t in norms]
    ids = [contribution_id(DATANET, c, h) for c, h in zip(contributors, hashes, strict=True)]
    n = len(texts)
    cols = {
        "contribution_id": ids,
        "datanet": [DATANET] * n,
        "contributor": contributors,
        "submitted_at": pa.array([start_us + i * 1_000_000 for i in range(n)],
                                 pa.timestamp("us", tz="UTC")),
        "text": list(texts),
        "text_norm": norms,
        "content_hash": hashes,
        "metadata": [None] * n,
        "signature": [None] * n,
        "source_file": [source] * n,
        "source_line": list(range(1, n + 1)),
    }
    return pa.RecordBatch.from_pydict(cols, schema=RECORD_SCHEMA)
