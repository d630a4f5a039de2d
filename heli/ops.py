"""Elementwise maths for the vehicle kernels, on Python floats or on numpy arrays.

The physics and controller kernels are written once, with arithmetic operators and the
functions of a math namespace passed in as ``xp``.  For one vehicle the kernels run on plain
Python floats (``SCALAR``): numpy pays about a microsecond per call whatever the size, while a
float operation costs tens of nanoseconds.  For a batch they run on 1-D numpy arrays, one per
state column (``ARRAY``), where numpy's per-element speed wins.  Both namespaces implement
the same IEEE operations, so the two paths agree to the last bit for the basic operations
and to an ulp for the transcendental ones.

Rules for kernel code, so that both namespaces work: no ``if`` on a value (use
``xp.where``), no ``~`` or ``not`` on a condition (compare the other way round), guard every
``sqrt``/division so it never sees a negative or zero argument.

A third backend, ``sim.compiled``, compiles the same functions with numba (``ScalarMath`` becomes
a numba type whose methods are the same float operations), so kernel code also keeps to what
numba compiles: tuples, not lists (build them whole; return tuples); no loop over a tuple whose
elements differ in type (write a helper and call it once per element); kernel functions call each
other by their bare names (the compiled copies are swapped in by name), never as
``module.function``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ARRAY", "SCALAR", "ArrayMath", "ScalarMath"]


class ScalarMath:
    """The kernel maths on Python floats (one vehicle)."""

    sqrt = staticmethod(math.sqrt)
    abs = staticmethod(abs)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    exp = staticmethod(math.exp)
    atan = staticmethod(math.atan)
    atan2 = staticmethod(math.atan2)
    asin = staticmethod(math.asin)

    @staticmethod
    def minimum(a: float, b: float) -> float:
        return a if a < b else b

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return a if a > b else b

    @staticmethod
    def clip(x: float, lo: float, hi: float) -> float:
        return lo if x < lo else (hi if x > hi else x)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b

    @staticmethod
    def any(cond: Any) -> bool:
        return bool(cond)


class ArrayMath:
    """The kernel maths on 1-D numpy arrays (a batch of vehicles, one array per column)."""

    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    exp = staticmethod(np.exp)
    atan = staticmethod(np.arctan)
    atan2 = staticmethod(np.arctan2)
    asin = staticmethod(np.arcsin)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    clip = staticmethod(np.clip)
    where = staticmethod(np.where)

    @staticmethod
    def any(cond: Any) -> bool:
        return bool(np.any(cond))


SCALAR = ScalarMath()
ARRAY = ArrayMath()
