"""One exception hierarchy for datanet.

Every exception carries plain attributes and a message that names the bad value, what is
allowed and, where it helps, the fix. They pickle across Beam / Dask workers because their
constructor arguments are stored in ``args``.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "DatanetError",
    "SpecError",
    "IntakeError",
    "StoreError",
    "CommitConflict",
    "WorkerLost",
    "ValidatorError",
    "AnchoringError",
    "SignatureError",
    "OptionError",
    "SpecSyntaxError",
    "RewardsError",
]


#: Keys whose values are never echoed in messages (a private key pasted into a spec).
_SECRET_RE = re.compile(r"(private|secret|password|passphrase|mnemonic|^key$)", re.I)


class DatanetError(Exception):
    """Base class of every error raised by datanet.

    ``retryable`` says, by type, whether running the same step again may succeed: False for
    what only a person can fix (a bad spec, option, input, validator config, signature or reward
    input), True for the store and the chain (a commit race, a full disk, an RPC down).
    Schedulers use it to retry or fail at once (``orchestration.dag_factory``).
    """

    retryable: ClassVar[bool] = False


class SpecError(DatanetError, ValueError):
    """A datanet spec (TOML) or a config value is invalid.

    ``key`` is the dotted TOML key, ``value`` the bad value, ``allowed`` what is accepted.
    """

    def __init__(self, key: str, value: object, allowed: str, *, source: str | None = None):
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        shown = "<redacted>" if _SECRET_RE.search(key.rsplit(".", 1)[-1]) else repr(value)
        super().__init__(f"{where}{key}={shown} {allowed}")

    def __reduce__(self):
        return (_rebuild_spec_error, (self.key, self.value, self.allowed, self.source))


def _rebuild_spec_error(key: str, value: object, allowed: str, source: str | None) -> SpecError:
    return SpecError(key, value, allowed, source=source)


class SpecSyntaxError(SpecError):
    """A spec file is not valid TOML: ``file:line:column: invalid TOML: what``."""

    def __init__(self, source: str, line: int, column: int, what: str):
        self.line = line
        self.column = column
        self.what = what
        self.key, self.value, self.allowed, self.source = "spec", source, what, source
        DatanetError.__init__(self, f"{source}:{line}:{column}: invalid TOML: {what}")

    def __reduce__(self):
        return (SpecSyntaxError, (self.source, self.line, self.column, self.what))


class OptionError(DatanetError, ValueError):
    """An operator's command-line option or runner name is unknown or incomplete."""


class IntakeError(DatanetError):
    """An input cannot be read at all (a missing file or an unknown format)."""


class StoreError(DatanetError):
    """The datanet store is missing, malformed or cannot be written."""

    retryable = True


class CommitConflict(StoreError):
    """Another run committed the same batch or sequence number first."""


class ValidatorError(DatanetError):
    """A validator is misconfigured or failed on a batch."""


class WorkerLost(DatanetError):
    """A worker process died mid-task (killed by the OS, e.g. out of memory): running the
    step again may succeed."""

    retryable = True


class AnchoringError(DatanetError):
    """Anchoring a batch root on-chain failed."""

    retryable = True


class SignatureError(DatanetError):
    """A signature is malformed or does not match its signer."""


class RewardsError(DatanetError):
    """A reward epoch cannot be computed, published or claimed (inputs, order, chain)."""
