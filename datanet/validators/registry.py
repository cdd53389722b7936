"""Known validators and how a spec turns them on.

Every validator is on by default at its documented defaults; ``[validators.<name>]`` tunes
it and ``enabled = false`` turns it off. Batch validators run per Arrow batch; keyed
validators (duplicates, flood control) need records from across the whole input and the
datanet's history, so ``pipelines`` composes a keyed Beam stage for each of them.
Entries are ``"module:Class"`` strings imported lazily (GX, Presidio and friends are slow to
import and must not be paid for when off).

Third-party validators register through the ``datanet.validators`` entry-point group
(``name = "package.module:Class"``, see ``docs/writing-a-validator.md``); they are configured
like built-ins and run after the built-in batch validators, in name order. Every class is
checked against the contract of :class:`~datanet.validators.base.Validator` when loaded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from datanet.errors import SpecError, ValidatorError
from datanet.schemas.config import check, load_target
from datanet.validators.base import check_validator_class

if TYPE_CHECKING:
    from datanet.schemas.spec import DatanetSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "validator_rows",
    "validators_markdown",
    "plugin_validators",
    "validator_names",
    "validator_kind",
    "default_spec_text",
    "datanet_id_from_name",
    "BATCH_VALIDATORS",
    "KEYED_VALIDATORS",
    "validator_class",
    "enabled_validators",
    "validator_config",
    "validate_spec_section",
]

#: name -> "module:Class" of validators that vote on one Arrow batch at a time, in run order.
BATCH_VALIDATORS: dict[str, str] = {
    "limits": "datanet.validators.limits:LimitsValidator",
    "gopher_quality": "datanet.validators.quality:GopherQualityValidator",
    "gopher_repetition": "datanet.validators.quality:GopherRepetitionValidator",
    "c4_quality": "datanet.validators.quality:C4QualityValidator",
    "fineweb_quality": "datanet.validators.quality:FineWebQualityValidator",
    "spam": "datanet.validators.spam:SpamValidator",
    "language": "datanet.validators.language:LanguageValidator",
    "expectations": "datanet.validators.gx:ExpectationsValidator",
    "signature": "datanet.validators.signature:SignatureValidator",
    "pii": "datanet.validators.pii:PiiValidator",
}

#: name -> "module:Class" of validators that need a keyed (GroupByKey) stage.
KEYED_VALIDATORS: dict[str, str] = {
    "exact_duplicate": "datanet.validators.exact_duplicate:ExactDuplicateValidator",
    "near_duplicate": "datanet.validators.minhash:NearDuplicateValidator",
    "flood": "datanet.validators.spam:FloodValidator",
}


#: The entry-point group through which installed packages add validators.
ENTRY_POINT_GROUP = "datanet.validators"


@functools.lru_cache(maxsize=1)
def plugin_validators() -> dict[str, str]:
    """name -> "module:Class" of validators installed under :data:`ENTRY_POINT_GROUP`, in name
    order; a plugin may not take a built-in's name."""
    from importlib.metadata import entry_points

    out: dict[str, str] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"entry point {ep.name!r} of {ep.dist.name if ep.dist else '?'}"
        if ep.name in BATCH_VALIDATORS or ep.name in KEYED_VALIDATORS:
            raise ValidatorError(f"{where}: {ep.name!r} is a built-in validator's name")
        if ep.name in out:
            raise ValidatorError(f"{where}: {ep.name!r} is registered twice")
        out[ep.name] = ep.value
    return out


def _all() -> dict[str, str]:
    return {**BATCH_VALIDATORS, **KEYED_VALIDATORS, **plugin_validators()}


def validator_names(kind: str | None = None) -> list[str]:
    """Registered validator names (of one ``kind`` if given), in run order: built-in batch
    validators, plugins, built-in keyed validators. Asking for a kind imports the plugins (their
    class says their kind)."""
    plugins = list(plugin_validators())
    if kind is None:
        return [*BATCH_VALIDATORS, *plugins, *KEYED_VALIDATORS]
    if kind == "keyed":
        return [*KEYED_VALIDATORS, *(p for p in plugins if validator_kind(p) == "keyed")]
    return [*BATCH_VALIDATORS, *(p for p in plugins if validator_kind(p) == "batch")]


def validator_kind(name: str) -> str:
    """``batch`` or ``keyed``: from the tables for built-ins, from the class for plugins."""
    if name in BATCH_VALIDATORS:
        return "batch"
    if name in KEYED_VALIDATORS:
        return "keyed"
    return validator_class(name).kind


