"""Configuration: helicopter files and flight files, validated into frozen dataclasses.

A helicopter is ``configs/<name>.toml`` (or any path): the ``heli.params.HeliParams`` tables and
an optional ``[controller]`` table of ``heli.control.ControllerParams``.  A flight file has the
tables ``[flight]`` (``FlightSettings``), ``[rc]`` (``ChannelMap``) and ``[environment]``
(``heli.params.Environment``).  Precedence: the dataclass defaults, then the file, then the
command line (``apply_overrides``; ``sim.cli.options`` checks each option by its field's schema).
Every error is a ``ConfigError`` that names the file, the key path, the bad value and what was
expected, and why.  Files are read within limits (``sim.config_input``: regular files of at most
``MAX_CONFIG_BYTES``, nesting and key limits), and ``check_physics_step`` refuses a physics step
too long for the helicopter flown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from heli.control import ControllerParams
from heli.errors import ConfigError
from heli.params import MAX_RATE_STEP_PRODUCT, Environment, HeliParams, quantity, step_rates_per_s
from sim.config_input import MAX_CONFIG_BYTES, parse_toml, read_config_bytes
from sim.dataclass_io import build, parse_text, short_source, show, to_table
from sim.fc.config import FcConfig
from sim.ports.codecs import PROTOCOLS, ROLE_PROTOCOLS, check_vehicle_ids, default_protocol
from sim.shipped import configs_dir, shipped_path
from sim.view.snapshot import IO_MODES

__all__ = [
    "CHANNEL_FUNCTIONS",
    "FAULT_KINDS",
    "FC_PORT",
    "MAX_CONFIG_BYTES",
    "PORT_ROLES",
    "ChannelMap",
    "FaultSpec",
    "FlightConfig",
    "FlightSettings",
    "HeliConfig",
    "HomePosition",
    "JoystickMap",
    "PortSpec",
    "check_physics_step",
    "configs_dir",
    "flight_table",
    "heli_from_table",
    "heli_names",
    "heli_table",
    "load_flight",
    "load_heli",
    "load_toml",
]

KERNELS = ("numpy", "compiled")  # a flight's kernels: heli.dynamics / heli.control as written, or sim.compiled

MIN_PHYSICS_DT_S = 0.0001  # one vehicle-step costs ~0.1 ms of CPU: shorter steps cannot keep real time
MAX_PHYSICS_DT_S = 0.005  # RC landing gear and tail rotors move at ~100-200/s: longer steps blow up
MAX_CATCHUP_STEPS = 100_000  # physics steps in one catch-up after a stall (~10 s of CPU for one vehicle)
_CONTROLLER_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
STICKS = ("roll", "pitch", "collective", "yaw")
# the contract's channel functions, in its default order (channel 1 first); throttle_hold may be 0 (none)
CHANNEL_FUNCTIONS = (*STICKS, "arm", "mode", "throttle_hold")
DEFAULT_THROTTLE_HOLD_CHANNEL = 7
FRAME_CHANNELS = 16  # channels in an RC frame (CRSF and SBUS carry 16)
MAX_DURATION_S = 1_000_000.0  # 11.6 days: a flight, a fault, a script; longer runs use duration 0 (until stopped)
MAX_FLEET = 100_000
_FRAME_WHY = "an RC frame carries 16 channels"
_PULSE_WHY = "RC pulses: 1000-2000 us, some radios reach 800-2200"
_DURATION_WHY = "up to 11.6 days (0 flies until stopped)"
_SPAN_WHY = "up to 11.6 days"


def heli_names() -> list[str]:
    """Names of the helicopters shipped in ``configs`` (files with a ``[main_rotor]`` table)."""
    names = []
    for path in sorted(configs_dir().glob("*.toml")):
        try:
            if "main_rotor" in load_toml(path):
                names.append(path.stem)
        except ConfigError:
            continue
    return names


def load_toml(path: str | Path, *, what: str = "TOML file") -> dict[str, Any]:
    """A parsed TOML file; a missing, unreadable, oversized, hostile or malformed file is a ``ConfigError``.

    The file must be a regular file of at most ``MAX_CONFIG_BYTES``; it is read with a bounded read
    and parsed with limits on nesting and key length (``sim.config_input``).
    """
    found = shipped_path(path)  # a shipped file by its short name, or as configs/NAME.toml from anywhere
    try:
        data = read_config_bytes(found, what=what)
    except ConfigError as error:
        if str(error).endswith("no such file"):
            raise ConfigError(f"{error}, nor a shipped {what} of that name ('heli-sim configs' lists them)") from None
        raise
    return parse_toml(data, str(path))


@dataclass(frozen=True)
class HeliConfig:
    """A helicopter type with its controller tuning, and the file they came from."""

    params: HeliParams
    controller: ControllerParams
    source: str


def load_heli(name_or_path: str) -> HeliConfig:
    """Load ``configs/<name>.toml`` or a path to a helicopter TOML file."""
    try:  # the same schema as the [flight] heli key and the --heli option
        parse_text(FlightSettings, "heli", name_or_path)
    except ConfigError as error:
        raise ConfigError(f"helicopter {error}") from None
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.parent != Path("."):
        path = candidate
    else:  # a name: only the shipped ones, looked up without touching the file system with it
        names = heli_names()
        if name_or_path not in names:
            raise ConfigError(
                f"unknown helicopter {show(name_or_path)}: expected one of {', '.join(names)}, "
                "or a path to a .toml file"
            )
        path = configs_dir() / f"{name_or_path}.toml"
    table = load_toml(path, what="helicopter file")
    if "flight" in table and "main_rotor" not in table:
        raise ConfigError(f"{path}: a flight file ([flight] table), not a helicopter file: give it to --config")
    return heli_from_table(table, str(path))


def check_physics_step(heli: HeliConfig, config: FlightConfig) -> None:
    """Refuse a physics step too long for the helicopter's fastest motions (they would blow up)."""
    dt = config.flight.physics_dt_s
    rates = step_rates_per_s(heli.params, config.environment)
    what, rate = max(rates.items(), key=lambda item: item[1])
    longest = MAX_RATE_STEP_PRODUCT / rate
    if dt > longest:
        raise ConfigError(
            f"flight.physics_dt_s = {dt:g} s is too long for helicopter {heli.params.name!r} "
            f"({short_source(heli.source)}): its {what} moves at {rate:.0f}/s, "
            f"which needs a step of at most {longest:.2g} s"
        )


