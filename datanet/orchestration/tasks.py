"""Scheduler-neutral steps of a datanet run: discover → ingest → commit → anchor → finality.

Each step is a plain function over a datanet directory so that Airflow (``dags/``) or any
other scheduler can run it, and each is idempotent: re-running a step after a crash anywhere
(before, during or after its side effect) ends in the same state as one clean run.

- :func:`discover` lists the inbox files not yet ingested. A source counts as ingested when a
  committed manifest names it (``sources``) or an ``ingested/`` record does; the latter is
  written, after the run, only for sources that no manifest will ever name (inputs that held
  no records, or whose records were already committed as an earlier batch).
- :func:`ingest` runs the Beam pipeline, which commits the batch (same input → same batch id,
  so a retry after the commit is a no-op).
- :func:`confirm_commit` checks the batch is committed and writes the ``ingested/`` record.
- :func:`anchor` / :func:`finality` drive the anchoring outbox (its own crash-safe state
  machine) without / while waiting for confirmations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.errors import IntakeError, StoreError
from datanet.store.atomic import write_atomic

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = [
    "INBOX_DIR",
    "INGESTED_DIR",
    "IngestOutcome",
    "AnchorReport",
    "inbox_path",
    "ingested_sources",
    "discover",
    "ingest",
    "confirm_commit",
    "anchor",
    "finality",
]

log = logging.getLogger(__name__)

#: Landing folder of a datanet's input files (may be a symlink to a shared landing area).
INBOX_DIR = "inbox"
#: Records of sources ingested without a manifest naming them.
INGESTED_DIR = "ingested"


@dataclass(frozen=True)
class IngestOutcome:
    """What one ingest did; plain JSON values so that schedulers can pass it between tasks."""

    inputs: tuple[str, ...]
    batch_id: str | None
    seq: int | None
    committed: bool
    counts: dict[str, int] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (Airflow XCom value)."""
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IngestOutcome:
        """Inverse of :meth:`to_json`."""
        return cls(**{**data, "inputs": tuple(data["inputs"])})


@dataclass(frozen=True)
class AnchorReport:
    """Anchoring state of a datanet's rooted batches after one outbox pass."""

    available: bool
    enabled: bool
    rooted: int
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """True when nothing is left to anchor or confirm."""
        if not (self.available and self.enabled):
            return True
        return len(self.statuses) == self.rooted and all(
            s == "FINAL" for s in self.statuses.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (Airflow XCom value)."""
        return {**asdict(self), "final": self.final}


def _store(path: str | Path) -> Any:
    from datanet.store.layout import DatanetStore

    return DatanetStore(path)


def inbox_path(store: DatanetStore) -> Path:
    """The datanet's inbox folder."""
    return Path(store.root) / INBOX_DIR


def _source_key(source: str) -> str:
    """Absolute, normalised path of a source (a CLI run may have recorded a relative one)."""
    return os.path.normpath(os.path.abspath(source))


def ingested_sources(store: DatanetStore) -> set[str]:
    """Sources already ingested: named by a committed manifest or an ``ingested/`` record."""
    root = Path(store.root)
    out = {_source_key(s) for m in store.manifests() for s in m.sources}
    rec_dir = root / INGESTED_DIR
    if rec_dir.is_dir():
        for rec in sorted(rec_dir.glob("*.json")):
            try:
                data = json.loads(rec.read_text(encoding="utf-8"))
                out.update(_source_key(s) for s in data["sources"])
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"{rec}: unreadable ingested record ({exc}); fix or delete "
                                 "it (deleting re-ingests its sources)") from None
    return out


def _hidden(rel: Path) -> bool:
    """Hidden or in-progress names (``.x``, ``_x``) are not inputs yet (Hadoop convention)."""
    return any(part.startswith((".", "_")) for part in rel.parts)


def discover(path: str | Path) -> list[str]:
    """Absolute paths of inbox files not yet ingested, sorted.

    Files of unknown format are logged and left alone (they would fail every run); files
    whose name starts with ``.`` or ``_`` are being written and are picked up later.
    """
    from datanet.pipelines.intake import detect_format

    store = _store(path)
    inbox = inbox_path(store)
    if not inbox.is_dir():
        log.info("%s does not exist: nothing to ingest", inbox)
        return []
    done = ingested_sources(store)
    new: list[str] = []
    for p in sorted(inbox.rglob("*")):
        rel = p.relative_to(inbox)
        if _hidden(rel) or not p.is_file():
            continue
        try:
            detect_format(p.name)
        except IntakeError as exc:
            log.warning("skipped: %s", exc)
            continue
        key = os.path.normpath(p)
        if key not in done:
            new.append(key)
    log.info("%s: %d new input file(s), %d already ingested", inbox, len(new), len(done))
    return new