@functools.cache
def validator_class(name: str) -> type:
    """Import the class registered under ``name`` and check it fulfils the contract."""
    target = _all().get(name)
    if target is None:
        raise SpecError(f"validators.{name}", name,
                        f"is not a known validator; known: {', '.join(sorted(_all()))}")
    origin = "built-in" if name in BATCH_VALIDATORS or name in KEYED_VALIDATORS else (
        f"plugin {target}")
    try:
        cls = load_target(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValidatorError(f"validator {name!r} ({origin}) cannot be imported: {exc}") from None
    check_validator_class(cls, name, origin)
    return cls


def _table(spec: DatanetSpec, name: str) -> Mapping[str, Any]:
    return dict(spec.validators.get(name) or {})


def is_enabled(spec: DatanetSpec, name: str) -> bool:
    """Validators are on unless their table says ``enabled = false``."""
    enabled = _table(spec, name).get("enabled", True)
    check(isinstance(enabled, bool), f"validators.{name}.enabled", enabled,
          "must be true or false")
    return enabled


def validator_config(spec: DatanetSpec, name: str) -> Any:
    """The validator's frozen config built from ``[validators.<name>]`` (minus ``enabled``)."""
    from datanet.schemas.config import config_from_mapping

    cls = validator_class(name)
    table = _table(spec, name)
    table.pop("enabled", None)
    return config_from_mapping(cls.config_cls, table, prefix=f"validators.{name}")


def enabled_validators(spec: DatanetSpec, *, kind: str = "batch") -> list[Any]:
    """Instantiate the enabled validators of one kind (``batch`` or ``keyed``) in run order."""
    out = []
    names = [*BATCH_VALIDATORS, *plugin_validators()] if kind == "batch" else [
        *KEYED_VALIDATORS, *plugin_validators()]
    for name in names:  # a disabled plugin is not imported
        if is_enabled(spec, name) and validator_kind(name) == kind:
            out.append(validator_class(name)(validator_config(spec, name), spec))
    return out


def keyed_stages(spec: DatanetSpec) -> list[Any]:
    """The keyed validators a run executes: the enabled ones and, while ``exact_duplicate``
    is off, :class:`~datanet.validators.exact_duplicate.SubmissionValidator` (a contribution
    id is committed once whatever the spec)."""
    out = enabled_validators(spec, kind="keyed")
    if not is_enabled(spec, "exact_duplicate"):
        from datanet.validators.exact_duplicate import SubmissionValidator

        out.insert(0, SubmissionValidator(spec))
    return out


def validate_spec_section(spec: DatanetSpec) -> None:
    """Spec hook: every ``[validators.*]`` table names a known validator with a valid config.

    A disabled validator's module is not imported (only its name is checked): loading a spec
    happens on every ``datanet sql`` and must not pull in numba or Presidio for validators
    that will not run.
    """
    for name in spec.validators:
        if name not in _all():
            raise SpecError(f"validators.{name}", name,
                            f"is not a known validator; known: {', '.join(sorted(_all()))}")
        if is_enabled(spec, name):
            validator_config(spec, name)


def datanet_id_from_name(name: str) -> str:
    """A valid datanet id from a directory name (lowercase, [a-z0-9_-])."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "datanet"
    return slug[:63]


def default_spec_text(datanet_id: str) -> str:
    """The spec ``datanet init`` writes when none is given: every registered validator listed
    and enabled, limits and pipeline at the defaults of :mod:`datanet.schemas.spec`."""
    from datanet.schemas.spec import Limits, PipelineOptions

    limits, pipeline = Limits(), PipelineOptions()
    lines = [
        f'id = "{datanet_id}"',
        f'name = "{datanet_id}"',
        'description = ""',
        'license = "CC-BY-4.0"',
        "",
        "[limits]",
        f"max_record_bytes = {limits.max_record_bytes}  # larger lines: dead-letter too_large",
        f"min_chars = {limits.min_chars}  # shorter normalised texts are rejected too_short",
        f"max_chars = {limits.max_chars}  # longer normalised texts are rejected too_long",
        "",
        "[pipeline]",
        f'runner = "{pipeline.runner}"',
        f"batch_rows = {pipeline.batch_rows}",
        "",
        "# Every validator runs at its documented defaults; tune keys here or set",
        "# enabled = false. See README.md for each validator's keys.",
    ]
    for name in validator_names():
        lines += ["", f"[validators.{name}]", "enabled = true"]
    lines += ["", "[policy]", "", "[anchoring]", ""]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)


def validator_rows() -> list[dict[str, Any]]:
    """One row per registered validator (built-ins and plugins), from the classes themselves:
    name, kind, summary, reason codes and every config key with its default."""
    import dataclasses

    rows = []
    for name in validator_names():
        cls = validator_class(name)
        keys = {}
        for f in dataclasses.fields(cls.config_cls):
            if f.default is not dataclasses.MISSING:
                keys[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                keys[f.name] = f.default_factory()
        rows.append({"name": name, "kind": cls.kind, "summary": cls.summary,
                     "reason_codes": list(cls.reason_codes),
                     "keys": {k: _toml(v) for k, v in keys.items()},
                     "plugin": name in plugin_validators()})
    return rows


def validators_markdown() -> str:
    """The README's validator table (generated; a test checks the README holds it)."""
    lines = ["| validator | kind | what it checks | reason codes | keys (defaults) |",
             "| --- | --- | --- | --- | --- |"]
    for r in validator_rows():
        codes = ", ".join(f"`{c}`" for c in r["reason_codes"])
        keys = ", ".join(f"`{k}={v}`" for k, v in r["keys"].items()) or "-"
        lines.append(f"| `{r['name']}` | {r['kind']} | {r['summary']} | {codes} | {keys} |")
    return "\n".join(lines) + "\n"
