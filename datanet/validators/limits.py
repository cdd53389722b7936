"""Limits and schema validator: text length and the spec's field constraints.

Reasons: ``too_short`` / ``too_long`` (characters of the normalised text, from
``[limits]``), ``field_required:<f>``, ``field_choice:<f>``, ``field_min:<f>``,
``field_max:<f>``, ``field_max_length:<f>``, ``field_pattern:<f>``. Vectorised with
pyarrow.compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datanet.validators.base import RuleValidator, first_reason

__all__ = ["LimitsConfig", "LimitsValidator"]


@dataclass(frozen=True)
class LimitsConfig:
    """No own settings: lengths come from the spec's ``[limits]``, fields from ``[fields]``."""


class LimitsValidator(RuleValidator):
    """Rejects records outside the spec's length limits or field constraints."""

    name = "limits"
    config_cls = LimitsConfig
    summary = "Length of the normalised text and the spec's typed fields ([limits], [fields.*])."
    reason_codes = ("too_short", "too_long", "field_required:<field>", "field_choice:<field>",
                    "field_min:<field>", "field_max:<field>", "field_max_length:<field>",
                    "field_pattern:<field>")

    def __init__(self, config: LimitsConfig, spec: Any):
        self.config = config
        self.limits = spec.limits
        self.fields = spec.fields

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        n = batch.num_rows
        length = pc.utf8_length(batch.column("text_norm"))
        conditions: list[tuple[str, Any]] = [
            ("too_short", pc.less(length, self.limits.min_chars)),
            ("too_long", pc.greater(length, self.limits.max_chars)),
        ]
        names = set(batch.schema.names)
        for f in self.fields:
            col = batch.column(f.name) if f.name in names else pa.nulls(n)
            present = pc.is_valid(col)
            if f.required:
                conditions.append((f"field_required:{f.name}", pc.invert(present)))
            if f.choices:
                ok = pc.is_in(col, value_set=pa.array(list(f.choices), col.type))
                conditions.append((f"field_choice:{f.name}",
                                   pc.and_(present, pc.invert(ok))))
            if f.min is not None:
                conditions.append((f"field_min:{f.name}",
                                   pc.fill_null(pc.less(col, f.min), False)))
            if f.max is not None:
                conditions.append((f"field_max:{f.name}",
                                   pc.fill_null(pc.greater(col, f.max), False)))
            if f.max_length is not None and f.type == "string":
                conditions.append((f"field_max_length:{f.name}",
                                   pc.fill_null(pc.greater(pc.utf8_length(col), f.max_length),
                                                False)))
            if f.pattern is not None and f.type == "string":
                match = pc.match_substring_regex(col, f"^(?:{f.pattern})$")
                conditions.append((f"field_pattern:{f.name}",
                                   pc.fill_null(pc.invert(match), False)))
        conditions = [(r, pc.fill_null(m, False)) for r, m in conditions]
        return first_reason(conditions, n)
