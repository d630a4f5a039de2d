"""The heli-sim exception tree; every class also subclasses the built-in it refines.

``HeliSimError`` is the root.  ``ConfigError`` (also a ``ValueError``) names a bad parameter
or configuration value by its key path; ``TrimError`` (also an ``ArithmeticError``) says the
hover trim solver did not converge.  ``sim.errors`` adds the runtime errors (ports, logs).
"""

from __future__ import annotations

__all__ = ["ConfigError", "HeliSimError", "TrimError"]


class HeliSimError(Exception):
    """Root of every error heli-sim raises on purpose."""


class ConfigError(HeliSimError, ValueError):
    """A parameter or configuration value is missing, mistyped, out of range or unknown."""


class TrimError(HeliSimError, ArithmeticError):
    """The hover trim solver found no steady hover for the given helicopter."""
