"""The configuration files heli-sim ships (``configs/``): where they are, and finding one by name.

The same files are in a checkout (``configs/``) and inside an installed package (``sim/_configs``),
so a command the README writes, ``--config configs/seed-demo.toml``, works from any folder and
after a plain ``pip install``; so do the short names ``heli-sim configs`` lists (``seed-demo``,
``ardupilot/xcell60``, ``sweeps/roll-gain``).  A file that exists where it is named always wins, and
so does one of the user's own with ``.toml`` added (``--config my-flight``).
"""

from __future__ import annotations

import functools
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KINDS", "ShippedFile", "configs_dir", "shipped_files", "shipped_path"]

log = logging.getLogger(__name__)

# kind -> how it is used on the command line, in the order ``heli-sim configs`` lists them
KINDS = {
    "helicopter": "--heli NAME",
    "flight file": "--config NAME",
    "pilot script": "--pilot script:NAME",
    "sweep": "heli-sim sweep NAME",
}


@functools.cache
def configs_dir() -> Path:
    """The shipped ``configs`` folder: the copy inside the installed package, or, in a checkout (an
    editable install), the source tree's.  Only a folder next to this project's own ``pyproject.toml``
    counts as the source tree: in an installed package the folder above is ``site-packages``, where
    another distribution may have put a ``configs`` of its own."""
    package_copy = Path(__file__).resolve().parent / "_configs"
    if package_copy.is_dir():
        return package_copy
    root = Path(__file__).resolve().parent.parent
    return root / "configs" if _is_this_project(root) else package_copy


def _is_this_project(root: Path) -> bool:
    try:
        with open(root / "pyproject.toml", "rb") as handle:
            return tomllib.load(handle).get("project", {}).get("name") == "heli-sim"
    except (OSError, ValueError):
        return False


def shipped_path(given: str | Path) -> str | Path:
    """What ``given`` names: itself if anything is there (a file, a folder, even a broken link: its own
    error says what is wrong) or it is absolute; a file of the user's own with ``.toml`` added
    (``--config my-flight``); otherwise the shipped file it names, when there is one: a short name
    (``seed-demo``, ``ardupilot/xcell60``), with or without ``.toml``, or a path under ``configs/`` as
    the README writes it.  Without a match, ``given`` unchanged (its error names it)."""
    path = Path(given)
    try:
        if path.is_absolute() or not path.parts or os.path.lexists(path):
            return given
        if path.suffix != ".toml" and os.path.lexists(f"{path}.toml"):
            return f"{path}.toml"
        parts = path.parts[1:] if path.parts[0] == "configs" and len(path.parts) > 1 else path.parts
        if ".." in parts:
            return given
        candidate = configs_dir().joinpath(*parts)
        if candidate.suffix != ".toml":
            candidate = candidate.with_name(candidate.name + ".toml")
        if candidate.is_file():
            log.info("%s: the shipped %s", given, candidate)
            return candidate
    except (OSError, ValueError):  # a name the file system refuses (too long, a NUL): its own error says so
        return given
    return given


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
        name = path.relative_to(root).with_suffix("").as_posix()
        try:
            text = path.read_text(encoding="utf-8")
            table = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:  # a stray file in a checkout
            found.append(ShippedFile(name, "flight file", f"(unreadable: {type(error).__name__})"))
            continue
        found.append(ShippedFile(name, _kind(table), _summary(text)))
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
