"""Byte-stream helpers shared by the codec tests: cut a stream into chunks, feed a decoder,
damage a stream the way a noisy line does, and see what importing a codec pulls in."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable

__all__ = ["feed_all", "modules_imported_by", "mutate", "split"]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped, deduplicated, in order)."""
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def feed_all(decoder, chunks: Iterable[bytes]) -> list:
    """Everything ``decoder`` delivers from ``chunks``, fed one after another."""
    out: list = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out


def mutate(
    stream: bytes,
    mutations: list[tuple[str, int, int]],
    *,
    delete_len: Callable[[int], int],
    repeat_len: Callable[[int], int],
) -> bytes:
    """``stream`` after each (kind, where, value): flip a byte's bits, insert a run of one byte,
    delete a run, cut ``value`` bytes, or repeat a run in place."""
    data = bytearray(stream)
    for kind, where, value in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= value or 1
        elif kind == "insert":
            data[at:at] = bytes([value]) * (1 + value % 4)
        elif kind == "delete":
            del data[at : at + delete_len(value)]
        elif kind == "cut":
            del data[at : at + value]
        elif kind == "repeat":
            data[at:at] = data[at : at + repeat_len(value)]
    return bytes(data)


def modules_imported_by(module: str) -> str:
    """The ``sim`` and ``serial`` modules loaded by importing ``module`` in a fresh interpreter."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('sim', 'serial')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()
