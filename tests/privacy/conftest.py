"""Shared fixtures: one Presidio engine per test session (building one takes ~1 s)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from datanet.privacy.detector import PiiDetector
from datanet.privacy.policy import PiiConfig

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def detector() -> PiiDetector:
    d = PiiDetector(PiiConfig().detected | {"URL"})
    d.setup()
    return d


@pytest.fixture(scope="session")
def full_detector() -> PiiDetector:
    """The same recognizers run by plain AnalyzerEngine.analyze on whole records."""
    d = PiiDetector(PiiConfig().detected | {"URL"}, windowed=False)
    d.setup()
    return d


def _batch(texts: list[str]) -> pa.RecordBatch:
    return pa.record_batch({
        "contribution_id": [f"c{i}" for i in range(len(texts))],
        "text": texts,
    })


@pytest.fixture()
def make_batch():
    """Build a minimal record batch (the PII validator reads contribution_id and text)."""
    return _batch
