"""Text with an offset map back to the original: every character of a derived text knows
the span of the original text it came from.

Detection runs on a rewritten view of a record (NFKC, homoglyphs folded, obfuscations
decoded); redaction and the offsets reported in votes must refer to the original ``text``.
A rewrite is expressed as non-overlapping edits ``(start, end, replacement)``;
:meth:`MappedText.apply` composes the maps, so a chain of rewrites stays traceable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["MappedText", "Edit"]

#: ``(start, end, replacement)`` in the coordinates of the text being edited.
Edit = tuple[int, int, str]


@dataclass(frozen=True)
class MappedText:
    """``text`` plus, for each of its characters, the original span ``[starts[i], ends[i])``.

    ``starts`` / ``ends`` are ``None`` for the identity map (the common, untouched case), so
    an unchanged record costs no arrays.
    """

    text: str
    original_length: int
    starts: np.ndarray | None = None
    ends: np.ndarray | None = None

    @classmethod
    def identity(cls, text: str) -> MappedText:
        """The original text mapped onto itself."""
        return cls(text, len(text))

    @property
    def is_identity(self) -> bool:
        """True when no edit changed the text."""
        return self.starts is None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.starts is None or self.ends is None:
            n = len(self.text)
            return np.arange(n, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64)
        return self.starts, self.ends

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering the derived span ``[start, end)``."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            pos = int(self.starts[start]) if start < len(self.text) else self.original_length
            return pos, pos
        return int(self.starts[start]), int(self.ends[end - 1])

    def apply(self, edits: Iterable[Edit]) -> MappedText:
        """A new MappedText with ``edits`` (sorted, non-overlapping) applied to ``text``."""
        edits = sorted(edits)
        if not edits:
            return self
        starts, ends = self._arrays()
        pieces: list[str] = []
        new_starts: list[np.ndarray] = []
        new_ends: list[np.ndarray] = []
        pos = 0
        for s, e, repl in edits:
            if s < pos or e < s or e > len(self.text):
                raise ValueError(f"edit ({s}, {e}) overlaps a previous edit or is out of range")
            pieces.append(self.text[pos:s])
            new_starts.append(starts[pos:s])
            new_ends.append(ends[pos:s])
            if repl:
                if s < e:
                    lo, hi = starts[s], ends[e - 1]
                else:  # pure insertion: attach to the next character (or the end)
                    lo = hi = starts[s] if s < len(self.text) else self.original_length
                pieces.append(repl)
                new_starts.append(np.full(len(repl), lo, dtype=np.int64))
                new_ends.append(np.full(len(repl), hi, dtype=np.int64))
            pos = e
        pieces.append(self.text[pos:])
        new_starts.append(starts[pos:])
        new_ends.append(ends[pos:])
        return MappedText(
            "".join(pieces),
            self.original_length,
            np.concatenate(new_starts).astype(np.int64, copy=False),
            np.concatenate(new_ends).astype(np.int64, copy=False),
        )
