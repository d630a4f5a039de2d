"""The configuration reference (``docs/config.md``), generated from the config dataclasses.

Every key, unit, default, valid range and meaning comes from the field metadata the loader
itself checks against, so the reference cannot drift from what the loader accepts.  A test
regenerates it and compares it with the committed file; ``make docs`` rewrites it.

    python -m sim.reference docs/config.md
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any

from heli.control import ControllerParams
from heli.params import Environment, HeliParams
from sim.config import ChannelMap, FaultSpec, FlightSettings, JoystickMap, PortSpec

__all__ = ["render"]

_FLIGHT_TABLES: list[tuple[str, type]] = [
    ("[flight]", FlightSettings),
    ("[rc]", ChannelMap),
    ("[environment]", Environment),
    ("[joystick]", JoystickMap),
    ("[[ports]]", PortSpec),
    ("[[faults]]", FaultSpec),
]


def _doc(cls: type) -> str:
    """The first paragraph of a class's docstring, on one line."""
    text = inspect.getdoc(cls) or ""
    return " ".join(text.split("\n\n")[0].split()).replace("``", "`")  # reStructuredText literals to Markdown


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else format(value, "g")


def _valid(meta: typing.Mapping[str, Any]) -> str:
    bounds = [(">", meta.get("gt")), (">=", meta.get("ge")), ("<", meta.get("lt")), ("<=", meta.get("le"))]
    parts = [f"{op} {_number(value)}" for op, value in bounds if value is not None]
    if meta.get("choices"):
        parts.append(", ".join(f"`{c}`" for c in meta["choices"]))
    return ", ".join(parts)


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if isinstance(value, tuple | list | bool | str):
        return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"  # as TOML writes it
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(cls: type) -> list[str]:
    """A Markdown table of the leaf fields of ``cls`` (nested dataclasses are their own tables)."""
    hints = typing.get_type_hints(cls)
    lines = ["| key | unit | default | valid | meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        meta = f.metadata
        unit = meta.get("unit", "")
        lines.append(
            f"| `{f.name}` | {_cell('' if unit == '-' else unit)} | {_cell(_default(f))} | "
            f"{_cell(_valid(meta))} | {_cell(meta.get('doc', ''))} |"
        )
    return lines


def _section(title: str, cls: type, level: str = "###") -> list[str]:
    return [f"{level} `{title}`", "", _doc(cls), "", *_table(cls), ""]


def render() -> str:
    """The whole reference, as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the configuration dataclasses by `python -m sim.reference docs/config.md`",
        "(`make docs`); a test fails when this file and the code disagree. Units are in the key",
        "names; a value outside its range, an unknown key or a wrong type is refused with one line",
        "naming the file, the key and what was expected.",
        "",
        "## Flight files (`heli-sim fly --config FILE`)",
        "",
        "Anything left out keeps its default; the command line overrides the file.",
        "",
    ]
    for title, cls in _FLIGHT_TABLES:
        out += _section(title, cls)
    out += [
        "## Helicopter files (`configs/NAME.toml`, `--heli NAME` or `--heli PATH`)",
        "",
        _doc(HeliParams),
        "",
        *_table(HeliParams),
        "",
    ]
    hints = typing.get_type_hints(HeliParams)
    for f in dataclasses.fields(HeliParams):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _section(f"[{f.name}]", hints[f.name])
    out += _section("[controller]", ControllerParams)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
