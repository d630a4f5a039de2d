"""Runtime errors, on top of the shared tree in ``heli.errors``.

``UsageError`` (a ``ConfigError``) is bad command-line input.  The CLI turns every
``HeliSimError`` into one line on stderr and exit status 2.
"""

from __future__ import annotations

from heli.errors import ConfigError, HeliSimError, TrimError

__all__ = ["ConfigError", "HeliSimError", "TrimError", "UsageError"]


class UsageError(ConfigError):
    """A command-line option or value is wrong (unknown, out of range, conflicting)."""
