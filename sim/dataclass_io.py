"""Build frozen dataclasses from parsed TOML tables and write them back, validating as we go.

One schema per value: the field metadata from ``heli.params.quantity`` gives each value its
type, unit, range (with the reason for it), choices, text length or list length, and every
way a value can come in is checked against it the same way: a file's table (``build``) and a
command-line option's text (``parse_text``).  An error names the file or option, the dotted key
path, the bad value (shortened: never a thousand-line message) and what was expected, in one
line.  What ``build`` accepts, ``to_table`` writes back so that ``build`` gives the same value.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from heli.errors import ConfigError
from heli.params import MAX_TEXT_CHARS

__all__ = ["build", "describe", "field_meta", "parse_text", "range_text", "short_source", "show", "to_table"]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

_MAX_SHOWN_SOURCE_CHARS = 160  # a path in a message is cut in the middle beyond this
_MAX_SUGGESTED_KEY_CHARS = 64  # longer unknown keys get no "did you mean"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # control characters, and bytes that were not UTF-8
_LABEL_UNITS = ("channel", "axis", "button", "index")  # named by the key; shown in brackets, if at all


class _Short(reprlib.Repr):
    """``repr`` cut short: long strings and lists elided, huge integers described, not printed."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = 60
        self.maxother = 60
        self.maxlong = 40
        self.maxlist = self.maxtuple = 6
        self.maxdict = 4
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # repr() itself refuses integers past 4300 digits
            return f"<a {'negative ' if x < 0 else ''}{int(x.bit_length() * math.log10(2)) + 1}-digit whole number>"
        return super().repr_int(x, level)


_SHORT = _Short()


def show(value: Any) -> str:
    """A value as an error message shows it: its repr, shortened, always one line."""
    return _SHORT.repr(value)


def short_source(source: str | Path) -> str:
    text = str(source)
    if len(text) > _MAX_SHOWN_SOURCE_CHARS or _NOT_TEXT.search(text):
        text = show(text)
    return text


def _where(source: str | Path | None, path: str) -> str:
    return f"{short_source(source)}: {path}" if source else path


def _key(key: Any) -> str:
    """A table key as a message shows it: plain keys as they are, anything else quoted and shortened."""
    return key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else show(key)


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value) if isinstance(value, int) else format(value, "g")


def _unit_text(meta: typing.Mapping[str, Any]) -> str:
    unit = meta.get("unit") or "-"
    if unit == "-":
        return ""
    return f" ({unit})" if unit in _LABEL_UNITS else f" {unit}"


def range_text(meta: typing.Mapping[str, Any]) -> str:
    """ "from 1 to 16", "above 0, up to 0.01", "at least 0", ... ("" without bounds)."""
    low, low_in = (meta["ge"], True) if meta.get("ge") is not None else (meta.get("gt"), False)
    high, high_in = (meta["le"], True) if meta.get("le") is not None else (meta.get("lt"), False)
    if low is not None and high is not None:
        if low_in and high_in:
            return f"from {_number(low)} to {_number(high)}"
        if high_in:
            return f"above {_number(low)}, up to {_number(high)}"
        if low_in:
            return f"from {_number(low)} to below {_number(high)}"
        return f"above {_number(low)} and below {_number(high)}"
    if low is not None:
        return f"at least {_number(low)}" if low_in else f"above {_number(low)}"
    if high is not None:
        return f"at most {_number(high)}" if high_in else f"below {_number(high)}"
    return ""


def describe(meta: typing.Mapping[str, Any], kind: str) -> str:
    """What a field expects, as a person says it: "a number from 0.05 to 1.5 m: RC scale ..."."""
    choices = meta.get("choices")
    if choices:
        text = "one of " + ", ".join(repr(c) for c in choices) + _unit_text(meta)
    else:
        span = range_text(meta)
        unit = _unit_text(meta)
        text = f"{kind} {span}{unit}" if span else (f"{kind} in{unit}" if unit and "(" not in unit else kind + unit)
    why = meta.get("why")
    return f"{text}: {why}" if why else text


def field_meta(cls: type, name: str) -> typing.Mapping[str, Any]:
    """The metadata of field ``name`` of dataclass ``cls``."""
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