def heli_from_table(table: dict[str, Any], source: str) -> HeliConfig:
    """A helicopter from its table (a file's contents, or a flight log's header)."""
    table = dict(table)
    controller_table = table.pop("controller", {})
    params = build(HeliParams, table, source=source)
    controller = build(ControllerParams, controller_table, source=source, path="controller")
    return HeliConfig(params=params, controller=controller, source=source)


def heli_table(heli: HeliConfig) -> dict[str, Any]:
    """The helicopter as a table: ``heli_from_table(heli_table(h), ...)`` gives back the same numbers."""
    return {**to_table(heli.params), "controller": to_table(heli.controller)}


@dataclass(frozen=True)
class ChannelMap:
    """Which RC channel (1-based) carries each function; the default is the contract's order."""

    roll: int = quantity("channel", ge=1, le=FRAME_CHANNELS, default=1, why=_FRAME_WHY)
    pitch: int = quantity("channel", ge=1, le=FRAME_CHANNELS, default=2, why=_FRAME_WHY)
    collective: int = quantity("channel", ge=1, le=FRAME_CHANNELS, default=3, why=_FRAME_WHY)
    yaw: int = quantity("channel", ge=1, le=FRAME_CHANNELS, default=4, why=_FRAME_WHY)
    arm: int = quantity(
        "channel", ge=1, le=FRAME_CHANNELS, default=5, doc="> 1700 us armed, else throttle hold", why=_FRAME_WHY
    )
    mode: int = quantity(
        "channel", ge=1, le=FRAME_CHANNELS, default=6, doc="< 1300 rate, 1300-1700 angle, > 1700 rescue",
        why=_FRAME_WHY,
    )  # fmt: skip
    throttle_hold: int | None = quantity(
        "channel", ge=0, le=FRAME_CHANNELS, default=None,
        doc="> 1700 us: throttle hold (the motor stops, the controller flies on); 0: no such switch; "
        f"not set: {DEFAULT_THROTTLE_HOLD_CHANNEL}, or 0 if another function has that channel",
        why=_FRAME_WHY,
    )  # fmt: skip
    roll_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0), doc="min, centre, max", why=_PULSE_WHY
    )
    pitch_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0), why=_PULSE_WHY
    )
    collective_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0), why=_PULSE_WHY
    )
    yaw_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0), why=_PULSE_WHY
    )
    reversed: tuple[str, ...] = quantity(
        "-", choices=STICKS, max_items=len(STICKS), default=(), doc="sticks whose direction is reversed"
    )

    def numbers(self) -> tuple[int, ...]:
        """The channel of each of ``CHANNEL_FUNCTIONS``, in that order (throttle hold 0: none)."""
        return tuple(self.channel_of(function) for function in CHANNEL_FUNCTIONS)

    def calibration(self, stick: str) -> tuple[float, float, float]:
        """(min, centre, max) in microseconds of one stick."""
        low, centre, high = getattr(self, f"{stick}_us")
        return low, centre, high

    def __post_init__(self) -> None:
        # lists given in Python become tuples: the map is a value (hashable, kept per map by the decoding)
        for name in (*(f"{stick}_us" for stick in STICKS), "reversed"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for stick in STICKS:
            values = getattr(self, f"{stick}_us")
            if len(values) != 3 or not values[0] < values[1] < values[2]:
                raise ConfigError(f"rc.{stick}_us = {list(values)}: expected [min, centre, max] in us, increasing")
        for stick in self.reversed:
            if stick not in STICKS:
                raise ConfigError(f"rc.reversed = {list(self.reversed)}: expected names from {', '.join(STICKS)}")
        used = list(self._required_channels)
        for name, channel in zip(CHANNEL_FUNCTIONS, used, strict=False):
            if not 1 <= channel <= FRAME_CHANNELS:
                raise ConfigError(f"rc.{name} = {channel!r}: out of range, expected a channel 1-{FRAME_CHANNELS}")
        if len(set(used)) != len(used):
            raise ConfigError(f"two functions share a channel: {used}")
        if self.throttle_hold and self.throttle_hold in used:
            function = CHANNEL_FUNCTIONS[used.index(self.throttle_hold)]
            raise ConfigError(
                f"rc.throttle_hold = {self.throttle_hold}: channel {self.throttle_hold} is rc.{function}'s; "
                "expected a free channel, or 0 for no throttle-hold switch"
            )

    @property
    def hold_channel(self) -> int:
        """The throttle-hold channel (0: none): as set, else channel 7 unless the map gives it to
        another function (a map from before channel 7 meant anything keeps working)."""
        if self.throttle_hold is not None:
            return self.throttle_hold
        return 0 if DEFAULT_THROTTLE_HOLD_CHANNEL in self._required_channels else DEFAULT_THROTTLE_HOLD_CHANNEL

    @property
    def _required_channels(self) -> tuple[int, ...]:
        """The channels of every function but the optional throttle hold, in ``CHANNEL_FUNCTIONS`` order."""
        return tuple(getattr(self, function) for function in CHANNEL_FUNCTIONS if function != "throttle_hold")

    def channel_of(self, function: str) -> int:
        """The channel (1-based; 0: none) of one of ``CHANNEL_FUNCTIONS``."""
        return self.hold_channel if function == "throttle_hold" else getattr(self, function)


@dataclass(frozen=True)
class PilotKind:
    """One kind of pilot, as ``[flight] pilot`` and ``--pilot`` name it: ``NAME`` or ``NAME:ARGUMENT``."""

    name: str
    argument: str  # what may follow the colon (a regular expression); empty: nothing may
    argument_shape: str  # how the help and errors write it
    argument_optional: bool
    transmitter: bool  # reaches the flight as a radio does, down the rc-in port (someone at the sticks)
    doc: str

    @property
    def pattern(self) -> str:
        if not self.argument:
            return self.name
        return f"{self.name}(:{self.argument}){'?' if self.argument_optional else ''}"

    @property
    def shape(self) -> str:
        if not self.argument:
            return self.name
        return (
            f"{self.name}[:{self.argument_shape}]" if self.argument_optional else f"{self.name}:{self.argument_shape}"
        )


# every pilot: the one table the flight file's schema, the command line's help and the pilots' rules read
# (the pilots themselves: sim.pilots.make_pilot; a transmitter's, the emulated transmitter or the view)
PILOT_KINDS: dict[str, PilotKind] = {
    kind.name: kind
    for kind in (
        PilotKind("hover", r"[0-9]{1,7}(\.[0-9]{1,3})?", "SECONDS", True, False,
                  "lifts off, holds a hover over its start point (and lands after SECONDS)"),
        PilotKind("keyboard", "", "", False, True, "the view's keys as a transmitter (needs the view)"),
        PilotKind("joystick", "[0-9]{1,2}", "N", True, True, "a USB joystick, or a radio in joystick mode"),
        PilotKind("script", ".+", "FILE", False, False, "timed stick positions from a TOML file"),
    )
}  # fmt: skip


_shapes = [kind.shape for kind in PILOT_KINDS.values()]
_PILOT_SHAPES = f"{', '.join(_shapes[:-1])} or {_shapes[-1]}"  # hover[:SECONDS], keyboard, ... or script:FILE


def pilot_kind(spec: str) -> PilotKind:
    """The kind of the (valid) pilot ``spec``."""
    return PILOT_KINDS[spec.partition(":")[0]]


def is_joystick_pilot(spec: str) -> bool:
    """``joystick`` or ``joystick:N``."""
    return spec.partition(":")[0] == "joystick"


@dataclass(frozen=True)
class FlightSettings:
    """What to fly and how: the ``[flight]`` table and the matching command-line options."""

    heli: str = quantity("-", default="xcell60", doc="a name in configs/ or a path to a helicopter file")
    fleet: int = quantity(
        "vehicles", ge=1, le=MAX_FLEET, default=1,
        why="the largest batch heli-sim steps (real time holds to a few thousand on one core; bench step)",
    )  # fmt: skip
    io: str = quantity("-", choices=IO_MODES, default="threaded", doc="I/O mode at the start")
    loop_hz: float = quantity(
        "Hz", ge=10.0, le=5000.0, default=500.0, doc="controller and I/O loop rate",
        why="flight controllers run at 50-8000 Hz; below 10 Hz nothing flies, above 5 kHz Python cannot keep time",
    )  # fmt: skip
    physics_dt_s: float = quantity(
        "s", ge=MIN_PHYSICS_DT_S, le=MAX_PHYSICS_DT_S, default=0.001, doc="fixed physics step",
        why="one step costs ~0.1 ms of CPU, so shorter steps cannot run in real time; longer ones do not "
        "resolve the landing gear, rotor and tail (~100-200/s on RC helicopters)",
    )  # fmt: skip
    pilot: str = quantity(
        "-", default="hover", doc=_PILOT_SHAPES,
        pattern="|".join(kind.pattern for kind in PILOT_KINDS.values()),
        shape=_PILOT_SHAPES,
    )  # fmt: skip
    pilot_hz: float = quantity(
        "Hz", ge=1.0, le=1000.0, default=100.0, doc="the pilot's transmitter frame rate",
        why="RC links send 50-1000 frames a second",
    )  # fmt: skip
    duration_s: float = quantity(
        "s", ge=0.0, le=MAX_DURATION_S, default=0.0, doc="0: until Ctrl-C or SIGTERM", why=_DURATION_WHY
    )
    start: str = quantity("-", choices=("ground", "hover"), default="ground", doc="on the skids, or trimmed in the air")
    start_altitude_m: float = quantity(
        "m", ge=0.5, le=1000.0, default=5.0, doc="with start = hover", why="above the skids, below the clouds"
    )
    spacing_m: float = quantity(
        "m", ge=0.0, le=1000.0, default=0.0, doc="fleet grid spacing; 0: three rotor radii", why="a flying field"
    )
    catchup_limit_s: float = quantity(
        "s", gt=0.0, le=60.0, default=1.0, doc="physics catch-up cap after a stall",
        why="longer stalls are skipped and reported",
    )  # fmt: skip
    failsafe_timeout_s: float = quantity(
        "s", gt=0.0, le=10.0, default=0.25, doc="pilot input older than this is stale",
        why="receivers go to failsafe after ~0.1-1 s",
    )  # fmt: skip
    seed: int = quantity("-", ge=0, le=2**63 - 1, default=0, doc="seeds every random number (fault injection)")
    rc_override: bool = quantity(
        "-", default=False, doc="a ground station's RC_CHANNELS_OVERRIDE flies vehicle 0 (MAVLink telemetry)",
    )  # fmt: skip
    workers: int = quantity(
        "processes", ge=0, le=256, default=0,
        doc="step and control the fleet in this many worker processes (0: in the loop's own); each needs a slice of "
        "more than 24 vehicles",
        why="one per core: more than the machine has only take turns",
    )  # fmt: skip
    kernel: str = quantity(
        "-", choices=KERNELS, default="numpy",
        doc="the physics and controller kernels: numpy (Python floats or numpy columns), or compiled (numba, "
        "pip install 'heli-sim[fast]': compiled once, about half a minute, then cached; the same results)",
    )  # fmt: skip
    controller: str = quantity(
        "-", default="", doc="MODULE:FUNCTION with heli.control.control's signature; empty: the built-in one",
        pattern=f"|{_CONTROLLER_NAME}", shape="MODULE:FUNCTION (a dotted module name, a colon, a function name)",
    )  # fmt: skip

    @property
    def pilot_is_joystick(self) -> bool:
        return is_joystick_pilot(self.pilot)

    @property
    def pilot_is_transmitter(self) -> bool:
        """The keyboard (the view's transmitter) or a joystick (an emulated transmitter reads it): a
        pilot that reaches the flight as a radio does, down the rc-in port, in CRSF by default."""
        return pilot_kind(self.pilot).transmitter

    def __post_init__(self) -> None:
        if self.kernel == "compiled":
            from sim.compiled import available  # (imports numba: only for a flight that asks for it)

            if not available():
                raise ConfigError(
                    "kernel = compiled: the compiled kernels need numba, which is not installed here; expected it "
                    "installed: pip install 'heli-sim[fast]'"
                )
        ratio = 1.0 / (self.loop_hz * self.physics_dt_s)
        if ratio < 0.999:
            raise ConfigError(
                f"physics_dt_s = {self.physics_dt_s:g} s is longer than a loop period "
                f"(1 / loop_hz = 1/{self.loop_hz:g} s): expected at most {1.0 / self.loop_hz:g} s"
            )
        if self.catchup_limit_s < 0.999 / self.loop_hz:
            raise ConfigError(
                f"catchup_limit_s = {self.catchup_limit_s:g} s is shorter than a loop period (1 / loop_hz = "
                f"1/{self.loop_hz:g} s): every tick would skip time; expected at least {1.0 / self.loop_hz:g} s"
            )
        steps = self.catchup_limit_s / self.physics_dt_s
        if steps > MAX_CATCHUP_STEPS:
            raise ConfigError(
                f"catchup_limit_s = {self.catchup_limit_s:g} s is {steps:.0f} physics steps of "
                f"{self.physics_dt_s:g} s: expected at most {MAX_CATCHUP_STEPS} "
                "(a longer catch-up stalls the loop for seconds)"
            )


PORT_ROLES = tuple(ROLE_PROTOCOLS)  # rc-in, rc-out, servo, telemetry, link (the codecs' table of roles)
_AXIS_WHY = "pygame reads axes from -1 to 1"
_JOYSTICK_WHY = "SDL numbers axes and buttons from 0"
_PRESET_WHY = "not set: the preset's"
JOYSTICK_PRESETS = ("auto", "generic", "gamepad", "edgetx", "opentx")
# a radio in USB joystick (HID) mode names itself so: "EdgeTX Radiomaster TX16S Joystick", "OpenTX ..."
RADIO_NAME_MARKS = ("edgetx", "opentx", "radiomaster", "frsky", "jumper", "betafpv", "taranis")
# and a gamepad: "Xbox Wireless Controller", "Sony Interactive Entertainment Wireless Controller", ...
GAMEPAD_NAME_MARKS = ("xbox", "controller", "gamepad", "dualshock", "dualsense", "8bitdo", "joy-con")
SWITCH_KINDS = ("switch", "toggle")


_AXIS_SWITCHES = ("arm", "mode", "hold")  # switches that may be on an axis or a button
_BUTTON_SWITCHES = ("arm", "mode", "rescue", "hold")  # rescue is a button only


@dataclass(frozen=True)
class JoystickLayout:
    """Where each stick and switch of a transmitter is on a joystick: a preset with the flight
    file's changes applied (``JoystickMap.layout``).  Axes and buttons count from 0; ``None``:
    not on this joystick."""

    preset: str
    roll_axis: int
    pitch_axis: int
    collective_axis: int
    yaw_axis: int
    inverted: tuple[str, ...]
    arm_axis: int | None  # a switch on an axis: its value is the channel (> 0.4 armed)
    mode_axis: int | None  # low rate, middle angle, high rescue (the [rc] thresholds)
    arm_button: int | None
    mode_button: int | None  # held (or toggled on): rate; else angle
    rescue_button: int | None  # held (or toggled on): rescue, over the mode button
    hold_axis: int | None  # a switch on an axis: > 0.4 throttle hold
    hold_button: int | None  # held (or toggled on): throttle hold
    buttons: str  # "switch": a button's level is the switch (a radio); "toggle": a press flips it (a gamepad)

    @property
    def stick_axes(self) -> dict[str, int]:
        return {stick: getattr(self, f"{stick}_axis") for stick in STICKS}

    @property
    def named_axes(self) -> dict[str, int]:
        """Every axis the layout reads: the sticks', then the switches' on axes."""
        switches = {name: axis for name in _AXIS_SWITCHES if (axis := getattr(self, f"{name}_axis")) is not None}
        return {**self.stick_axes, **switches}

    @property
    def named_buttons(self) -> dict[str, int]:
        """Every button the layout reads (arm, mode, rescue, hold)."""
        return {name: b for name in _BUTTON_SWITCHES if (b := getattr(self, f"{name}_button")) is not None}

    def describe(self) -> str:
        """One line: where everything is."""
        sticks = ", ".join(f"{stick} axis {axis}" for stick, axis in self.stick_axes.items())
        axes, buttons = self.named_axes, self.named_buttons
        switches = [
            f"{name} axis {axes[name]}" if name in axes else f"{name} button {buttons[name]} ({self.buttons})"
            for name in _BUTTON_SWITCHES
            if name in axes or name in buttons
        ]
        inverted = f"; inverted {', '.join(self.inverted)}" if self.inverted else ""
        return f"preset {self.preset}: {sticks}; {', '.join(switches) or 'no switches'}{inverted}"


# the presets: "generic" is a gamepad or flight stick (Y axes read negative when pushed up, momentary
# buttons); "edgetx" / "opentx" is a radio in USB joystick mode (classic layout: channels 1-8 on
# axes 0-7 in the model's channel order, AETR by default, so arm on channel 5 and the flight mode
# on channel 6 are switches on axes 4 and 5, with the radio's own sense)
_GENERIC = JoystickLayout(
    preset="generic", roll_axis=0, pitch_axis=1, collective_axis=2, yaw_axis=3, inverted=("pitch", "collective"),
    arm_axis=None, mode_axis=None, arm_button=0, mode_button=1, rescue_button=None, hold_axis=None, hold_button=2,
    buttons="toggle",
)  # fmt: skip
_RADIO = JoystickLayout(
    preset="edgetx", roll_axis=0, pitch_axis=1, collective_axis=2, yaw_axis=3, inverted=(),
    arm_axis=4, mode_axis=5, arm_button=None, mode_button=None, rescue_button=None, hold_axis=6, hold_button=None,
    buttons="switch",
)  # fmt: skip
# a gamepad as SDL numbers its axes on Linux (left stick x, y, left trigger, right stick x, y, right
# trigger; buttons A, B, X, Y), flown "mode 2": the left stick is collective (springing to zero pitch)
# and yaw, the right stick the cyclic; A arms, B switches rate / angle, Y rescue, each press flipping it
_GAMEPAD = JoystickLayout(
    preset="gamepad", roll_axis=3, pitch_axis=4, collective_axis=1, yaw_axis=0, inverted=("pitch", "collective"),
    arm_axis=None, mode_axis=None, arm_button=0, mode_button=1, rescue_button=3, hold_axis=None, hold_button=2,
    buttons="toggle",
)  # fmt: skip
JOYSTICK_LAYOUTS = {
    "generic": _GENERIC,
    "gamepad": _GAMEPAD,
    "edgetx": _RADIO,
    "opentx": replace(_RADIO, preset="opentx"),
}


def is_radio(device_name: str) -> bool:
    """Whether a joystick's name says it is a radio in USB joystick mode (the auto preset)."""
    name = device_name.lower()
    return any(mark in name for mark in RADIO_NAME_MARKS)


def auto_preset(device_name: str) -> str:
    """The preset ``auto`` picks for a joystick of this name: a radio, a gamepad, else generic."""
    if is_radio(device_name):
        return "edgetx"
    name = device_name.lower()
    return "gamepad" if any(mark in name for mark in GAMEPAD_NAME_MARKS) else "generic"


def _axis(doc: str = "") -> Any:
    return quantity("axis", ge=0, le=31, default=None, doc=doc or _PRESET_WHY, why=_JOYSTICK_WHY)


def _button(doc: str = "") -> Any:
    return quantity("button", ge=0, le=63, default=None, doc=doc or _PRESET_WHY, why=_JOYSTICK_WHY)


@dataclass(frozen=True)
class JoystickMap:
    """A USB joystick (or a radio in joystick mode) as the transmitter: a preset, and what the
    flight file changes of it (a key left out keeps the preset's value)."""

    preset: str = quantity(
        "-", choices=JOYSTICK_PRESETS, default="auto",
        doc="auto: by the joystick's name, edgetx for a radio (EdgeTX, OpenTX, RadioMaster, ...), gamepad for "
        "a gamepad (Xbox, DualSense, ... Controller), else generic (a flight stick)",
    )  # fmt: skip
    roll_axis: int | None = _axis()
    pitch_axis: int | None = _axis()
    collective_axis: int | None = _axis()
    yaw_axis: int | None = _axis()
    inverted: tuple[str, ...] | None = quantity(
        "-", choices=STICKS, max_items=len(STICKS), default=None,
        doc="axes whose sense is flipped (not set: the preset's)",
    )  # fmt: skip
    arm_axis: int | None = _axis("a switch on an axis: > 0.4 armed")
    mode_axis: int | None = _axis("a switch on an axis: low rate, middle angle, high rescue")
    arm_button: int | None = _button()
    mode_button: int | None = _button("on: rate, off: angle")
    rescue_button: int | None = _button("on: rescue")
    hold_axis: int | None = _axis("a switch on an axis: > 0.4 throttle hold")
    hold_button: int | None = _button("on: throttle hold")
    buttons: str | None = quantity(
        "-", choices=SWITCH_KINDS, default=None,
        doc="switch: a button held is the switch on (a radio); toggle: each press flips it (a gamepad)",
    )  # fmt: skip
    deadband: float = quantity(
        "-", ge=0.0, le=0.5, default=0.02, doc="axis values below this read as 0", why="half of the stick's travel"
    )
    # calibration: the raw axis values (pygame reads -1..1) at full low, centre and full high; a
    # radio in joystick mode rarely reaches both ends or rests exactly at 0
    roll_range: tuple[float, ...] = quantity(
        "-", ge=-1.0, le=1.0, items=3, default=(-1.0, 0.0, 1.0), doc="low, centre, high", why=_AXIS_WHY
    )
    pitch_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, items=3, default=(-1.0, 0.0, 1.0), why=_AXIS_WHY)
    collective_range: tuple[float, ...] = quantity(
        "-", ge=-1.0, le=1.0, items=3, default=(-1.0, 0.0, 1.0), why=_AXIS_WHY
    )
    yaw_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, items=3, default=(-1.0, 0.0, 1.0), why=_AXIS_WHY)

    def __post_init__(self) -> None:
        inverted = self.inverted or ()
        for stick in inverted:
            if stick not in STICKS:
                raise ConfigError(f"inverted = {list(inverted)}: expected names from {', '.join(STICKS)}")
        for stick in STICKS:
            values = getattr(self, f"{stick}_range")
            if len(values) != 3 or not values[0] < values[1] < values[2]:
                raise ConfigError(
                    f"joystick.{stick}_range = {list(values)}: expected [low, centre, high] raw values, increasing"
                )
        if self.inverted is not None and len(set(self.inverted)) != len(self.inverted):
            raise ConfigError(f"inverted = {list(self.inverted)}: names a stick twice; expected each at most once")
        for switch in _AXIS_SWITCHES:
            axis, button = getattr(self, f"{switch}_axis"), getattr(self, f"{switch}_button")
            if axis is not None and button is not None:
                raise ConfigError(
                    f"{switch}_axis = {axis} and {switch}_button = {button}: the {switch} switch is on one of "
                    "them; expected one"
                )
        # every preset "auto" may pick must give a layout that works: said now, not when it is plugged in
        presets = ("generic", "gamepad", "edgetx") if self.preset == "auto" else (self.preset,)
        for preset in presets:
            self._resolve(preset)

    def layout(self, device_name: str = "") -> JoystickLayout:
        """The layout for the joystick named ``device_name`` (the auto preset reads its name)."""
        return self._resolve(auto_preset(device_name) if self.preset == "auto" else self.preset)

    def _resolve(self, preset: str) -> JoystickLayout:
        base = JOYSTICK_LAYOUTS[preset]
        changes = {
            name: value
            for name in ("roll_axis", "pitch_axis", "collective_axis", "yaw_axis", "inverted", "arm_axis", "mode_axis",
                         "hold_axis", "arm_button", "mode_button", "rescue_button", "hold_button", "buttons")
            if (value := getattr(self, name)) is not None
        }  # fmt: skip
        # a switch given on a button replaces the preset's axis for it, and the other way round
        for switch in _AXIS_SWITCHES:
            if f"{switch}_button" in changes and f"{switch}_axis" not in changes:
                changes[f"{switch}_axis"] = None
            if f"{switch}_axis" in changes and f"{switch}_button" not in changes:
                changes[f"{switch}_button"] = None
        # the preset's throttle hold gives way to a switch or stick the table puts on its button or axis
        taken_buttons = [changes.get(f"{name}_button") for name in _BUTTON_SWITCHES]
        if "hold_button" not in changes and base.hold_button is not None and base.hold_button in taken_buttons:
            changes["hold_button"] = None
        taken_axes = [value for key, value in changes.items() if key.endswith("_axis")]
        if "hold_axis" not in changes and base.hold_axis is not None and base.hold_axis in taken_axes:
            changes["hold_axis"] = None
        layout = replace(base, **changes)
        auto = {"edgetx": ", auto's pick for a radio", "gamepad": ", auto's pick for a gamepad",
                "generic": ", auto's pick for other joysticks"}  # fmt: skip
        where = f" (preset {preset}{auto[preset] if self.preset == 'auto' else ''})"
        taken: dict[int, str] = {}
        for name, axis in layout.named_axes.items():
            if axis in taken:
                what = "two sticks share" if name in STICKS else "a switch shares"
                raise ConfigError(
                    f"{what} an axis: {taken[axis]} and {name} are both on axis {axis}{where}; expected one axis each"
                )
            taken[axis] = name
        seen: dict[int, str] = {}
        for name, button in layout.named_buttons.items():
            if button in seen:
                raise ConfigError(
                    f"{seen[button]}_button and {name}_button are both {button}{where}; expected one button each"
                )
            seen[button] = name
        return layout


