"""The spec `datanet init` writes when no spec is given: every validator on at its defaults."""

from __future__ import annotations

import re

__all__ = ["default_spec_text", "datanet_id_from_name"]


def datanet_id_from_name(name: str) -> str:
    """A valid datanet id from a directory name (lowercase, [a-z0-9_-])."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "datanet"
    return slug[:63]


def default_spec_text(datanet_id: str) -> str:
    """TOML text of a default spec; every registered validator is listed and enabled."""
    from datanet.validators.registry import BATCH_VALIDATORS, KEYED_VALIDATORS

    lines = [
        f'id = "{datanet_id}"',
        f'name = "{datanet_id}"',
        'description = ""',
        'license = "CC-BY-4.0"',
        "",
        "[limits]",
        "max_record_bytes = 262144  # larger lines go to dead-letter as too_large",
        "min_chars = 20             # shorter normalised texts are rejected too_short",
        "max_chars = 100000         # longer normalised texts are rejected too_long",
        "",
        "[pipeline]",
        'runner = "DirectRunner"',
        "batch_rows = 2000",
        "",
        "# Every validator runs at its documented defaults; tune keys here or set",
        "# enabled = false. See README.md for each validator's keys.",
    ]
    for name in (*BATCH_VALIDATORS, *KEYED_VALIDATORS):
        lines += ["", f"[validators.{name}]", "enabled = true"]
    lines += ["", "[policy]", "", "[anchoring]", ""]
    return "\n".join(lines)
