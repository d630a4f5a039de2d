"""A virtual joystick described by a JSON file, mirrored into SDL in every process that reads joysticks.

With ``HELI_SIM_VIRTUAL_JOYSTICK=FILE`` in the environment, each heli-sim process that opens
joysticks (the view, the emulated transmitter, ``calibrate --joystick``, ``ports``) attaches an
SDL virtual joystick (SDL 2.0.14+, the library pygame-ce ships) and keeps it equal to the file:

    {"attached": true, "name": "EdgeTX RadioMaster TX16S Joystick",
     "axes": [0.0, 0.0, -1.0, 0.0, 1.0, 0.0], "buttons": [false, true]}

Axes in -1..1, buttons pressed or not; ``"attached": false`` unplugs it (pygame sees the device
removed), ``true`` plugs it back.  Write the file whole (to a temporary name, then rename): a
reader never sees half of it.  This is how the tests drive the real pygame/SDL path without a USB
device, and how anyone can try the joystick pilot without one.  pygame-ce does not wrap SDL's
virtual joystick API, so it is reached through ctypes on pygame's own copy of SDL.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["VIRTUAL_ENV", "VirtualJoystickMirror", "mirror_from_environment"]

VIRTUAL_ENV = "HELI_SIM_VIRTUAL_JOYSTICK"
_DESC_VERSION = 1  # SDL_VIRTUAL_JOYSTICK_DESC_VERSION
_TYPE_UNKNOWN = 0
_AXIS_MAX = 32767
_MAX_FILE_BYTES = 1 << 16
_MAX_NAME_CHARS = 128
_MAX_AXES = 32  # what the [joystick] table can name
_MAX_BUTTONS = 64


class _VirtualJoystickDesc(ctypes.Structure):
    """SDL_VirtualJoystickDesc (SDL 2.24+): only the name and counts are used; callbacks stay NULL."""

    _fields_ = [
        ("version", ctypes.c_uint16),
        ("type", ctypes.c_uint16),
        ("naxes", ctypes.c_uint16),
        ("nbuttons", ctypes.c_uint16),
        ("nhats", ctypes.c_uint16),
        ("vendor_id", ctypes.c_uint16),
        ("product_id", ctypes.c_uint16),
        ("padding", ctypes.c_uint16),
        ("button_mask", ctypes.c_uint32),
        ("axis_mask", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("userdata", ctypes.c_void_p),
        ("Update", ctypes.c_void_p),
        ("SetPlayerIndex", ctypes.c_void_p),
        ("Rumble", ctypes.c_void_p),
        ("RumbleTriggers", ctypes.c_void_p),
        ("SetLED", ctypes.c_void_p),
        ("SendEffect", ctypes.c_void_p),
    ]


def _sdl_library(pygame: Any) -> ctypes.CDLL:
    """The SDL2 library pygame-ce was built with (its wheel bundles it next to the package)."""
    base = os.path.dirname(pygame.__file__)
    candidates = sorted(
        glob.glob(os.path.join(base, "..", "pygame_ce.libs", "libSDL2-2*.so*"))
        + glob.glob(os.path.join(base, "..", "pygame_ce.libs", "SDL2*.dll"))
        + glob.glob(os.path.join(base, ".dylibs", "libSDL2*.dylib"))
    )
    library = ctypes.CDLL(candidates[0] if candidates else "libSDL2-2.0.so.0")
    library.SDL_JoystickAttachVirtualEx.restype = ctypes.c_int
    library.SDL_JoystickAttachVirtualEx.argtypes = [ctypes.POINTER(_VirtualJoystickDesc)]
    library.SDL_JoystickDetachVirtual.argtypes = [ctypes.c_int]
    library.SDL_JoystickOpen.restype = ctypes.c_void_p
    library.SDL_JoystickOpen.argtypes = [ctypes.c_int]
    library.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    library.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    library.SDL_JoystickSetVirtualButton.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    library.SDL_JoystickGetDeviceInstanceID.argtypes = [ctypes.c_int]
    library.SDL_JoystickGetDeviceInstanceID.restype = ctypes.c_int32
    library.SDL_NumJoysticks.restype = ctypes.c_int
    library.SDL_JoystickInstanceID.argtypes = [ctypes.c_void_p]
    library.SDL_JoystickInstanceID.restype = ctypes.c_int32
    return library


class VirtualJoystickMirror:
    """Keeps one SDL virtual joystick equal to a JSON file (see the module's docstring)."""

    def __init__(self, pygame: Any, path: str):
        self.path = path
        self._sdl = _sdl_library(pygame)
        self._handle: int | None = None  # our own open handle: it sets the values
        self._shape: tuple[int, int] = (0, 0)
        self._name = ""
        self._seen: bytes | None = None
        self.problem: str | None = None  # why the file's last version was not applied

    def sync(self) -> None:
        """Apply the file if it changed since the last call (a small read: a stat's timestamps are too
        coarse to tell two quick writes apart).  A file that is not a joystick's description is
        ignored, whole (the joystick stays as it was), and ``problem`` says why in one line."""
        try:
            with open(self.path, "rb") as file:
                text = file.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as error:
            self.problem = (
                f"{VIRTUAL_ENV}={self.path}: cannot be read ({error.strerror or error}): expected a JSON file"
            )
            self._seen = None
            return
        if text == self._seen:
            return
        self._seen = text
        try:
            state = _parse_state(text)
        except ValueError as error:
            self.problem = f"{VIRTUAL_ENV}={self.path}: {error}"  # the caller says it: see JoystickDevice.sync
            return
        self.problem = None
        if not state.attached:
            self.detach()
            return
        if self._handle is None or self._shape != (len(state.axes), len(state.buttons)) or state.name != self._name:
            self.detach()
            self._attach(state.name, len(state.axes), len(state.buttons))
        for index, value in enumerate(state.axes):
            scaled = max(-_AXIS_MAX - 1, min(_AXIS_MAX, round(value * (_AXIS_MAX + 1))))  # pygame divides by 32768
            self._sdl.SDL_JoystickSetVirtualAxis(self._handle, index, scaled)
        for index, pressed in enumerate(state.buttons):
            self._sdl.SDL_JoystickSetVirtualButton(self._handle, index, int(pressed))

    def _attach(self, name: str, axes: int, buttons: int) -> None:
        self._name = name
        self._name_bytes = name.encode()  # kept alive while attaching (SDL copies it)
        desc = _VirtualJoystickDesc(version=_DESC_VERSION, type=_TYPE_UNKNOWN, naxes=axes, nbuttons=buttons)
        desc.name = self._name_bytes
        index = self._sdl.SDL_JoystickAttachVirtualEx(ctypes.byref(desc))
        if index < 0:
            raise OSError(f"{self.path}: SDL could not attach a virtual joystick")
        self._handle = self._sdl.SDL_JoystickOpen(index)
        self._shape = (axes, buttons)

    def detach(self) -> None:
        """Unplug it (if plugged): every reader sees the device removed."""
        if self._handle is None:
            return
        instance = self._sdl.SDL_JoystickInstanceID(self._handle)
        for index in range(self._sdl.SDL_NumJoysticks()):
            if self._sdl.SDL_JoystickGetDeviceInstanceID(index) == instance:
                self._sdl.SDL_JoystickClose(self._handle)
                self._sdl.SDL_JoystickDetachVirtual(index)
                break
        self._handle = None


@dataclass(frozen=True)
class _VirtualState:
    attached: bool
    name: str
    axes: tuple[float, ...]
    buttons: tuple[bool, ...]


def _parse_state(text: bytes) -> _VirtualState:
    """The file's joystick, or ValueError saying in one line what is wrong and what was expected."""
    if len(text) > _MAX_FILE_BYTES:
        raise ValueError(f"more than {_MAX_FILE_BYTES} bytes: expected a small JSON object")
    try:
        state = json.loads(text, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"not JSON ({error}): expected an object with attached, name, axes, buttons") from None
    if not isinstance(state, dict):
        raise ValueError(f"a JSON {type(state).__name__}: expected an object with attached, name, axes, buttons")
    unknown = sorted(set(state) - {"attached", "name", "axes", "buttons"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}: expected attached, name, axes, buttons")
    attached, name = state.get("attached", True), state.get("name", "heli-sim virtual joystick")
    axes, buttons = state.get("axes", []), state.get("buttons", [])
    if not isinstance(attached, bool):
        raise ValueError(f"attached = {attached!r}: expected true or false")
    if not (isinstance(name, str) and 0 < len(name) <= _MAX_NAME_CHARS and name.isprintable()):
        raise ValueError(f"name = {name!r}: expected printable text of 1 to {_MAX_NAME_CHARS} characters")
    if not (isinstance(axes, list) and len(axes) <= _MAX_AXES):
        raise ValueError(f"axes = {axes!r}: expected a list of at most {_MAX_AXES} numbers from -1 to 1")
    for value in axes:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
            raise ValueError(f"axes holds {value!r}: expected numbers from -1 to 1")
    if not (isinstance(buttons, list) and len(buttons) <= _MAX_BUTTONS and all(isinstance(b, bool) for b in buttons)):
        raise ValueError(f"buttons = {buttons!r}: expected a list of at most {_MAX_BUTTONS} true or false")
    return _VirtualState(attached, name, tuple(float(v) for v in axes), tuple(buttons))


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def mirror_from_environment(pygame: Any) -> VirtualJoystickMirror | None:
    """The mirror ``HELI_SIM_VIRTUAL_JOYSTICK`` asks for (synced once), or None."""
    path = os.environ.get(VIRTUAL_ENV)
    if not path:
        return None
    mirror = VirtualJoystickMirror(pygame, path)
    mirror.sync()
    return mirror
