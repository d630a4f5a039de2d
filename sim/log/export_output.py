"""The file an export writes: whole or not at all.

``replacing(path)`` gives a new temporary file in ``path``'s folder to write, and renames it to
``path`` once the writing is done; anything that ends the writing early (an error, Ctrl-C) removes
it, so ``path`` is never left half written and an older file there is kept.  An export's output
is a regular file: an existing device or FIFO in its place is refused (``output_problem``), and
so is an existing file unless it may be replaced.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

__all__ = ["output_problem", "replacing"]


def output_problem(path: str, replace: bool) -> str | None:
    """What is wrong with writing the export to ``path`` (None: nothing), beyond what
    ``sim.cli.check_output_path`` checks: an existing file without ``replace``, a non-regular one."""
    if not os.path.lexists(path):
        return None
    if os.path.isfile(path) and not replace:
        return "already exists; add --force to replace it, or name another file with --output"
    if not os.path.isfile(path):
        return "exists and is not a regular file; expected the name of a file to write"
    return None


@contextlib.contextmanager
def replacing(path: str) -> Iterator[str]:
    """A temporary file's name to write; renamed to ``path`` when the block ends normally, removed
    when it does not.  The new file has the mode a new file gets (or the mode of the one it replaces)."""
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:  # (the create inside: a stop (Ctrl-C) just after it still removes the file, by its name)
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
