"""What a configuration field says about itself, and the checks that read it.

Every field of the run configuration is declared with ``option``: its default, its help, the range or
choices its value must lie in, and its role:

- ``result``: it changes what a run computes (the model, data, objective, schedule, evaluation). A resumed
  run may not change it, unless it is marked ``resumable`` (more epochs, another post-training evaluation);
  ``compare`` trains runs that differ in it separately.
- ``bookkeeping``: names, logging, checkpointing, publishing: where and how results are kept, not what they are.
- ``runtime``: how fast or where the same computation runs (workers, compilation, devices, threads); results
  agree up to rounding.

The value checks, the resume check (``training.checkpoints``) and compare's de-duplication all read this
metadata, so they cannot disagree. Values from YAML files, the command line and ``with_overrides`` are all
typed by ``coerce``, from the field's type annotation.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Iterable, Literal, Optional, Sequence, Union

RESULT, BOOKKEEPING, RUNTIME = "result", "bookkeeping", "runtime"
ROLES = (RESULT, BOOKKEEPING, RUNTIME)


def option(default: Any = dataclasses.MISSING, help: str = "", *, role: str = RESULT,
           range: Optional[str] = None, choices: Optional[Sequence[str]] = None, resumable: bool = False,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its help, allowed values and role in its metadata.

    ``range`` is an interval such as ``"[1, inf)"`` (a list value is checked item by item); ``choices`` the allowed
    strings, for fields whose choices live in another module (a ``Literal`` type carries its own).
    ``resumable`` marks a result key that a resumed run may change: it changes nothing computed before the
    checkpoint (the number of epochs, what is evaluated after training).
    """
    if role not in ROLES:
        raise ValueError(f"role={role!r} is not one of {ROLES}")
    if range is not None:
        _parse_interval(range)  # a malformed interval is a bug in the declaration: fail at import
    metadata = {"help": help, "role": role, "range": range, "choices": tuple(choices) if choices else None,
                "resumable": resumable or role != RESULT}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def role_of(field: dataclasses.Field) -> str:
    return field.metadata.get("role", RESULT)


# --- types -------------------------------------------------------------------------------------------------------

def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> (X, True); X -> (X, False)."""
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def item_type(hint: Any) -> tuple[Any, bool]:
    """The type of one value, and whether the field holds a list of them."""
    hint, _ = unwrap_optional(hint)
    if typing.get_origin(hint) in (list, tuple, Sequence):
        return typing.get_args(hint)[0], True
    return hint, False


def choices_of(field: dataclasses.Field, hint: Any) -> Optional[tuple[str, ...]]:
    """The allowed values of a field (or of each of its items): its ``Literal`` type's, or its metadata's."""
    single, _ = item_type(hint)
    if typing.get_origin(single) is Literal:
        return tuple(typing.get_args(single))
    return field.metadata.get("choices")


_TRUE, _FALSE = ("true", "yes", "y", "1", "on"), ("false", "no", "n", "0", "off")


def coerce_item(value: Any, kind: Any) -> Any:
    """One value as ``kind`` (int, float, bool, str, or a Literal of strings); raises ValueError saying what is
    expected. Strings are parsed as the command line parses them ("1e-4" is a float, "true" a bool), which is
    also how YAML leaves some numbers (PyYAML reads ``1e-4`` as a string)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                number = float(value)  # "1e3"
                if number.is_integer():
                    return int(number)
        raise ValueError("expected an integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise ValueError("expected a number")
    if kind is str or typing.get_origin(kind) is Literal:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)  # a number where a name is expected: checkpointing_steps: 500, keep_classes: [0, 1]
        raise ValueError("expected a string")
    raise TypeError(f"no coercion to {kind!r}")  # a field of a type this module does not know: a bug


def coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """A raw value (YAML, the command line, an override) as the field's type; an error names key, value, source."""
    kind, is_list = item_type(hint)
    _, optional = unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key}=None in {source}: a value is required")
    try:
        if is_list:
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            return [coerce_item(item, kind) for item in items]
        return coerce_item(value, kind)
    except (ValueError, TypeError) as error:
        expected = str(error) if isinstance(error, ValueError) and str(error).startswith("expected") else f"expected {kind}"
        raise ValueError(f"{key}={value!r} in {source} is not valid: {expected}"
                         + (" (or a list of them)" if is_list else "")) from None


# --- checks ------------------------------------------------------------------------------------------------------

def check_field(field: dataclasses.Field, hint: Any, value: Any, source: str) -> None:
    """Refuse a value outside the field's range or choices, naming key, value and what is allowed."""
    if value is None:
        return
    items = value if isinstance(value, (list, tuple)) else [value]
    each = "each value" if isinstance(value, (list, tuple)) else "it"
    interval = field.metadata.get("range")
    if interval is not None:
        numbers = [item for item in items if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if not all(_in_interval(number, interval) for number in numbers):
            raise ValueError(f"{field.name}={value!r} in {source} is out of range: {each} must be "
                             f"{describe_interval(interval)}")
    choices = choices_of(field, hint)
    if choices is not None:
        bad = [item for item in items if item not in choices]
        if bad:
            raise ValueError(f"{field.name}={value!r} in {source} is not one of {list(choices)}")


def check_dataclass(instance: Any, source: str = "config") -> None:
    """``check_field`` for every field of a configuration dataclass."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        check_field(field, hints[field.name], getattr(instance, field.name), source)


def _in_interval(number: float, interval: str) -> bool:
    low_bracket, low, high, high_bracket = _parse_interval(interval)
    above = number >= low if low_bracket == "[" else number > low
    below = number <= high if high_bracket == "]" else number < high
    return above and below


def describe_interval(interval: str) -> str:
    low_bracket, low, high, _ = _parse_interval(interval)
    if math.isinf(high):
        return f"{'>=' if low_bracket == '[' else '>'} {low:g}"
    return f"in {interval}"


def _parse_interval(interval: str) -> tuple[str, float, float, str]:
    match = re.fullmatch(r"([\[(])(.+), (.+)([\])])", interval)
    if match is None:
        raise ValueError(f"{interval!r} is not an interval like '[0, 1)'")
    low_bracket, low, high, high_bracket = match.groups()
    return low_bracket, float(low), float(high), high_bracket


def fields_with(sections: Iterable[type], predicate) -> list[str]:
    """Names of the fields of ``sections`` whose ``dataclasses.Field`` satisfies ``predicate``."""
    return [field.name for section in sections for field in dataclasses.fields(section) if predicate(field)]
