"""Known validators and how a spec turns them on.

Every validator is on by default at its documented defaults; ``[validators.<name>]`` tunes
it and ``enabled = false`` turns it off. Batch validators run per Arrow batch; keyed
validators (duplicates, flood control) need records from across the whole input and the
datanet's history, so ``pipelines`` composes a keyed Beam stage for each of them.
Entries are ``"module:Class"`` strings imported lazily (GX, Presidio and friends are slow to
import and must not be paid for when off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from datanet.errors import SpecError
from datanet.schemas.config import check, load_target

__all__ = [
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


def _all() -> dict[str, str]:
    return {**BATCH_VALIDATORS, **KEYED_VALIDATORS}


def validator_class(name: str) -> type:
    """Import the class registered under ``name``."""
    target = _all().get(name)
    if target is None:
        raise SpecError(f"validators.{name}", name,
                        f"is not a known validator; known: {', '.join(sorted(_all()))}")
    return load_target(target)


def _table(spec: Any, name: str) -> Mapping[str, Any]:
    return dict(spec.validators.get(name) or {})


def is_enabled(spec: Any, name: str) -> bool:
    """Validators are on unless their table says ``enabled = false``."""
    enabled = _table(spec, name).get("enabled", True)
    check(isinstance(enabled, bool), f"validators.{name}.enabled", enabled,
          "must be true or false")
    return enabled


def validator_config(spec: Any, name: str) -> Any:
    """The validator's frozen config built from ``[validators.<name>]`` (minus ``enabled``)."""
    from datanet.schemas.config import config_from_mapping

    cls = validator_class(name)
    table = _table(spec, name)
    table.pop("enabled", None)
    return config_from_mapping(cls.config_cls, table, prefix=f"validators.{name}")


def enabled_validators(spec: Any, *, kind: str = "batch") -> list[Any]:
    """Instantiate the enabled validators of one kind (``batch`` or ``keyed``) in run order."""
    names = BATCH_VALIDATORS if kind == "batch" else KEYED_VALIDATORS
    out = []
    for name in names:
        if is_enabled(spec, name):
            out.append(validator_class(name)(validator_config(spec, name), spec))
    return out


def validate_spec_section(spec: Any) -> None:
    """Spec hook: every ``[validators.*]`` table names a known validator with a valid config."""
    for name in spec.validators:
        validator_class(name)
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
    for name in _all():
        lines += ["", f"[validators.{name}]", "enabled = true"]
    lines += ["", "[policy]", "", "[anchoring]", ""]
    return "\n".join(lines)
