"""Build frozen dataclasses from parsed TOML tables and write them back, validating as we go.

Field metadata from ``heli.params.quantity`` gives each value its unit, range and choices; an
error names the file, the dotted key path, the bad value and what was expected, in one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from heli.errors import ConfigError

__all__ = ["build", "to_table"]

T = TypeVar("T")


def _where(source: str | Path | None, path: str) -> str:
    return f"{source}: {path}" if source else path


def _expected(meta: typing.Mapping[str, Any], kind: str) -> str:
    parts = [kind]
    bounds = [(">", meta.get("gt")), (">=", meta.get("ge")), ("<", meta.get("lt")), ("<=", meta.get("le"))]
    parts += [f"{op} {value:g}" for op, value in bounds if value is not None]
    if meta.get("choices"):
        parts.append("one of " + ", ".join(repr(c) for c in meta["choices"]))
    unit = meta.get("unit")
    if unit and unit != "-":
        parts.append(f"in {unit}")
    return " ".join(parts)


def _check_scalar(value: Any, hint: Any, meta: typing.Mapping[str, Any], where: str) -> Any:
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        kind, value = "a number", float(value) if ok else value
        if ok and not math.isfinite(value):
            raise ConfigError(f"{where} = {value!r}: out of range, expected {_expected(meta, 'a finite number')}")
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "a whole number"
    elif hint is bool:
        ok, kind = isinstance(value, bool), "true or false"
    elif hint is str:
        ok, kind = isinstance(value, str), "a string"
    else:
        raise TypeError(f"unsupported field type {hint!r} at {where}")
    if not ok:
        raise ConfigError(f"{where} = {value!r}: expected {_expected(meta, kind)}")
    checks = (
        ("gt", lambda v, b: v > b),
        ("ge", lambda v, b: v >= b),
        ("lt", lambda v, b: v < b),
        ("le", lambda v, b: v <= b),
    )
    for key, test in checks:
        bound = meta.get(key)
        if bound is not None and not test(value, bound):
            raise ConfigError(f"{where} = {value!r}: out of range, expected {_expected(meta, kind)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} = {value!r}: expected {_expected(meta, kind)}")
    return value


def _unknown_key(key: str, known: list[str], where: str, units: dict[str, str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = ""
    if close:
        unit = units.get(close[0])
        hint = f"; did you mean {close[0]!r}" + (f" (in {unit})" if unit and unit != "-" else "") + "?"
    return ConfigError(f"{where}: unknown key{hint} (valid keys: {', '.join(known)})")


def _convert(hint: Any, value: Any, meta: typing.Mapping[str, Any], where: str, source: Any, key_path: str) -> Any:
    """One value of type ``hint``: a nested table, a list, an optional, or a scalar."""
    if dataclasses.is_dataclass(hint):
        return build(hint, value, source=source, path=key_path)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _convert(options[0], value, meta, where, source, key_path)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where} = {value!r}: expected a list")
        return tuple(_convert(item, v, meta, f"{where}[{i}]", source, f"{key_path}[{i}]") for i, v in enumerate(value))
    return _check_scalar(value, hint, meta, where)


def build(cls: type[T], table: Any, *, source: str | Path | None = None, path: str = "") -> T:
    """An instance of dataclass ``cls`` from a TOML table, every value checked (ConfigError)."""
    where_table = _where(source, path or "(top level)")
    if not isinstance(table, dict):
        raise ConfigError(f"{where_table}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    units = {name: f.metadata.get("unit", "") for name, f in fields.items()}
    for key in table:
        if key not in fields:
            raise _unknown_key(key, list(fields), _where(source, f"{path}.{key}" if path else key), units)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        where = _where(source, key_path)
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                unit = f.metadata.get("unit")
                if dataclasses.is_dataclass(hints[name]):
                    raise ConfigError(f"{where}: missing table [{key_path}]")
                suffix = f" ({_expected(f.metadata, 'a value')})" if unit else ""
                raise ConfigError(f"{where}: missing{suffix}")
            continue
        values[name] = _convert(hints[name], table[name], f.metadata, where, source, key_path)
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{_where(source, path) if path else source or ''}: {error}".lstrip(": ")) from None


def to_table(instance: Any) -> dict[str, Any]:
    """A TOML-ready nested dict of a dataclass instance (tuples become lists, None is dropped)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_table(value)
        elif isinstance(value, tuple):
            out[f.name] = [to_table(v) if dataclasses.is_dataclass(v) else v for v in value]
        elif value is not None:
            out[f.name] = value
    return out