@dataclass(frozen=True)
class PortSpec:
    """One serial port of a flight: a ``[[ports]]`` table, or a ``--rc``/``--servo``/... option."""

    role: str = quantity("-", choices=PORT_ROLES)
    url: str = quantity("-", default="virtual", doc="a device path, a pyserial URL, or virtual")
    protocol: str = quantity(
        "-",
        default="",
        choices=("", *PROTOCOLS),
        doc="empty: the role's default (hsf on virtual ports; crsf, maestro or mavlink on devices)",
    )
    vehicle: int = quantity(
        "index", ge=0, le=MAX_FLEET - 1, default=0, doc="which helicopter (servo and link ports)", why="a fleet index"
    )
    name: str = quantity("-", max_chars=64, default="", doc="shown in the summary; default role and vehicle")
    baud: int = quantity(
        "baud", ge=0, le=20_000_000, default=0, doc="0: the protocol's (CRSF 420000, SBUS 100000)",
        why="USB serial adapters reach 12-20 Mbaud",
    )  # fmt: skip
    latency_ms: float = quantity(
        "ms", ge=-1.0, le=60_000.0, default=-1.0,
        doc="virtual device reply latency; -1: the role's (link 100, servo 1)", why="up to a minute",
    )  # fmt: skip
    reply_timeout_ms: float = quantity(
        "ms", gt=0.0, le=600_000.0, default=500.0, doc="give up waiting after", why="up to ten minutes"
    )
    pace: bool = quantity("-", default=False, doc="the virtual device releases bytes at 10 bits per baud")

    def __post_init__(self) -> None:
        allowed = ROLE_PROTOCOLS[self.role][0]
        if self.protocol and self.protocol not in allowed:
            raise ConfigError(f"protocol = {self.protocol!r}: a {self.role} port speaks one of {', '.join(allowed)}")

    @property
    def wire_protocol(self) -> str:
        """The protocol this port speaks: as given, or the role's default for its kind of port."""
        return self.protocol or default_protocol(self.role, self.url)

    @property
    def label(self) -> str:
        return self.name or (f"{self.role}{self.vehicle}" if self.role in ("servo", "link") else self.role)

    @property
    def device_latency_ms(self) -> float:
        """The virtual device's reply latency: as given, or 100 ms for a link, 1 ms for a servo board."""
        if self.latency_ms >= 0.0:
            return self.latency_ms
        return 100.0 if self.role == "link" else 1.0


