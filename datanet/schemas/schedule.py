"""The spec's ``schedule``: an Airflow preset or a 5-field cron expression, checked at load.

Airflow is optional (and heavy), and croniter is not a dependency, so this is a small parser
of the syntax Airflow hands to croniter: presets (``@daily`` …, ``@once``, ``@continuous``)
and ``minute hour day-of-month month day-of-week`` where each field is a comma list of
``*``, ``N``, ``N-M``, each optionally ``/STEP``; months and weekdays may be names
(``JAN``, ``MON``); day-of-week ``7`` is Sunday; day-of-month ``L`` (last) and day-of-week
``N#K`` (K-th weekday of the month) and ``NL`` (last weekday N) as croniter supports them.
Sources: crontab(5); Airflow ``airflow.utils.dates.cron_presets``; croniter's README.
"""

from __future__ import annotations

import re

from datanet.errors import SpecError

__all__ = ["PRESETS", "check_schedule"]

#: Airflow's presets (cron_presets, plus @once / @continuous that are not cron at all).
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly",
           "@yearly", "@annually", "@midnight")

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
#: (name, low, high, names) per field.
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_ALLOWED = ("an Airflow preset (" + ", ".join(PRESETS) + ") or a cron expression of 5 fields "
            "'minute hour day-of-month month day-of-week', e.g. '0 3 * * *'")


def _value(token: str, field: tuple) -> int:
    name, lo, hi, names = field
    v = names.get(token.lower()) if names else None
    if v is None:
        if not token.isdigit():
            raise ValueError(f"{name} {token!r} is not a number"
                             + (f" or a name ({', '.join(names)})" if names else ""))
        v = int(token)
    if not lo <= v <= hi:
        raise ValueError(f"{name} {v} is outside {lo}-{hi}")
    return v


def _check_field(text: str, field: tuple) -> None:
    name, lo, hi, _ = field
    for part in text.split(","):
        if not part:
            raise ValueError(f"{name} {text!r} has an empty list item")
        if name == "day-of-month" and part.upper() == "L":
            continue
        if name == "day-of-week" and (m := re.fullmatch(r"(\w+)(?:#([1-5])|L)", part)):
            _value(m[1], field)
            continue
        rng, _, step = part.partition("/")
        if step and (not step.isdigit() or not 1 <= int(step) <= hi - lo + 1):
            raise ValueError(f"{name} step {step!r} must be 1-{hi - lo + 1}")
        if rng in ("*", "?"):
            continue
        first, dash, last = rng.partition("-")
        a = _value(first, field)
        if dash and _value(last, field) < a:
            raise ValueError(f"{name} range {rng!r} runs backwards")


def check_schedule(schedule: str, key: str = "schedule") -> None:
    """Raise :class:`SpecError` unless ``schedule`` is a preset or a valid cron expression."""
    s = schedule.strip()
    try:
        if s.startswith("@"):
            if s.lower() not in PRESETS:
                raise ValueError("unknown preset")
            return
        parts = s.split()
        if len(parts) != 5:
            raise ValueError(f"{len(parts)} fields")
        for text, field in zip(parts, _FIELDS, strict=True):
            _check_field(text, field)
    except ValueError as exc:
        raise SpecError(key, schedule, f"is not a valid Airflow schedule ({exc}); must be "
                                       f"{_ALLOWED}") from None
