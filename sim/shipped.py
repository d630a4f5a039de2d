"""The configuration files heli-sim ships (``configs/``): where they are, and finding one by name.

The same files are in a checkout (``configs/``) and inside an installed package (``sim/_configs``),
so a command the README writes, ``--config configs/seed-demo.toml``, works from any folder and
after a plain ``pip install``; so do the short names ``heli-sim configs`` lists (``seed-demo``,
``ardupilot/xcell60``, ``sweeps/roll-gain``).  A file that exists where it is named always wins.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "ShippedFile", "configs_dir", "shipped_files", "shipped_path"]

# kind -> how it is used on the command line, in the order ``heli-sim configs`` lists them
KINDS = {
    "helicopter": "--heli NAME",
    "flight file": "--config NAME",
    "pilot script": "--pilot script:NAME",
    "sweep": "heli-sim sweep NAME",
}


def configs_dir() -> Path:
    """The shipped ``configs`` folder: the source tree's, or the copy inside the installed package."""
    source_tree = Path(__file__).resolve().parent.parent / "configs"
    if source_tree.is_dir():
        return source_tree
    return Path(__file__).resolve().parent / "_configs"


def shipped_path(given: str | Path) -> str | Path:
    """``given`` if a file is there (or it is absolute); otherwise the shipped file it names, when there is
    one: a short name (``seed-demo``, ``ardupilot/xcell60``), with or without ``.toml``, or a path under
    ``configs/`` as the README writes it.  Without a match, ``given`` unchanged (its error names it)."""
    path = Path(given)
    try:
        if path.is_absolute() or path.exists() or not path.parts:
            return given
    except (OSError, ValueError):  # a name the file system refuses: its own error says so
        return given
    parts = path.parts[1:] if path.parts[0] == "configs" and len(path.parts) > 1 else path.parts
    if ".." in parts:
        return given
    candidate = configs_dir().joinpath(*parts)
    if candidate.suffix != ".toml":
        candidate = candidate.with_name(candidate.name + ".toml")
    return candidate if candidate.is_file() else given


@dataclass(frozen=True)
class ShippedFile:
    """One shipped file: its short name, what kind of file it is, and its first comment line."""

    name: str
    kind: str
    summary: str


def shipped_files() -> list[ShippedFile]:
    """Every shipped TOML file, by kind (``KINDS``) then name."""
    root = configs_dir()
    found = []
    for path in sorted(root.rglob("*.toml")):
        text = path.read_text(encoding="utf-8")
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        found.append(ShippedFile(path.relative_to(root).with_suffix("").as_posix(), _kind(table), _summary(text)))
    order = list(KINDS)
    return sorted(found, key=lambda f: (order.index(f.kind), f.name))


def _kind(table: dict) -> str:
    if "main_rotor" in table:
        return "helicopter"
    if "sweep" in table:
        return "sweep"
    if "at" in table:
        return "pilot script"
    return "flight file"


def _summary(text: str) -> str:
    """The file's first comment line, without the ``#``."""
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.lstrip("#").strip()
    return ""
