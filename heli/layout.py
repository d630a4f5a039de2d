"""Named column layouts of the packed ``(N, size)`` arrays, each declared once.

A layout is a class whose attributes are its columns, in order: ``column("name", doc)`` for one,
``columns(("a", "b", "c"), doc)`` for a group.  Once declared, a single column's attribute is its
index and a group's its slice, so ``packed[:, StateIndex.ROTOR_SPEED]`` and
``packed[:, StateIndex.VELOCITY]`` read by name; ``SIZE`` is the width and ``NAMES`` the columns'
names in order: the names the kernels unpack a row into (``tests/test_layouts.py`` holds the kernels'
unpacking to them), so a column added to a layout is one edit here and the kernel code that uses it.
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


def column(name: str, doc: str) -> Any:
    """One column, named as the kernels name its value; its attribute becomes its index."""
    return _Declared((name,), doc, group=False)


def columns(names: tuple[str, ...], doc: str) -> Any:
    """Consecutive columns, one name each; the group's attribute becomes their slice."""
    return _Declared(tuple(names), doc, group=True)


class Layout:
    """Base of a layout class (module doc): sets its columns' indices, ``SIZE``, ``NAMES`` and ``DOCS``."""

    SIZE: ClassVar[int] = 0
    NAMES: ClassVar[tuple[str, ...]] = ()
    DOCS: ClassVar[dict[str, str]] = {}  # attribute name -> what it holds (units)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        position, names, docs = 0, list[str](), dict[str, str]()
        for attribute, value in list(vars(cls).items()):
            if not isinstance(value, _Declared):
                continue
            width = len(value.names)
            setattr(cls, attribute, slice(position, position + width) if value.group else position)
            names += value.names
            docs[attribute] = value.doc
            position += width
        cls.SIZE, cls.NAMES, cls.DOCS = position, tuple(names), docs

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
