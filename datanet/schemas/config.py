"""Build frozen config dataclasses from TOML tables with precise error messages.

Every section of a datanet spec (``[limits]``, ``[validators.<name>]``, ``[policy]``,
``[anchoring]`` …) is a frozen dataclass; :func:`config_from_mapping` fills one from a TOML
table, rejecting unknown keys and wrong types with a :class:`~datanet.errors.SpecError` that
names the dotted key, the bad value and what is allowed. Range checks live in each dataclass's
``__post_init__`` and raise through :func:`check`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from datanet.errors import SpecError

__all__ = ["config_from_mapping", "check", "check_range", "check_choice", "load_target"]

T = TypeVar("T")


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` (registries name classes and hooks lazily)."""
    import importlib

    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def check(ok: bool, key: str, value: object, allowed: str) -> None:
    """Raise ``SpecError(key, value, allowed)`` unless ``ok``."""
    if not ok:
        raise SpecError(key, value, allowed)


def check_range(
    key: str, value: float, lo: float | None = None, hi: float | None = None
) -> None:
    """Check ``lo <= value <= hi`` (either bound optional)."""
    if lo is not None and hi is not None:
        check(lo <= value <= hi, key, value, f"must be between {lo} and {hi}")
    elif lo is not None:
        check(value >= lo, key, value, f"must be >= {lo}")
    elif hi is not None:
        check(value <= hi, key, value, f"must be <= {hi}")


def check_choice(key: str, value: object, choices: typing.Iterable[object]) -> None:
    """Check that ``value`` is one of ``choices``."""
    choices = list(choices)
    check(value in choices, key, value, f"must be one of {', '.join(map(repr, choices))}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against annotation ``tp``; convert lists to tuples for frozen configs."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except SpecError as exc:
                errors.append(exc)
        raise SpecError(key, value, f"must be {_type_name(tp)}")
    if origin is typing.Literal:
        check_choice(key, value, args)
        return value
    if origin in (tuple, list, frozenset, set):
        check(isinstance(value, (list, tuple)), key, value, f"must be a list ({_type_name(tp)})")
        item_tp = args[0] if args else Any
        items = tuple(_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value))
        return frozenset(items) if origin in (frozenset, set) else items
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        check(isinstance(value, Mapping), key, value, "must be a table")
        vtp = args[1] if len(args) == 2 else Any
        return types.MappingProxyType(
            {str(k): _coerce(f"{key}.{k}", v, vtp) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp):
        check(isinstance(value, Mapping), key, value, "must be a table")
        return config_from_mapping(tp, value, prefix=key)
    if tp is float:
        check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            key, value, "must be a number",
        )
        return float(value)
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, value,
              "must be an integer")
        return value
    if tp is bool:
        check(isinstance(value, bool), key, value, "must be true or false")
        return value
    if tp is str:
        check(isinstance(value, str), key, value, "must be a string")
        return value
    if isinstance(tp, type):
        check(isinstance(value, tp), key, value, f"must be {_type_name(tp)}")
    return value


def config_from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, *, prefix: str) -> T:
    """Instantiate dataclass ``cls`` from a TOML table.

    Unknown keys fail with the list of known keys; missing keys take the dataclass defaults.
    ``prefix`` is the dotted path of the table (``validators.minhash``) used in messages.
    """
    mapping = dict(mapping or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise SpecError(key, mapping[unknown[0]],
                        f"is not a known key; known keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in mapping.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(key, value, hints[name])
    try:
        return cls(**kwargs)
    except SpecError as exc:
        if prefix and not exc.key.startswith(prefix + "."):
            raise SpecError(f"{prefix}.{exc.key}", exc.value, exc.allowed) from None
        raise
    except TypeError as exc:  # a required field without default
        raise SpecError(prefix or cls.__name__, mapping, f"is incomplete: {exc}") from None
