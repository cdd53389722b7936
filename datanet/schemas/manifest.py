"""Batch manifest: the commit point of a batch.

A manifest names every file of the batch (path relative to the datanet root, sha256, rows,
bytes) by kind, the counts, the sequence number, the previous batch and the Merkle root
chain. Files not named by a committed manifest are invisible to readers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FileEntry", "Manifest", "MANIFEST_VERSION", "KINDS"]

MANIFEST_VERSION = 1
#: Data kinds every batch may have; ``index/<name>`` kinds are added by keyed validators.
KINDS = ("accepted", "rejected", "quarantine", "deadletter", "votes", "external_votes")


@dataclass(frozen=True)
class FileEntry:
    """One committed file: path relative to the datanet root."""

    path: str
    sha256: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """A committed batch."""

    seq: int
    batch_id: str
    datanet: str
    created_at: str
    files: Mapping[str, tuple[FileEntry, ...]]
    counts: Mapping[str, int]
    merkle_root: str | None = None
    leaf_count: int = 0
    prev_root: str | None = None
    prev_batch: str | None = None
    history_seq: int = 0
    sources: tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION
    #: sha256 of the spec and the inputs' paths, sizes and bytes
    #: (:mod:`datanet.pipelines.fingerprint`); absent in older manifests and when an input was
    #: not a local regular file.
    source_fingerprint: str | None = None

    def paths(self, kind: str) -> tuple[str, ...]:
        """Relative paths of one kind."""
        return tuple(f.path for f in self.files.get(kind, ()))

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of the manifest."""
        data = asdict(self)
        data["files"] = {k: [asdict(f) for f in v] for k, v in self.files.items()}
        data["counts"] = dict(self.counts)
        data["sources"] = list(self.sources)
        data["report"] = dict(self.report)
        if self.source_fingerprint is None:  # absent, as in manifests written before it
            del data["source_fingerprint"]
        return json.dumps(data, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; raises ValueError / KeyError / TypeError on a malformed one."""
        data = json.loads(text)
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {data.get('version')!r}")
        files = {
            kind: tuple(FileEntry(**f) for f in entries)
            for kind, entries in data["files"].items()
        }
        return cls(
            seq=int(data["seq"]),
            batch_id=str(data["batch_id"]),
            datanet=str(data["datanet"]),
            created_at=str(data["created_at"]),
            files=files,
            counts={k: int(v) for k, v in data["counts"].items()},
            merkle_root=data.get("merkle_root"),
            leaf_count=int(data.get("leaf_count", 0)),
            prev_root=data.get("prev_root"),
            prev_batch=data.get("prev_batch"),
            history_seq=int(data.get("history_seq", 0)),
            sources=tuple(data.get("sources", ())),
            report=data.get("report", {}),
            source_fingerprint=data.get("source_fingerprint"),
        )