def ingest(path: str | Path, inputs: Sequence[str], *,
           beam_args: Sequence[str] = ()) -> IngestOutcome:
    """Run the pipeline over ``inputs`` with the spec's runner and options; it commits."""
    inputs = tuple(inputs)
    if not inputs:
        return IngestOutcome(inputs, None, None, False, {}, "no new input")
    from datanet.pipelines.run import run_datanet

    store = _store(path)
    # run_datanet adds the spec's [pipeline] options itself; beam_args are deployment extras
    # (e.g. --dask_client_address) that do not belong in the spec.
    result = run_datanet(store, list(inputs), runner=store.spec.pipeline.runner,
                         beam_args=list(beam_args))
    seq = result.manifest.seq if result.manifest is not None else None
    log.info("%s", result.message)
    return IngestOutcome(inputs, result.batch_id, seq, result.committed,
                         {k: int(v) for k, v in result.counts.items()}, result.message)


def confirm_commit(path: str | Path, outcome: IngestOutcome) -> dict[str, Any]:
    """Check the ingest's batch is committed; record sources no manifest names.

    Raises :class:`StoreError` when the batch id has no committed manifest (the ingest must
    be re-run). Writing the record is create-or-replace with the same content, so retries
    are harmless.
    """
    store = _store(path)
    if not outcome.inputs:
        return {"batch_id": None, "recorded": []}
    manifest = store.manifest_for(outcome.batch_id) if outcome.batch_id else None
    if outcome.batch_id and manifest is None:
        raise StoreError(f"batch {outcome.batch_id} of inputs {list(outcome.inputs)} is not "
                         "committed; re-run the ingest task")
    root = Path(store.root)
    named = {_source_key(s) for m in store.manifests() for s in m.sources}
    missing = sorted(s for s in (_source_key(i) for i in outcome.inputs)
                     if s not in named)
    if missing:
        reason = "already_committed" if manifest is not None else "no_records"
        key = hashlib.sha256("\n".join(missing).encode()).hexdigest()[:24]
        body = {"sources": missing, "reason": reason, "batch_id": outcome.batch_id,
                "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
        write_atomic(root / INGESTED_DIR / f"{key}.json", json.dumps(body, indent=1))
        log.info("recorded %d source(s) as ingested (%s)", len(missing), reason)
    return {"batch_id": outcome.batch_id, "seq": manifest.seq if manifest else None,
            "recorded": missing}


def _outbox_pass(path: str | Path, *, wait: bool) -> AnchorReport:
    store = _store(path)
    try:
        from datanet.anchoring.outbox import anchor_pending
    except ModuleNotFoundError as exc:
        if exc.name != "datanet.anchoring.outbox":
            raise
        log.warning("anchoring is not available in this build; batches stay unanchored")
        return AnchorReport(available=False, enabled=False, rooted=0)
    from datanet.anchoring.config import anchoring_config

    rooted = sum(1 for m in store.manifests() if m.merkle_root)
    if not anchoring_config(store.spec).enabled:
        return AnchorReport(available=True, enabled=False, rooted=rooted)
    states = anchor_pending(store, wait=wait)
    return AnchorReport(True, True, rooted,
                        {s.batch_id: str(s.status) for s in states})


def anchor(path: str | Path) -> AnchorReport:
    """Send (or resume) the anchor transactions of every committed, unanchored batch."""
    report = _outbox_pass(path, wait=False)
    log.info("anchoring: %s", report.statuses or "nothing to anchor")
    return report


#: Outbox passes per finality poll: each pass moves every batch at most one state forward,
#: so a poll keeps going while states change (an embedded chain is final within a poll).
_PASSES_PER_POLL = 8


def finality(path: str | Path) -> AnchorReport:
    """One poll of the outbox: advances every batch and says whether all are FINAL.

    Never blocks waiting for blocks: when a pass changes nothing, the poll ends and the
    scheduler polls again later (an Airflow sensor in reschedule mode frees its slot).
    """
    report = _outbox_pass(path, wait=False)
    for _ in range(_PASSES_PER_POLL - 1):
        if report.final:
            break
        again = _outbox_pass(path, wait=False)
        if again.statuses == report.statuses:
            break
        report = again
    return report
