"""Real English text found on this machine, for benchmarks (no network, no lorem ipsum).

Sources: CPython's ``pydoc_data.topics`` (the language reference) and the long
descriptions in installed packages' ``METADATA`` files. Paragraphs are de-duplicated so
that planted near-duplicates are the only ones the benchmarks know of.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["paragraphs", "records"]


def _texts() -> list[str]:
    from pydoc_data.topics import topics

    out = list(topics.values())
    for dist in metadata.distributions():
        body = dist.metadata.get_payload() if hasattr(dist.metadata, "get_payload") else None
        if body:
            out.append(str(body))
    licenses = Path("/usr/share/common-licenses")
    if licenses.is_dir():
        out.extend(p.read_text(errors="ignore") for p in sorted(licenses.iterdir()) if p.is_file())
    return out


def paragraphs(min_words: int = 40, max_words: int = 250) -> list[str]:
    """Distinct prose-like paragraphs of ``min_words``..``max_words`` words."""
    seen: set[str] = set()
    out = []
    for text in _texts():
        for para in re.split(r"\n\s*\n", text):
            words = para.split()
            if not (min_words <= len(words) <= max_words):
                continue
            alpha = sum(w.isalpha() for w in words) / len(words)
            if alpha < 0.6 or "http" in para or "```" in para:
                continue
            norm = " ".join(words)
            if norm not in seen:
                seen.add(norm)
                out.append(norm)
    return out


def records(n: int, words: int = 170) -> list[str]:
    """``n`` texts of about ``words`` words (~1 KB), cut from the corpus, cycled if needed."""
    flat = " ".join(paragraphs(10, 10_000)).split()
    out = []
    i = 0
    while len(out) < n:
        if i + words > len(flat):
            i = (i + 7) % words
        out.append(" ".join(flat[i:i + words]))
        i += words
    return out


if __name__ == "__main__":
    ps = paragraphs()
    print(len(ps), "paragraphs,", sum(len(p.split()) for p in ps), "words", file=sys.stderr)
