"""Runtime errors, on top of the shared tree in ``heli.errors``.

``UsageError`` (a ``ConfigError``) is bad command-line input; ``PortError`` (also an
``OSError``) a serial port that cannot be opened or has gone away; ``LogError`` a flight log
that cannot be read (missing, truncated, not a log).  The CLI turns every
``HeliSimError`` into one line on stderr and exit status 2.
"""

from __future__ import annotations

from heli.errors import ConfigError, HeliSimError, TrimError

__all__ = ["ConfigError", "HeliSimError", "LogError", "PortError", "TrimError", "UsageError"]


class UsageError(ConfigError):
    """A command-line option or value is wrong (unknown, out of range, conflicting)."""


class PortError(HeliSimError, OSError):
    """A serial port cannot be opened or used: missing, busy, forbidden, unknown scheme, vanished."""


class LogError(HeliSimError):
    """A flight log cannot be read: missing, not a log, truncated, or from a newer heli-sim."""
