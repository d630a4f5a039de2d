"""Output files named on the command line (``--stats-json``, ``--log``, ``--screenshot``, bench
``--json`` and ``--plot``): checked before any work is done, written at the end without losing
what the work produced.

``check_output_path`` refuses, at the start, a path that cannot be written: its folder missing or
not writable, a folder where a file is expected, a symlink to nothing (never written through).
``write_output`` writes at the end: a regular file through a temporary file renamed over it (a
failure leaves no half-written file and keeps an older one), anything else (``/dev/stdout``, a
FIFO) directly, within a deadline.  A failure there is an ``OutputError`` naming the option, the
path and the reason; ``write_json_output`` prints it as one line for the command, which has
already printed its summary table, and returns exit status 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import sys
import time
from pathlib import Path
from typing import Any

from heli.errors import ConfigError, HeliSimError

__all__ = ["OutputError", "check_output_path", "write_json_output", "write_output"]

WRITE_TIMEOUT_S = 10.0  # a FIFO or a terminal that does not take the output in this long is given up


class OutputError(HeliSimError, OSError):
    """An output file could not be written at the end (disk full, folder removed, ...)."""


def check_output_path(path: str | None, option: str, *, new_directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work is done (``ConfigError``).

    With ``new_directory`` (``--log``) the path must not exist yet; otherwise an existing file
    is replaced, and may also be a device or a FIFO (``/dev/stdout``).
    """
    if path is None:
        return
    if not path.strip():
        raise ConfigError(f"{option} {path!r}: an empty name; expected a file name")
    try:
        _check_output_path(path, option, new_directory)
    except (OSError, RuntimeError, ValueError) as error:  # a name too long, a symlink loop, a NUL byte
        if isinstance(error, ConfigError):
            raise
        reason = (error.strerror if isinstance(error, OSError) else None) or str(error)
        raise ConfigError(f"{option} {path}: cannot be written: {reason}") from None


def _check_output_path(path: str, option: str, new_directory: bool) -> None:
    if os.path.islink(path) and not os.path.exists(path):
        raise ConfigError(
            f"{option} {path}: a symlink to {os.readlink(path)}, which does not exist; name a real file or folder"
        )
    if new_directory and os.path.lexists(path):
        raise ConfigError(f"{option} {path}: already exists; choose a new name (a log is never written over)")
    if not new_directory and os.path.isdir(path):
        raise ConfigError(f"{option} {path}: is a folder, expected a file name")
    if os.path.exists(path) and not new_directory:
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{option} {path}: not writable")
        if not stat.S_ISREG(os.stat(path).st_mode):
            return  # a device or a FIFO: written directly, its folder does not matter
    parent = Path(path).resolve(strict=False).parent
    if not parent.is_dir() and new_directory:
        raise ConfigError(f"{option} {path}: no such directory {parent}; expected a new name in an existing one")
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: folder {parent} is not writable")
    name_max = os.pathconf(parent, "PC_NAME_MAX")
    if len(os.fsencode(os.path.basename(os.path.normpath(path)))) > name_max:
        raise ConfigError(f"{option} {path}: the file name is longer than the {name_max} bytes the folder allows")


def write_output(path: str, data: str | bytes, option: str) -> None:
    """Write ``data`` to ``path`` whole, or raise ``OutputError`` (one line: option, path, reason)."""
    payload = data.encode() if isinstance(data, str) else data
    try:
        if os.path.islink(path) and not os.path.exists(path):
            raise OutputError(f"{option} {path}: a symlink to {os.readlink(path)}, which does not exist")
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            _write_stream(path, payload)
        else:
            _write_replacing(os.path.realpath(path), payload)
    except OSError as error:
        if isinstance(error, OutputError):
            raise
        reason = error.strerror or str(error)
        raise OutputError(f"{option} {path}: cannot write it: {reason}") from None


def write_json_output(path: str | None, value: Any, option: str, command: str) -> bool:
    """Write ``value`` as indented JSON to ``path`` (None: nothing to write); on failure print one
    line, ``heli-sim COMMAND: error: ...``, and return False (the command then exits 2)."""
    if path is None:
        return True
    try:
        write_output(path, json.dumps(value, indent=2) + "\n", option)
    except OutputError as error:
        print(f"heli-sim {command}: error: {error}", file=sys.stderr)
        return False
    return True


def _write_replacing(path: str, payload: bytes) -> None:
    """A regular file: a temporary file in the same folder, renamed over ``path`` once whole."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = -1
    try:  # (the open inside: a stop just after it still removes the file, by its name)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))  # replacing a file keeps its mode
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.replace(temporary, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _write_stream(path: str, payload: bytes) -> None:
    """A device or a FIFO: written directly, without blocking past ``WRITE_TIMEOUT_S``."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO with no reader: ENXIO
    try:
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        view = memoryview(payload)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                    raise TimeoutError(0, f"not taken within {WRITE_TIMEOUT_S:.0f} s") from None
    finally:
        os.close(fd)
