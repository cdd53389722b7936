"""An example third-party validator: a record must mention at least ``min_hits`` of the
datanet's topic keywords (whole words, case-insensitive, on the normalised text).

Installed with ``pip install examples/validator-plugin``, it is configured like a built-in:

    [validators.topic_keywords]
    keywords = ["bake", "oven", "pan"]
    min_hits = 1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datanet.schemas.config import check, check_range
from datanet.validators.base import RuleValidator

__all__ = ["TopicKeywordsConfig", "TopicKeywordsValidator"]


@dataclass(frozen=True)
class TopicKeywordsConfig:
    """``[validators.topic_keywords]``."""

    #: Words that show a record is on topic (matched as whole words, any case).
    keywords: tuple[str, ...] = ()
    #: How many keyword occurrences a record needs.
    min_hits: int = 1

    def __post_init__(self) -> None:
        check(len(self.keywords) > 0, "keywords", self.keywords,
              "must list at least one keyword")
        for i, word in enumerate(self.keywords):
            check(isinstance(word, str) and re.fullmatch(r"\w[\w' -]*", word) is not None,
                  f"keywords[{i}]", word, "must be a word or phrase of letters and digits")
        check_range("min_hits", self.min_hits, 1)


class TopicKeywordsValidator(RuleValidator):
    """Rejects records that do not mention the topic (``off_topic``)."""

    name: ClassVar[str] = "topic_keywords"
    config_cls = TopicKeywordsConfig
    reason_codes = ("off_topic",)
    summary = "Example plugin: a record must mention the datanet's topic keywords."

    def __init__(self, config: TopicKeywordsConfig, spec: object = None):
        super().__init__(config, spec)
        words = "|".join(re.escape(w.lower()) for w in config.keywords)
        self.pattern = rf"\b(?:{words})\b"

    def hits(self, batch: pa.RecordBatch) -> np.ndarray:
        """Keyword occurrences per record, for the whole batch in one RE2 pass."""
        lower = pc.utf8_lower(pc.fill_null(batch.column("text_norm"), ""))
        return pc.count_substring_regex(lower, self.pattern).to_numpy(zero_copy_only=False)

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        off = self.hits(batch) < self.config.min_hits
        return pa.array(np.where(off, "off_topic", None).tolist(), pa.string())
