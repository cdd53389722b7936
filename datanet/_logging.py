"""Log filters for third-party noise that says nothing actionable to a datanet user.

Installed on import of :mod:`datanet`, before Beam or Presidio are imported, so the Python API
is as quiet as the CLI:

- Beam logs ``apitools not found …`` on the root logger at import (we do not use GCP);
- Presidio logs one ``Recognizer not added to registry because language is not supported``
  warning per non-English predefined recognizer each time an English-only registry loads them
  (11 lines per validator set-up); the pii validator's report names the languages it uses;
- the Dask scheduler logs a multi-line ``Detected different `run_spec``` block when Beam's
  DaskRunner submits a key again in a later graph (dask/dask#9888): kept as one line, once
  per process.
"""

from __future__ import annotations

import logging

__all__ = ["install_filters"]


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(f in msg for f in self.fragments)


class _OneLineRunSpec(logging.Filter):
    """The first ``Detected different `run_spec``` warning as one line; later ones dropped."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "Detected different `run_spec`" not in msg:
            return True
        if _OneLineRunSpec.seen or record.levelno < logging.WARNING:
            return False
        _OneLineRunSpec.seen = True
        record.msg = ("Dask: a task key was submitted again with a different graph (Beam's "
                      "DaskRunner reuses keys across computations, dask/dask#9888); further "
                      "such warnings are not shown")
        record.args = ()
        return True


_ROOT = _DropMessages("apitools not found")
_PRESIDIO = _DropMessages("Recognizer not added to registry because language is not supported")
_RUN_SPEC = _OneLineRunSpec()


def install_filters() -> None:
    """Add the filters (idempotent)."""
    for name, flt in (("", _ROOT), ("presidio-analyzer", _PRESIDIO),
                      ("distributed.scheduler", _RUN_SPEC)):
        logger = logging.getLogger(name)
        if flt not in logger.filters:
            logger.addFilter(flt)
