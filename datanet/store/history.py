"""The datanet's committed history as the pipeline's keyed stages read it (Beam-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass(frozen=True)
class History:
    """Committed files of the datanet, by manifest kind (``accepted``, ``index/minhash`` …).

    Paths are absolute paths / URIs readable with Beam FileSystems. Stages read them inside
    the pipeline (fileio), never on the driver. ``scratch``: the run's scratch directory,
    where a stage may spill per-chunk tables instead of carrying them to the writer.
    """

    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scratch: str | None = None
    #: The batch id of each path (its manifest's).
    batch_of: Mapping[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> tuple[str, ...]:
        """Paths of one kind (empty when the datanet has none)."""
        return tuple(self.files.get(kind, ()))

    def beside(self, path: str, kind: str) -> tuple[str, ...]:
        """Paths of ``kind`` committed in the same batch as ``path``."""
        batch = self.batch_of.get(path)
        if batch is None:
            return ()
        return tuple(p for p in self.of(kind) if self.batch_of.get(p) == batch)
