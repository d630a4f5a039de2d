"""Named column layouts of the packed ``(N, size)`` arrays, each declared once.

A layout is a class whose attributes are its columns, in order: ``column("name", doc)`` for one,
``columns(("a", "b", "c"), doc)`` for a group.  Once declared, a single column's attribute is its
index and a group's its slice, so ``packed[:, StateIndex.ROTOR_SPEED]`` and
``packed[:, StateIndex.VELOCITY]`` read by name; ``SIZE`` is the width, ``NAMES`` the columns'
names in order, the names the kernels unpack a row into (``tests/test_layouts.py`` holds the
kernels' unpacking to them), and ``EXPORTED`` their names in flight logs and exports.  A column
added to a layout is one edit here, and the kernel code that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Layout", "column", "columns"]


@dataclass(frozen=True)
class _Declared:
    names: tuple[str, ...]
    doc: str
    group: bool
    exported: tuple[str, ...]


def column(name: str, doc: str, exported: str | None = None) -> Any:
    """One column, named as the kernels name its value (``exported``: its name, with its unit, in
    flight logs and exports; the kernel's by default); its attribute becomes its index."""
    return _Declared((name,), doc, False, (exported or name,))


def columns(names: tuple[str, ...], doc: str, exported: tuple[str, ...] | None = None) -> Any:
    """Consecutive columns, one name each (and one exported name each); the group's attribute becomes
    their slice."""
    if exported is not None and len(exported) != len(names):
        raise ValueError(f"columns {names}: {len(exported)} exported names for {len(names)} columns")
    return _Declared(tuple(names), doc, True, tuple(exported or names))


class Layout:
    """Base of a layout class (module doc): sets its columns' indices, ``SIZE``, ``NAMES`` and ``DOCS``."""

    SIZE: ClassVar[int] = 0
    NAMES: ClassVar[tuple[str, ...]] = ()
    EXPORTED: ClassVar[tuple[str, ...]] = ()  # the columns' names in flight logs and exports (with units)
    DOCS: ClassVar[dict[str, str]] = {}  # attribute name -> what it holds (units)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        position, names, exported, docs = 0, list[str](), list[str](), dict[str, str]()
        for attribute, value in list(vars(cls).items()):
            if not isinstance(value, _Declared):
                continue
            width = len(value.names)
            setattr(cls, attribute, slice(position, position + width) if value.group else position)
            names += value.names
            exported += value.exported
            docs[attribute] = value.doc
            position += width
        cls.SIZE, cls.NAMES, cls.EXPORTED, cls.DOCS = position, tuple(names), tuple(exported), docs

    @classmethod
    def index(cls, name: str) -> int:
        """The column of one name of ``NAMES`` (``StateIndex.index("pd")``: 2)."""
        return cls.NAMES.index(name)

    @classmethod
    def describe(cls) -> str:
        """The columns as text: "0-2 RATE_I (rate integrators, rad), 3 ..." (docstrings, error messages)."""
        parts = []
        for attribute, doc in cls.DOCS.items():
            where = getattr(cls, attribute)
            span = f"{where.start}-{where.stop - 1}" if isinstance(where, slice) else str(where)
            parts.append(f"{span} {attribute} ({doc})")
        return ", ".join(parts)
