"""Text with an offset map back to the original: every character of a derived text knows
the span of the original text it came from.

Detection runs on a rewritten view of a record (NFKC, homoglyphs folded, obfuscations
decoded); redaction and the offsets reported in votes must refer to the original ``text``.
A rewrite is expressed as non-overlapping edits ``(start, end, replacement)``;
:meth:`MappedText.apply` chains them, so a series of rewrites stays traceable.

The map is lazy: a derived text keeps its parent and its edit table, and :meth:`span`
walks the chain with a binary search per level. Building a view therefore costs string
work only, and only the (few) findings pay for mapping.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MappedText", "Edit"]

#: ``(start, end, replacement)`` in the coordinates of the text being edited.
Edit = tuple[int, int, str]


@dataclass(frozen=True)
class MappedText:
    """``text`` plus, for each of its characters, the original span it came from.

    A character copied by an edit maps where its parent character maps; a replacement's
    characters map to the span of the text it replaced (a pure insertion: to the position
    of the next character, or the end).
    """

    text: str
    original_length: int
    parent: MappedText | None = None
    #: per edit, in order: (start, end) of its replacement here, (start, end) in the parent
    edits: tuple[tuple[int, int, int, int], ...] = ()
    #: the edits' starts here (for bisect)
    edit_starts: tuple[int, ...] = ()

    @classmethod
    def identity(cls, text: str) -> MappedText:
        """The original text mapped onto itself."""
        return cls(text, len(text))

    @property
    def is_identity(self) -> bool:
        """True when no edit changed the text."""
        return self.parent is None

    def _locate(self, i: int) -> tuple[int, int]:
        """Original ``(start, end)`` of character ``i`` of ``text``."""
        if self.parent is None:
            return i, i + 1
        k = bisect.bisect_right(self.edit_starts, i) - 1
        if k >= 0:
            _, new_end, old_start, old_end = self.edits[k]
            if i < new_end:  # a replacement character
                return self.parent._replaced(old_start, old_end)
            i += old_end - new_end
        return self.parent._locate(i)

    def _replaced(self, start: int, end: int) -> tuple[int, int]:
        """Original span of ``text[start:end]`` (empty: the next character's start)."""
        if start < end:
            return self._locate(start)[0], self._locate(end - 1)[1]
        pos = self._locate(start)[0] if start < len(self.text) else self.original_length
        return pos, pos

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering the derived span ``[start, end)``."""
        if self.parent is None:
            return start, end
        return self._replaced(start, end)

    def apply(self, edits: Iterable[Edit]) -> MappedText:
        """A new MappedText with ``edits`` (sorted, non-overlapping) applied to ``text``."""
        edits = sorted(edits)
        if not edits:
            return self
        n = len(self.text)
        pieces: list[str] = []
        table: list[tuple[int, int, int, int]] = []
        pos = 0
        out = 0
        for s, e, repl in edits:
            if s < pos or e < s or e > n:
                raise ValueError(f"edit ({s}, {e}) overlaps a previous edit or is out of range")
            pieces.append(self.text[pos:s])
            out += s - pos
            table.append((out, out + len(repl), s, e))
            pieces.append(repl)
            out += len(repl)
            pos = e
        pieces.append(self.text[pos:])
        return MappedText("".join(pieces), self.original_length, self, tuple(table),
                          tuple(t[0] for t in table))
