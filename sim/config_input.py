"""Reading the files a user gives as configuration, within limits: a hostile file is one line.

Flight files, helicopter files and pilot scripts are TOML written by people.  Before any of it
is parsed:

- the path must name a regular file (not a directory, device, FIFO or socket: ``/dev/zero`` or
  a named pipe would be read for ever), checked with ``stat`` before it is opened and again on
  the open descriptor, which is opened non-blocking;
- the file is at most ``MAX_CONFIG_BYTES``, and it is read with a bounded read (a file that
  grows while being read is still refused);
- a lexical pre-scan, linear in the text, refuses nesting of arrays and inline tables deeper
  than ``MAX_NESTING`` (``tomllib`` recurses: 5000 nested arrays are a ``RecursionError``), keys
  of more than ``MAX_KEY_PARTS`` dotted parts (``tomllib`` is quadratic in them: 50,000 parts
  take minutes) and key parts longer than ``MAX_KEY_CHARS``.

Every refusal is a ``ConfigError`` whose message names the file and the limit.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from heli.errors import ConfigError
from sim.dataclass_io import show

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_KEY_CHARS",
    "MAX_KEY_PARTS",
    "MAX_NESTING",
    "check_structure",
    "parse_toml",
    "read_config_bytes",
    "size_text",
]

MAX_CONFIG_BYTES = 1024 * 1024  # 1 MiB: the shipped files are ~6 KB; a 25,000-entry pilot script fits
MAX_NESTING = 32  # arrays and inline tables inside each other (the config schemas need 2)
MAX_KEY_PARTS = 16  # parts of one dotted key, a.b.c (the schemas need 3)
MAX_KEY_CHARS = 128  # characters of one key part (the longest key in the schemas has 30)

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)

# The tokens that decide TOML's structure; anything between them (numbers, dates, spaces) is skipped.
_TOKENS = re.compile(
    r'''(?P<string>"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""(?:""?)?'''  # multi-line basic string
    r"""|'''(?:[^']|'(?!''))*'''(?:''?)?"""  # multi-line literal string
    r'''|"(?:[^"\\\n]|\\.)*"'''  # basic string
    r"""|'[^'\n]*'"""  # literal string
    r""")|(?P<comment>\#[^\n]*)"""
    r"""|(?P<bare>[A-Za-z0-9_-]+)"""
    r"""|(?P<quote>["'])"""  # a quote that starts no valid string: tomllib stops there
    r"""|(?P<punct>[\[\]{}=,.\n])"""
)


def size_text(size_bytes: int) -> str:
    """ "1 MiB", "64 KiB", "100 bytes"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= scale and size_bytes % scale == 0:
            return f"{size_bytes // scale} {unit}"
    return f"{size_bytes} bytes"


def _describe_path(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= 160 and text.isprintable() else show(text)


def read_config_bytes(path: str | Path, *, what: str = "TOML file", limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is a ``ConfigError``."""
    name = _describe_path(path)
    try:
        _check_kind(os.stat(path), name, what, limit)  # before opening: opening a serial device toggles its lines
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except ConfigError:
        raise
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{name}: permission denied") from None
    except ValueError:  # an embedded NUL
        raise ConfigError(f"{name}: not a valid file name") from None
    except OSError as error:
        raise ConfigError(f"{name}: cannot read it: {error.strerror or error}") from None
    try:
        _check_kind(os.fstat(fd), name, what, limit)  # the file opened is the file checked
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise ConfigError(f"{name}: cannot read it: {error.strerror or error}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ConfigError(f"{name}: larger than {size_text(limit)}, the limit for a {what}")
    return b"".join(chunks)


def _check_kind(info: os.stat_result, name: str, what: str, limit: int) -> None:
    for test, kind in _FILE_KINDS:
        if test(info.st_mode):
            article = "an" if what[0] in "aeiou" else "a"
            raise ConfigError(f"{name}: is {kind}, expected {article} {what} (a regular file)")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{name}: not a regular file, expected a {what}")
    if info.st_size > limit:
        raise ConfigError(f"{name}: {info.st_size} bytes, larger than {size_text(limit)}, the limit for a {what}")


def check_structure(text: str, name: str) -> None:
    """Refuse nesting deeper than ``MAX_NESTING`` and over-long keys before ``tomllib`` sees them.

    Tracks just enough of TOML's grammar to know where a key is: at the start of a line, in a
    table header, and after ``{`` or ``,`` inside an inline table, up to its ``=``.
    """
    stack: list[str] = []  # open brackets of values: "[" arrays, "{" inline tables
    in_key = True  # a line starts with a key (or a header, or nothing)
    header = 0  # brackets of a table header opened on this line: [table] or [[array.of.tables]]
    parts = 1  # parts of the key being read
    for match in _TOKENS.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "quote":
            return  # an unterminated string: tomllib reports it before reading further
        if kind == "comment":
            continue
        if kind in ("string", "bare"):
            if in_key and len(token) > MAX_KEY_CHARS + (2 if kind == "string" else 0):
                raise ConfigError(
                    f"{name}: line {_line(text, match)}: a key of {len(token)} characters, "
                    f"expected at most {MAX_KEY_CHARS}"
                )
            header = 2  # no more header brackets on this line
        elif token == ".":
            if in_key:
                parts += 1
                if parts > MAX_KEY_PARTS:
                    raise ConfigError(f"{name}: line {_line(text, match)}: a key of more than {MAX_KEY_PARTS} parts")
        elif token in "[{":
            if token == "[" and in_key and not stack and header < 2:
                header += 1
                continue
            stack.append(token)
            in_key, parts = token == "{", 1
            if len(stack) > MAX_NESTING:
                raise ConfigError(
                    f"{name}: line {_line(text, match)}: arrays and inline tables nested more than {MAX_NESTING} deep"
                )
        elif token in "]}":
            if stack:
                stack.pop()
            in_key, parts = False, 1  # a value, or the end of a table header, was closed
        elif token == "=":
            in_key, parts = False, 1
        elif token == ",":
            in_key, parts = bool(stack) and stack[-1] == "{", 1
        elif token == "\n" and not stack:
            in_key, parts, header = True, 1, 0


def _line(text: str, match: re.Match) -> int:
    return text.count("\n", 0, match.start()) + 1


def parse_toml(data: bytes, name: str) -> dict[str, Any]:
    """TOML from ``data`` (the bytes of file ``name``) within the limits; else a ``ConfigError``."""
    shown = _describe_path(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not a text file (not UTF-8), expected TOML") from None
    check_structure(text, shown)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{shown}: not valid TOML: {error}") from None
    except (ValueError, RecursionError) as error:  # an integer of more than 4300 digits; a limit we missed
        raise ConfigError(f"{shown}: not valid TOML: {show(str(error))}") from None
