"""The datanet spec: a TOML file loaded into frozen dataclasses.

Core keys (id, limits, extra fields, pipeline options) are parsed here. The sections that
validators, the vote policy and anchoring own (``[validators.<name>]``, ``[policy]``,
``[anchoring]``) are kept as raw tables and parsed by their owners' config classes when the
spec is validated (:meth:`DatanetSpec.validate`), so a bad value anywhere in the file fails
at load time with the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datanet.errors import SpecError, SpecSyntaxError
from datanet.schemas.config import (
    check,
    check_choice,
    check_range,
    config_from_mapping,
    load_target,
)
from datanet.schemas.schedule import check_schedule

__all__ = ["DatanetSpec", "Limits", "FieldSpec", "PipelineOptions", "load_spec", "load_toml",
           "parse_spec"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FIELD_TYPES = ("string", "int", "float", "bool", "timestamp")
#: Names an extra field may not take: the built-in record columns.
RESERVED_FIELDS = frozenset(
    {
        "contribution_id", "datanet", "contributor", "submitted_at", "text", "text_norm",
        "content_hash", "metadata", "signature", "source_file", "source_line", "batch",
    }
)


@dataclass(frozen=True)
class Limits:
    """Record limits. Bytes are checked at intake (dead-letter ``too_large``), characters of
    the normalised text by the ``limits`` validator (``too_short`` / ``too_long``)."""

    max_record_bytes: int = 256 * 1024
    min_chars: int = 20
    max_chars: int = 100_000

    def __post_init__(self) -> None:
        check_range("limits.max_record_bytes", self.max_record_bytes, 64, 64 * 1024 * 1024)
        check_range("limits.min_chars", self.min_chars, 0)
        check(self.max_chars >= max(self.min_chars, 1), "limits.max_chars", self.max_chars,
              f"must be >= limits.min_chars ({self.min_chars}) and >= 1")


@dataclass(frozen=True)
class FieldSpec:
    """An extra typed field of a contribution, with constraints checked by ``limits``."""

    name: str = ""
    type: Literal["string", "int", "float", "bool", "timestamp"] = "string"
    required: bool = False
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        key = f"fields.{self.name}"
        check(bool(re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.name)), key, self.name,
              "field names must be snake_case identifiers")
        check(self.name not in RESERVED_FIELDS, key, self.name,
              f"is a built-in column; reserved names: {', '.join(sorted(RESERVED_FIELDS))}")
        check_choice(f"{key}.type", self.type, FIELD_TYPES)
        if self.min is not None or self.max is not None:
            check(self.type in ("int", "float"), f"{key}.min", self.min,
                  "min/max apply to int and float fields only")
        if self.min is not None and self.max is not None:
            check(self.min <= self.max, f"{key}.max", self.max, f"must be >= min ({self.min})")
        if self.max_length is not None:
            check_range(f"{key}.max_length", self.max_length, 1)
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise SpecError(f"{key}.pattern", self.pattern,
                                f"must be a valid regular expression ({exc})") from None


@dataclass(frozen=True)
class PipelineOptions:
    """How the pipeline runs: Arrow batch size and the Beam runner with its options."""

    batch_rows: int = 2000
    runner: str = "DirectRunner"
    options: tuple[str, ...] = ()
    #: Parquet megabytes per committed file of one kind (accepted, votes, index…) in a batch;
    #: chunks are coalesced up to it (Parquet readers favour files of 100 MB–1 GB).
    target_file_mb: int = 128
    #: Processes validating chunks when the in-process DirectRunner runs the graph (in its
    #: default in-memory mode): 0 = one per usable core (one process for less than 16 MB of
    #: local input: ``pool.POOL_MIN_INPUT_BYTES``), 1 = in the driver process only.
    #: Other runners spread the work themselves.
    local_workers: int = 0

    def __post_init__(self) -> None:
        check_range("pipeline.batch_rows", self.batch_rows, 1, 1_000_000)
        check_range("pipeline.target_file_mb", self.target_file_mb, 1, 4096)
        check_range("pipeline.local_workers", self.local_workers, 0, 256)
        check(bool(self.runner), "pipeline.runner", self.runner, "must name a Beam runner")


_CORE_KEYS = {
    "id", "name", "description", "license", "schedule", "limits", "fields", "pipeline",
    "validators", "policy", "anchoring", "privacy", "attribution", "rewards",
}

#: Owners of raw sections: ``section -> "module:callable"`` taking (spec) and raising
#: SpecError. Imported lazily so that loading a spec stays cheap.
SECTION_VALIDATORS: dict[str, str] = {
    "validators": "datanet.validators.registry:validate_spec_section",
    "policy": "datanet.validators.policy:validate_spec_section",
    "anchoring": "datanet.anchoring.config:validate_spec_section",
    "attribution": "datanet.attribution.config:validate_spec_section",
    "rewards": "datanet.rewards.config:validate_spec_section",
}


@dataclass(frozen=True)
class DatanetSpec:
    """A datanet's spec. ``validators``, ``policy`` and ``anchoring`` are raw TOML tables
    parsed by their owners (see :data:`SECTION_VALIDATORS`)."""

    id: str
    name: str = ""
    description: str = ""
    license: str = "CC-BY-4.0"
    schedule: str | None = None
    limits: Limits = field(default_factory=Limits)
    fields: tuple[FieldSpec, ...] = ()
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    validators: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    policy: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    anchoring: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    privacy: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    attribution: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    rewards: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    source: str | None = None

    def __post_init__(self) -> None:
        check(bool(_ID_RE.match(self.id or "")), "id", self.id,
              "must be 1-63 chars of lowercase letters, digits, '-' or '_', "
              "starting with a letter or digit")
        names = [f.name for f in self.fields]
        dup = {n for n in names if names.count(n) > 1}
        check(not dup, "fields", sorted(dup), "field names must be unique")

    @property
    def extra_fields(self) -> dict[str, str]:
        """Extra field name -> type name."""
        return {f.name: f.type for f in self.fields}

    def validate(self) -> DatanetSpec:
        """Parse every owned section through its owner; raise SpecError on the first error."""
        for target in SECTION_VALIDATORS.values():
            try:
                load_target(target)(self)
            except SpecError as exc:
                if self.source and not exc.source:
                    raise SpecError(exc.key, exc.value, exc.allowed, source=self.source) from None
                raise
        return self


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def parse_spec(data: Mapping[str, Any], *, source: str | None = None) -> DatanetSpec:
    """Build and validate a :class:`DatanetSpec` from a parsed TOML document."""
    try:
        unknown = sorted(set(data) - _CORE_KEYS)
        if unknown:
            raise SpecError(unknown[0], data[unknown[0]],
                            f"is not a known top-level key; known: {', '.join(sorted(_CORE_KEYS))}")
        for key in ("id", "name", "description", "license"):
            if key in data and not isinstance(data[key], str):
                raise SpecError(key, data[key], "must be a string")
        if "id" not in data:
            raise SpecError("id", None, "is required (the datanet's id, e.g. 'legal-qa')")
        fields_table = data.get("fields", {})
        check(isinstance(fields_table, Mapping), "fields", fields_table,
              "must be a table of [fields.<name>] tables")
        extra = []
        for name, table in fields_table.items():
            check(isinstance(table, Mapping), f"fields.{name}", table, "must be a table")
            extra.append(config_from_mapping(FieldSpec, {**table, "name": name},
                                             prefix=f"fields.{name}"))
        for section in ("validators", "policy", "anchoring", "privacy", "attribution", "rewards"):
            check(isinstance(data.get(section, {}), Mapping), section, data.get(section),
                  "must be a table")
        for name, table in data.get("validators", {}).items():
            check(isinstance(table, Mapping), f"validators.{name}", table, "must be a table")
        schedule = data.get("schedule")
        check(schedule is None or isinstance(schedule, str), "schedule", schedule,
              "must be a cron expression or an Airflow preset such as '@daily'")
        if schedule is not None:
            check_schedule(schedule)
        spec = DatanetSpec(
            id=data["id"],
            name=data.get("name", data["id"]),
            description=data.get("description", ""),
            license=data.get("license", "CC-BY-4.0"),
            schedule=schedule,
            limits=config_from_mapping(Limits, data.get("limits"), prefix="limits"),
            fields=tuple(extra),
            pipeline=config_from_mapping(PipelineOptions, data.get("pipeline"),
                                         prefix="pipeline"),
            validators=_freeze(data.get("validators", {})),
            policy=_freeze(data.get("policy", {})),
            anchoring=_freeze(data.get("anchoring", {})),
            privacy=_freeze(data.get("privacy", {})),
            attribution=_freeze(data.get("attribution", {})),
            rewards=_freeze(data.get("rewards", {})),
            source=source,
        )
    except SpecError as exc:
        if source and not exc.source:
            raise SpecError(exc.key, exc.value, exc.allowed, source=source) from None
        raise
    return spec.validate()


def load_spec(path: str | Path) -> DatanetSpec:
    """Load and validate a spec file; errors name the file, key, bad value and allowed."""
    path = path if hasattr(path, "read_text") else Path(path)  # or a store ObjectPath
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec", str(path), "file does not exist") from None
    except UnicodeDecodeError as exc:
        raise SpecError("spec", str(path), f"is not UTF-8 text ({exc.reason} at byte "
                                           f"{exc.start})") from None
    return parse_spec(load_toml(text, str(path)), source=str(path))


_TOML_POS_RE = re.compile(r"^(?P<what>.*?) \(at line (?P<line>\d+), column (?P<col>\d+)\)$",
                          re.DOTALL)


def load_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML; a syntax error is one :class:`SpecSyntaxError` ``file:line:column: what``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS_RE.match(msg)
        if m:
            raise SpecSyntaxError(source, int(m["line"]), int(m["col"]), m["what"]) from None
        # "(at end of document)": the position is just past the last character
        lines = text.split("\n")
        what = msg.replace(" (at end of document)", "")
        raise SpecSyntaxError(source, len(lines), len(lines[-1]) + 1, what) from None