MAX_PORTS = 1024  # ports of one flight (each is a pty pair or a device, and an emulator process)
MAX_FAULTS = 1000
FAULT_KINDS = (
    "byte_loss", "corrupt", "rc_silence", "latency", "pace", "backpressure", "unplug", "loop_delay", "gust",
    "packet_loss",
)  # fmt: skip
FC_PORT = "fc"  # the flight controller's link, as a fault's port names it
_FC_FAULTS = ("latency", "packet_loss")  # what a fault can do to the flight controller's link
_AIR_FAULTS = ("gust",)  # faults of the air, not of a port
_MIN_GUST_M_S = 0.01


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: a ``[[faults]]`` table.  Times are simulated seconds of flight."""

    kind: str = quantity("-", choices=FAULT_KINDS)
    port: str = quantity(
        "-", max_chars=64, default="", doc="the port's name (rc-in, servo0, link0, ...); rc_silence: rc-in"
    )
    start_s: float = quantity("s", ge=0.0, le=MAX_DURATION_S, default=0.0, why=_SPAN_WHY)
    duration_s: float = quantity(
        "s", ge=0.0, le=MAX_DURATION_S, default=0.0, doc="0: to the end of the flight", why=_SPAN_WHY
    )
    rate: float = quantity(
        "-", ge=0.0, le=1.0, default=0.05, doc="byte_loss, corrupt: the share of bytes hit; packet_loss: of datagrams",
        why="a share",
    )  # fmt: skip
    direction: str = quantity("-", choices=("in", "out", "both"), default="in", doc="byte_loss, corrupt, packet_loss")
    latency_ms: float = quantity(
        "ms", gt=0.0, le=60_000.0, default=50.0, doc="latency: added to every reply", why="up to a minute"
    )
    baud: int = quantity(
        "baud", ge=50, le=20_000_000, default=9600, doc="pace: the line's speed", why="50 baud teletype to 20 Mbaud"
    )
    delay_ms: float = quantity(
        "ms", gt=0.0, le=10_000.0, default=30.0, doc="loop_delay: one stall this long", why="up to ten seconds"
    )
    every_s: float = quantity(
        "s", ge=0.0, le=MAX_DURATION_S, default=1.0, doc="loop_delay: a stall this often; 0: every tick",
        why=_SPAN_WHY,
    )  # fmt: skip
    gust_north_m_s: float = quantity(
        "m/s", ge=-30.0, le=30.0, default=0.0, doc="gust: its peak towards north (1-cos, MIL-F-8785C)",
        why="design gusts reach ~15 m/s; 30 is beyond anything an RC helicopter flies in",
    )  # fmt: skip
    gust_east_m_s: float = quantity("m/s", ge=-30.0, le=30.0, default=0.0, doc="gust: towards east")
    gust_down_m_s: float = quantity("m/s", ge=-30.0, le=30.0, default=0.0, doc="gust: downwards")
    gust_length_m: float = quantity(
        "m", gt=0.0, le=1000.0, default=10.0, doc="gust: d_m, the distance to its peak (it lasts 2 d_m)",
        why="MIL-F-8785C tunes d_m to the vehicle's frequencies: a few to a few hundred metres",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.kind in ("loop_delay", *_AIR_FAULTS) and self.port:
            where = "the loop" if self.kind == "loop_delay" else "the air"
            raise ConfigError(f"faults: {self.kind} is a fault of {where}, not of a port (drop port = {self.port!r})")
        if self.kind not in ("loop_delay", "rc_silence", *_AIR_FAULTS) and not self.port:
            raise ConfigError(f'faults: a {self.kind} fault needs a port (port = "rc-in", "servo0", ...)')
        peak = math.sqrt(self.gust_north_m_s**2 + self.gust_east_m_s**2 + self.gust_down_m_s**2)
        if self.kind == "gust" and not peak >= _MIN_GUST_M_S:
            raise ConfigError(
                f"faults: a gust needs a peak of at least {_MIN_GUST_M_S} m/s: gust_north_m_s, gust_east_m_s or "
                "gust_down_m_s"
            )

    @property
    def target(self) -> str:
        """The port it acts on ("rc-in" for rc_silence by default), "loop" or "air"."""
        if self.kind == "loop_delay":
            return "loop"
        if self.kind in _AIR_FAULTS:
            return "air"
        return self.port or "rc-in"

    def describe(self) -> str:
        """What the fault does, where: "rc-in: 5% of bytes lost (in)"."""
        return f"{self.target}: {self.detail}"

    @property
    def short(self) -> str:
        """A few words for the view's ports panel: "5% lost", "unplugged"."""
        return {
            "byte_loss": f"{self.rate:.0%} lost",
            "corrupt": f"{self.rate:.0%} corrupted",
            "rc_silence": "silent",
            "latency": f"+{self.latency_ms:g} ms",
            "pace": f"{self.baud} baud",
            "backpressure": "far end stopped",
            "unplug": "unplugged",
            "loop_delay": self.detail,
            "gust": "gust",
            "packet_loss": f"{self.rate:.0%} datagrams lost",
        }[self.kind]

    @property
    def detail(self) -> str:
        """What the fault does: "5% of bytes lost (in)"."""
        return {
            "byte_loss": f"{self.rate:.0%} of bytes lost ({self.direction})",
            "corrupt": f"{self.rate:.0%} of bytes corrupted ({self.direction})",
            "rc_silence": "no RC frames arrive",
            "latency": f"replies {self.latency_ms:g} ms later",
            "pace": f"line paced at {self.baud} baud",
            "backpressure": "the far end stops reading",
            "unplug": "device unplugged",
            "loop_delay": f"a {self.delay_ms:g} ms stall "
            + (f"every {self.every_s:g} s" if self.every_s else "every tick"),
            "gust": f"a 1-cos gust of ({self.gust_north_m_s:g}, {self.gust_east_m_s:g}, {self.gust_down_m_s:g}) m/s "
            f"north, east, down, peak {self.gust_length_m:g} m in",
            "packet_loss": f"{self.rate:.0%} of datagrams lost ({self.direction})",
        }[self.kind]


