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
import types
import typing
from pathlib import Path
from typing import Any

from heli.control import ControllerParams
from heli.params import MAX_TEXT_CHARS, Environment, HeliParams
from sim.config import ChannelMap, FaultSpec, FlightSettings, HomePosition, JoystickMap, PortSpec
from sim.config_input import MAX_CONFIG_BYTES, MAX_KEY_CHARS, MAX_KEY_PARTS, MAX_NESTING, size_text
from sim.dataclass_io import range_text
from sim.fc.config import FcConfig, FcOutputs, FcSensors
from sim.pilots import PilotScript, ScriptEntry

__all__ = ["render"]

_FLIGHT_TABLES: list[tuple[str, type]] = [
    ("[flight]", FlightSettings),
    ("[rc]", ChannelMap),
    ("[environment]", Environment),
    ("[joystick]", JoystickMap),
    ("[home]", HomePosition),
    ("[[ports]]", PortSpec),
    ("[[faults]]", FaultSpec),
    ("[fc]", FcConfig),
    ("[fc.outputs]", FcOutputs),
    ("[fc.sensors]", FcSensors),
]


def _doc(cls: type) -> str:
    """The first paragraph of a class's docstring, on one line."""
    text = inspect.getdoc(cls) or ""
    return " ".join(text.split("\n\n")[0].split()).replace("``", "`")  # reStructuredText literals to Markdown


def _valid(meta: typing.Mapping[str, Any], hint: Any) -> str:
    """The range as the loader words it ("from 0.05 to 1.5"), the choices, the list or text length."""
    parts = []
    if meta.get("choices"):
        parts.append(
            ", ".join(f"`{c}`" for c in meta["choices"] if c != "") + (" or empty" if "" in meta["choices"] else "")
        )
    elif range_text(meta):
        parts.append(range_text(meta))
    if meta.get("items") is not None:
        parts.append(f"{meta['items']} values")
    elif meta.get("max_items") is not None:
        parts.append(f"at most {meta['max_items']}")
    if _base(hint) is str and not meta.get("choices"):
        parts.append(f"text, at most {meta.get('max_chars') or MAX_TEXT_CHARS} characters")
    return "; ".join(parts)


def _base(hint: Any) -> Any:
    """``float`` for ``float | None`` and ``tuple[float, ...]``: the type of one value."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    return hint


def _default(f: dataclasses.Field) -> str:
    if f.default is None:
        return "none"
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
    lines = ["| key | unit | default | valid | meaning | why this range |", "|---|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(_base(hints[f.name])) and dataclasses.is_dataclass(hints[f.name]):
            continue
        meta = f.metadata
        unit = meta.get("unit", "")
        lines.append(
            f"| `{f.name}` | {_cell('' if unit == '-' else unit)} | {_cell(_default(f))} | "
            f"{_cell(_valid(meta, hints[f.name]))} | {_cell(meta.get('doc', ''))} | {_cell(meta.get('why', ''))} |"
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
        "naming the file, the key and what was expected, and why the range is what it is. The",
        "command-line options that set these values (`--fleet`, `--physics-dt`, `--link-latency`,",
        "...) are checked by the same rules.",
        "",
        "## Limits on the files themselves",
        "",
        "A flight file, a helicopter file or a pilot script must be a regular file (not a device,",
        f"a pipe or a directory) of at most {size_text(MAX_CONFIG_BYTES)}, in UTF-8. Arrays and inline tables may be",
        f"nested at most {MAX_NESTING} deep, a dotted key may have at most {MAX_KEY_PARTS} parts and one part at most",
        f"{MAX_KEY_CHARS} characters; a text value (a name, a path, a URL) at most {MAX_TEXT_CHARS} characters",
        "without control characters. Anything beyond is refused with one line before it is parsed.",
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
    out += [
        "## Pilot scripts (`--pilot script:FILE`)",
        "",
        _doc(PilotScript) + " Sticks are interpolated between entries, arm and mode held; a channel an "
        "entry leaves out keeps its value.",
        "",
        *_table(PilotScript),
        "",
        *_section("[[at]]", ScriptEntry),
    ]
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
