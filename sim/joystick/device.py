"""Joysticks through pygame: open one, follow it across unplug and replug, list the connected ones.

``JoystickDevice`` holds the pilot's joystick: device index N when it starts (``--pilot
joystick:N``; the first one when no N is given), then the same device (by SDL's GUID and name)
whenever it is plugged back in, wherever SDL numbers it then.  Each connection is read through the
layout its name selects (``JoystickMap.layout``), and reports itself: ``joystick`` (found at the
start), ``joystick_lost`` (unplugged), ``joystick_back`` (plugged in again).  The view feeds it the
events it gets from its own window; a headless process (the emulated transmitter, calibration)
calls ``poll``, which pumps SDL's events itself with the dummy video driver (SDL delivers joystick
events through the event queue, which needs video initialised; no window is ever made).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from heli.errors import ConfigError
from sim.config import JoystickMap
from sim.joystick.sticks import JoystickReading, JoystickSticks
from sim.joystick.virtual import VirtualJoystickMirror, mirror_from_environment

log = logging.getLogger(__name__)

__all__ = ["JoystickDevice", "JoystickInfo", "NoJoystick", "check_connected", "list_joysticks", "start_pygame"]


def start_pygame(*, events: bool) -> Any:
    """pygame with its joystick subsystem; ``events``: with the dummy video driver too (headless
    processes only: the variable is set in this process, whose children do not draw)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    if events and not pygame.display.get_init():
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        pygame.display.init()
    pygame.joystick.init()
    return pygame


@dataclass(frozen=True)
class JoystickInfo:
    """One connected joystick as SDL numbers and names it."""

    index: int
    name: str
    guid: str
    axes: int
    buttons: int
    hats: int
    preset: str  # the layout the auto preset picks for it


def list_joysticks(mapping: JoystickMap | None = None) -> list[JoystickInfo]:
    """The joysticks connected now (and the virtual one, when the environment asks for it: a file
    that does not describe one is ``NoJoystick``, saying why)."""
    pygame = start_pygame(events=False)
    mirror = mirror_from_environment(pygame)
    if mirror is not None and mirror.problem:
        pygame.joystick.quit()
        raise NoJoystick(mirror.problem)
    try:
        mapping = mapping or JoystickMap()
        found = []
        for index in range(pygame.joystick.get_count()):
            stick = pygame.joystick.Joystick(index)
            found.append(
                JoystickInfo(
                    index=index,
                    name=stick.get_name(),
                    guid=stick.get_guid(),
                    axes=stick.get_numaxes(),
                    buttons=stick.get_numbuttons(),
                    hats=stick.get_numhats(),
                    preset=mapping.layout(stick.get_name()).preset,
                )
            )
        return found
    finally:
        if mirror is not None:
            mirror.detach()
        pygame.joystick.quit()


class NoJoystick(ConfigError):
    """The joystick asked for is not connected."""


def check_connected(index: int | None, mapping: JoystickMap | None = None) -> JoystickInfo:
    """The joystick a pilot asks for (the first when ``index`` is None), or ``NoJoystick`` in one line."""
    found = list_joysticks(mapping)
    wanted = index or 0
    if wanted >= len(found):
        raise NoJoystick(_not_found(wanted, len(found)))
    return found[wanted]


def _not_found(wanted: int, count: int) -> str:
    there = f"{count} connected (0 to {count - 1})" if count else "none connected"
    return (
        f"joystick {wanted}: not found, {there}; plug one in (a radio: in USB joystick mode), "
        "`heli-sim ports` lists them"
    )


class JoystickDevice:
    """The pilot's joystick: its sticks and switches while connected, None while not."""

    def __init__(self, pygame: Any, mapping: JoystickMap, index: int | None = None, *, require: bool = True):
        self.pygame = pygame
        self.mapping = mapping
        self.mirror: VirtualJoystickMirror | None = mirror_from_environment(pygame)
        self.joystick: Any = None
        self.sticks: JoystickSticks | None = None
        self.name = ""
        self._identity: tuple[str, str] | None = None  # (guid, name) of the device this pilot flies with
        self._told_problem: str | None = None
        count = pygame.joystick.get_count()
        wanted = index or 0
        if require and wanted >= count:
            raise NoJoystick(_not_found(wanted, count))
        # not required and not there: the first joystick plugged in is taken
        self.opened = self._open(wanted) if wanted < count else ""

    @property
    def connected(self) -> bool:
        return self.joystick is not None

    def _open(self, device_index: int) -> str:
        joystick = self.pygame.joystick.Joystick(device_index)
        self.joystick = joystick
        self.name = joystick.get_name()
        self._identity = (joystick.get_guid(), self.name)
        layout = self.mapping.layout(self.name)
        self.sticks = JoystickSticks(self.mapping, layout)  # a fresh connection: switches read anew
        axes, buttons = joystick.get_numaxes(), joystick.get_numbuttons()
        missing = [f"{name} axis {axis}" for name, axis in layout.named_axes.items() if axis >= axes]
        missing += [f"{name} button {button}" for name, button in layout.named_buttons.items() if button >= buttons]
        lacking = (
            f"; not on this joystick (read as centred sticks, switches off): {', '.join(missing)}" if missing else ""
        )
        return f"joystick {device_index} {self.name!r} ({axes} axes, {buttons} buttons): {layout.describe()}{lacking}"

    def handle(self, event: Any) -> tuple[str, str] | None:
        """Follow a pygame event: (kind, detail) when the pilot's joystick came or went, else None."""
        pygame = self.pygame
        if event.type == pygame.JOYDEVICEREMOVED and self.connected:
            if event.instance_id == self.joystick.get_instance_id():
                self.joystick = None
                self.sticks = None
                return "joystick_lost", f"{self.name!r} unplugged: no stick frames until it is back"
        elif event.type == pygame.JOYDEVICEADDED and not self.connected:
            candidate = pygame.joystick.Joystick(event.device_index)
            if self._identity in (None, (candidate.get_guid(), candidate.get_name())):
                kind = "joystick_back" if self._identity is not None else "joystick"
                return kind, self._open(event.device_index)
        return None

    def sync(self) -> None:
        """Bring the virtual joystick (``HELI_SIM_VIRTUAL_JOYSTICK``) up to date; nothing without one.
        A file that does not describe a joystick is said once (logged) and ignored."""
        if self.mirror is None:
            return
        self.mirror.sync()
        if self.mirror.problem != self._told_problem:
            self._told_problem = self.mirror.problem
            if self.mirror.problem:
                log.warning("%s (ignored: the joystick stays as it was)", self.mirror.problem)

    def poll(self) -> list[tuple[str, str]]:
        """Pump SDL's events (headless): what came and went since the last call."""
        self.sync()
        changes = []
        for event in self.pygame.event.get():
            change = self.handle(event)
            if change is not None:
                changes.append(change)
        return changes

    def read(self) -> JoystickReading | None:
        """The sticks and switches now; None while the joystick is unplugged."""
        if self.joystick is None or self.sticks is None:
            return None
        return self.sticks.read(*self.raw())

    def raw(self) -> tuple[list[float], list[bool]]:
        """The raw axes and buttons now (empty while unplugged): calibration reads these."""
        joystick = self.joystick
        if joystick is None:
            return [], []
        return (
            [joystick.get_axis(i) for i in range(joystick.get_numaxes())],
            [bool(joystick.get_button(i)) for i in range(joystick.get_numbuttons())],
        )

    def close(self) -> None:
        if self.mirror is not None:
            self.mirror.detach()
        self.joystick = None
        self.sticks = None