class _Refused(Exception):
    """A value that does not fit its schema: ``problem`` says why, in words that follow "value: "."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_KINDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}


def _check_scalar(value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    """``value`` as type ``hint`` if it fits the schema, else ``_Refused``."""
    kind = _KINDS.get(hint)
    if kind is None:
        raise TypeError(f"unsupported field type {hint!r}")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    fits = {
        float: is_number,
        int: is_number and not isinstance(value, float),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not fits:
        raise _Refused(f"expected {describe(meta, kind)}")
    if hint is float:
        try:
            value = float(value)
        except OverflowError:  # an integer beyond a float's range
            raise _Refused(f"out of range, expected {describe(meta, kind)}") from None
        if not math.isfinite(value):
            raise _Refused(f"out of range, expected {describe(meta, 'a finite number')}")
    elif hint is str:
        limit = meta.get("max_chars") or MAX_TEXT_CHARS
        if len(value) > limit:
            raise _Refused(f"too long ({len(value)} characters), expected at most {limit}")
        if _NOT_TEXT.search(value):
            raise _Refused("expected text without control characters (tab, newline, NUL ...), in UTF-8")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise _Refused(f"expected {meta.get('shape') or 'text matching ' + pattern}")
    bounds = (("gt", operator.gt), ("ge", operator.ge), ("lt", operator.lt), ("le", operator.le))
    for key, test in bounds:
        bound = meta.get(key)
        if bound is not None and not test(value, bound):  # exact for any int: no float conversion
            raise _Refused(f"out of range, expected {describe(meta, kind)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise _Refused(f"expected {describe(meta, kind)}")
    return value


def _unknown_key(key: Any, known: list[str], where: str, units: dict[str, str]) -> ConfigError:
    close = []
    if isinstance(key, str) and len(key) <= _MAX_SUGGESTED_KEY_CHARS:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = ""
    if close:
        unit = units.get(close[0])
        hint = f"; did you mean {close[0]!r}" + (f" (in {unit})" if unit and unit != "-" else "") + "?"
    return ConfigError(f"{where}: unknown key{hint} (valid keys: {', '.join(known)})")


def _item_kind(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "tables"
    return {float: "numbers", int: "whole numbers", bool: "true/false values", str: "texts"}.get(hint, "values")


def _list_expected(item: Any, meta: typing.Mapping[str, Any]) -> str:
    items, most = meta.get("items"), meta.get("max_items")
    count = f"{items} " if items is not None else ""
    return f"a list of {count}{_item_kind(item)}" + (f" (at most {most})" if most is not None else "")


def _check_list(value: Any, item: Any, meta: typing.Mapping[str, Any], where: str) -> None:
    items, most = meta.get("items"), meta.get("max_items")
    expected = _list_expected(item, meta)
    if not isinstance(value, list):
        raise ConfigError(f"{where} = {show(value)}: expected {expected}")
    if (items is not None and len(value) != items) or (most is not None and len(value) > most):
        raise ConfigError(f"{where}: a list of {len(value)}, expected {expected}")


def _convert(hint: Any, value: Any, meta: typing.Mapping[str, Any], where: str, source: Any, key_path: str) -> Any:
    """One value of type ``hint``: a nested table, a list, an optional, or a scalar."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, source=source, path=key_path)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _convert(options[0], value, meta, where, source, key_path)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        _check_list(value, item, meta, where)
        return tuple(_convert(item, v, meta, f"{where}[{i}]", source, f"{key_path}[{i}]") for i, v in enumerate(value))
    try:
        return _check_scalar(value, hint, meta)
    except _Refused as refused:
        raise ConfigError(f"{where} = {show(value)}: {refused.problem}") from None


def build(cls: type[T], table: Any, *, source: str | Path | None = None, path: str = "") -> T:
    """An instance of dataclass ``cls`` from a TOML table, every value checked (ConfigError)."""
    where_table = _where(source, path or "(top level)")
    if not isinstance(table, dict):
        raise ConfigError(f"{where_table}: expected a table, got {show(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    units = {name: f.metadata.get("unit", "") for name, f in fields.items()}
    for key in table:
        if key not in fields:
            raise _unknown_key(key, list(fields), _where(source, f"{path}.{_key(key)}" if path else _key(key)), units)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        where = _where(source, key_path)
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if dataclasses.is_dataclass(hints[name]):
                    raise ConfigError(f"{where}: missing table [{key_path}]")
                if typing.get_origin(hints[name]) is tuple:
                    suffix = f" (expected {_list_expected(typing.get_args(hints[name])[0], f.metadata)})"
                else:
                    suffix = f" (expected {describe(f.metadata, _KINDS.get(hints[name], 'a value'))})"
                raise ConfigError(f"{where}: missing{suffix}")
            continue
        values[name] = _convert(hints[name], table[name], f.metadata, where, source, key_path)
    try:
        return cls(**values)
    except ConfigError as error:
        prefix = _where(source, path) if path else short_source(source) if source else ""
        raise ConfigError(f"{prefix}: {error}" if prefix else str(error)) from None


def parse_text(cls: type, name: str, text: str) -> Any:
    """A command-line value for field ``name`` of ``cls``, parsed and checked by the field's schema.

    Raises ``ConfigError`` whose message starts with the text as given: "1e-06: out of range, ...".
    """
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    meta = field_meta(cls, name)
    shown = show(text)
    value: Any = text
    try:
        if hint is float:
            value = float(text)
            shown = text if len(text) <= 40 else shown
        elif hint is int:
            value = int(text, 10)
            shown = text if len(text) <= 40 else shown
        elif hint is bool:
            value = {"true": True, "false": False}.get(text.lower(), text)
    except ValueError:  # not a number (or an integer of more than 4300 digits)
        raise ConfigError(f"{shown}: expected {describe(meta, _KINDS[hint])}") from None
    try:
        return _check_scalar(value, hint, meta)
    except _Refused as refused:
        raise ConfigError(f"{shown}: {refused.problem}") from None


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