@dataclass(frozen=True)
class HomePosition:
    """Where the flight starts on Earth: its north-east-down origin, for the telemetry a ground
    station puts on its map (the default: the model flying field of the Canberra Model Aircraft
    Club, ArduPilot SITL's default home, so a ground station's map tiles are familiar)."""

    latitude_deg: float = quantity(
        "deg", ge=-89.0, le=89.0, default=-35.363261, doc="north positive",
        why="away from the poles, where east has a meaning",
    )  # fmt: skip
    longitude_deg: float = quantity("deg", ge=-180.0, le=180.0, default=149.16523, doc="east positive")
    altitude_m: float = quantity(
        "m", ge=-500.0, le=9000.0, default=584.0, doc="of the ground at home, above mean sea level",
        why="from the Dead Sea shore (-430 m) to above Everest",
    )  # fmt: skip


@dataclass(frozen=True)
class FlightConfig:
    """A whole flight: settings, channel map, environment, ports.

    ``ports`` None means the default set: a virtual rc-in port played by an emulated
    transmitter, a virtual servo board per vehicle and a virtual ground station.
    """

    flight: FlightSettings = field(default_factory=FlightSettings)
    rc: ChannelMap = field(default_factory=ChannelMap)
    environment: Environment = field(default_factory=Environment)
    joystick: JoystickMap = field(default_factory=lambda: JoystickMap())
    home: HomePosition = field(default_factory=HomePosition)
    ports: tuple[PortSpec, ...] | None = quantity("-", max_items=MAX_PORTS, default=None, doc="[[ports]] tables")
    faults: tuple[FaultSpec, ...] = quantity("-", max_items=MAX_FAULTS, default=(), doc="[[faults]] tables")
    fc: FcConfig = field(default_factory=FcConfig)

    def port_specs(self) -> tuple[PortSpec, ...]:
        """The ports this flight opens (the default set when none are configured)."""
        if self.ports is not None:
            return self.ports
        servos = tuple(PortSpec(role="servo", vehicle=i) for i in range(self.flight.fleet))
        # the keyboard pilot (in the view) and a joystick's emulated transmitter speak CRSF into the
        # RC port, as a real radio does
        rc = PortSpec(role="rc-in", protocol="crsf" if self.flight.pilot_is_transmitter else "")
        return (rc, *servos, PortSpec(role="telemetry"))

    def __post_init__(self) -> None:
        if self.fc.enabled and self.flight.fleet != 1:
            raise ConfigError(
                f"fc.protocol = {self.fc.protocol!r} flies one helicopter (one firmware instance), but the fleet "
                f"has {self.flight.fleet}: expected fleet = 1"
            )
        # each port's protocol can address the vehicles it serves (the default set: checked when opened)
        check_vehicle_ids(self.ports or (), self.flight.fleet)
        specs = self.port_specs()  # the default set has a port per vehicle: built once here
        for spec in specs:
            hover_over = spec.role == "rc-in" and spec.url == "virtual" and self.flight.pilot.startswith("hover")
            if hover_over and spec.wire_protocol != "hsf":
                raise ConfigError(
                    f"{spec.label}: the hover pilot's emulated transmitter flies by vehicle states, which only "
                    f"hsf carries, not {spec.wire_protocol}; use pilot script:FILE with {spec.wire_protocol}"
                )
        names = [p.label for p in specs] + ([FC_PORT] if self.fc.enabled else [])
        for index, fault in enumerate(self.faults):
            if (fault.target == FC_PORT) != (fault.kind == "packet_loss") and fault.kind not in ("latency",):
                raise ConfigError(
                    f"faults[{index}]: {fault.kind} on port {fault.target!r}: the flight controller's link ({FC_PORT}) "
                    f"takes {' and '.join(_FC_FAULTS)}, and packet_loss acts on it only"
                )
            if fault.target not in ("loop", "air") and fault.target not in names:
                raise ConfigError(
                    f"faults[{index}].port = {fault.target!r}: no such port in this flight; its ports are "
                    f"{', '.join(names) or 'none'}"
                )
            if fault.kind in ("backpressure", "unplug") and fault.target != "loop":
                spec = next(p for p in specs if p.label == fault.target)
                if fault.kind == "backpressure" and spec.url != "virtual":
                    raise ConfigError(
                        f"faults[{index}]: backpressure stops a virtual port's emulated device; "
                        f"{fault.target} is {spec.url} (use a virtual port, or unplug)"
                    )
                if fault.kind == "backpressure" and spec.role == "rc-in" and self.flight.pilot == "keyboard":
                    raise ConfigError(
                        f"faults[{index}]: backpressure stops a virtual port's emulated device; {fault.target}'s far "
                        "end is the view's keyboard (no device to stop): expected it on a port with an emulator"
                    )
        if self.ports is None:
            return
        labels = [p.label for p in self.ports]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"ports: two ports share a name: {labels} (give them distinct names)")
        for spec in self.ports:
            if spec.vehicle >= self.flight.fleet and spec.role in ("servo", "link"):
                raise ConfigError(
                    f"ports: {spec.label} is for vehicle {spec.vehicle}, but the fleet has {self.flight.fleet}"
                )
        if sum(1 for p in self.ports if p.role == "rc-in") > 1:
            raise ConfigError("ports: more than one rc-in port; a flight has one pilot input")

    def to_toml(self) -> str:
        return tomli_w.dumps(to_table(self))


def load_flight(path: str | Path | None) -> FlightConfig:
    """A flight file, or the defaults when ``path`` is None."""
    if path is None:
        return FlightConfig()
    return build(FlightConfig, flight_table(path), source=path)


def flight_table(path: str | Path) -> dict[str, Any]:
    """The tables of a flight file; ``ConfigError`` naming the right option when it is another kind of file."""
    table = load_toml(path, what="flight file")
    if "main_rotor" in table:
        raise ConfigError(f"{path}: a helicopter file ([main_rotor] table), not a flight file: give it to --heli")
    if "sweep" in table:
        raise ConfigError(f"{path}: a sweep file ([sweep] table), not a flight file: run it with heli-sim sweep")
    if "at" in table:
        raise ConfigError(f"{path}: a pilot script ([[at]] tables), not a flight file: give it to --pilot script:FILE")
    return table


def apply_overrides(config: FlightConfig, **settings: Any) -> FlightConfig:
    """``config`` with the given ``[flight]`` settings replaced (None means "not given"), re-validated."""
    given = {key: value for key, value in settings.items() if value is not None}
    if not given:
        return config
    table = to_table(config.flight)
    table.update(given)
    return replace(config, flight=build(FlightSettings, table, source="command line", path="flight"))
