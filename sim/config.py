"""Configuration: helicopter files and flight files, validated into frozen dataclasses.

A helicopter is ``configs/<name>.toml`` (or any path): the ``heli.params.HeliParams`` tables and
an optional ``[controller]`` table of ``heli.control.ControllerParams``.  A flight file has the
tables ``[flight]`` (``FlightSettings``), ``[rc]`` (``ChannelMap``) and ``[environment]``
(``heli.params.Environment``).  Precedence: the dataclass defaults, then the file, then the
command line (``apply_overrides``).  Every error is a ``ConfigError`` that names the file, the
key path, the bad value and what was expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from heli.control import ControllerParams
from heli.errors import ConfigError
from heli.params import Environment, HeliParams, quantity
from sim.dataclass_io import build, to_table
from sim.ports.codecs import ROLE_PROTOCOLS, default_protocol

__all__ = [
    "FAULT_KINDS",
    "PORT_ROLES",
    "ChannelMap",
    "FaultSpec",
    "FlightConfig",
    "FlightSettings",
    "HeliConfig",
    "JoystickMap",
    "PortSpec",
    "configs_dir",
    "heli_from_table",
    "heli_names",
    "heli_table",
    "load_flight",
    "load_heli",
    "load_toml",
]

IO_MODES = ("threaded", "blocking", "asyncio")
STICKS = ("roll", "pitch", "collective", "yaw")
FRAME_CHANNELS = 16  # channels in an RC frame (CRSF and SBUS carry 16)


def configs_dir() -> Path:
    """The shipped ``configs`` folder: the source tree's, or the copy inside the installed package."""
    source_tree = Path(__file__).resolve().parent.parent / "configs"
    if source_tree.is_dir():
        return source_tree
    return Path(__file__).resolve().parent / "_configs"


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


def load_toml(path: str | Path) -> dict[str, Any]:
    """A parsed TOML file; a missing, unreadable or malformed file is a ``ConfigError``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file, expected TOML") from None


@dataclass(frozen=True)
class HeliConfig:
    """A helicopter type with its controller tuning, and the file they came from."""

    params: HeliParams
    controller: ControllerParams
    source: str


def load_heli(name_or_path: str) -> HeliConfig:
    """Load ``configs/<name>.toml`` or a path to a helicopter TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.parent != Path("."):
        path = candidate
    else:
        path = configs_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(heli_names())
            raise ConfigError(
                f"unknown helicopter {name_or_path!r}: expected one of {known}, or a path to a .toml file"
            )
    return heli_from_table(load_toml(path), str(path))


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

    roll: int = quantity("channel", ge=1, le=16, default=1)
    pitch: int = quantity("channel", ge=1, le=16, default=2)
    collective: int = quantity("channel", ge=1, le=16, default=3)
    yaw: int = quantity("channel", ge=1, le=16, default=4)
    arm: int = quantity("channel", ge=1, le=16, default=5, doc="> 1700 us armed, else throttle hold")
    mode: int = quantity("channel", ge=1, le=16, default=6, doc="< 1300 rate, 1300-1700 angle, > 1700 rescue")
    roll_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, default=(1000.0, 1500.0, 2000.0), doc="min, centre, max"
    )
    pitch_us: tuple[float, ...] = quantity("us", ge=500, le=2500, default=(1000.0, 1500.0, 2000.0))
    collective_us: tuple[float, ...] = quantity("us", ge=500, le=2500, default=(1000.0, 1500.0, 2000.0))
    yaw_us: tuple[float, ...] = quantity("us", ge=500, le=2500, default=(1000.0, 1500.0, 2000.0))
    reversed: tuple[str, ...] = quantity("-", default=(), doc="sticks whose direction is reversed")

    def calibration(self, stick: str) -> tuple[float, float, float]:
        """(min, centre, max) in microseconds of one stick."""
        low, centre, high = getattr(self, f"{stick}_us")
        return low, centre, high

    def __post_init__(self) -> None:
        for stick in STICKS:
            values = getattr(self, f"{stick}_us")
            if len(values) != 3 or not values[0] < values[1] < values[2]:
                raise ConfigError(f"rc.{stick}_us = {list(values)}: expected [min, centre, max] in us, increasing")
        for stick in self.reversed:
            if stick not in STICKS:
                raise ConfigError(f"rc.reversed = {list(self.reversed)}: expected names from {', '.join(STICKS)}")
        used = [self.roll, self.pitch, self.collective, self.yaw, self.arm, self.mode]
        for name, channel in zip(("roll", "pitch", "collective", "yaw", "arm", "mode"), used, strict=True):
            if not 1 <= channel <= FRAME_CHANNELS:
                raise ConfigError(f"rc.{name} = {channel!r}: out of range, expected a channel 1-{FRAME_CHANNELS}")
        if len(set(used)) != len(used):
            raise ConfigError(f"two functions share a channel: {used}")


@dataclass(frozen=True)
class FlightSettings:
    """What to fly and how: the ``[flight]`` table and the matching command-line options."""

    heli: str = quantity("-", default="xcell60", doc="a name in configs/ or a path to a helicopter file")
    fleet: int = quantity("vehicles", ge=1, le=100000, default=1)
    io: str = quantity("-", choices=IO_MODES, default="threaded", doc="I/O mode at the start")
    loop_hz: float = quantity("Hz", ge=10.0, le=5000.0, default=500.0, doc="controller and I/O loop rate")
    physics_dt_s: float = quantity("s", gt=0.0, le=0.01, default=0.001, doc="fixed physics step")
    pilot: str = quantity("-", default="hover", doc="hover, keyboard or script:FILE")
    pilot_hz: float = quantity("Hz", ge=1.0, le=1000.0, default=100.0, doc="the pilot's transmitter frame rate")
    duration_s: float = quantity("s", ge=0.0, default=0.0, doc="0: until Ctrl-C or SIGTERM")
    start: str = quantity("-", choices=("ground", "hover"), default="ground", doc="on the skids, or trimmed in the air")
    start_altitude_m: float = quantity("m", ge=0.5, le=1000.0, default=5.0, doc="with start = hover")
    spacing_m: float = quantity("m", ge=0.0, default=0.0, doc="fleet grid spacing; 0: three rotor radii")
    catchup_limit_s: float = quantity("s", gt=0.0, le=60.0, default=1.0, doc="physics catch-up cap after a stall")
    failsafe_timeout_s: float = quantity("s", gt=0.0, le=10.0, default=0.25, doc="pilot input older than this is stale")
    seed: int = quantity("-", ge=0, le=2**63 - 1, default=0, doc="seeds every random number (fault injection)")
    controller: str = quantity(
        "-", default="", doc="MODULE:FUNCTION with heli.control.control's signature; empty: the built-in one"
    )

    def __post_init__(self) -> None:
        ratio = 1.0 / (self.loop_hz * self.physics_dt_s)
        if ratio < 0.999:
            raise ConfigError(f"physics_dt_s = {self.physics_dt_s} is longer than a loop period (1/{self.loop_hz} s)")
        if not (self.pilot in ("hover", "keyboard") or self.pilot.startswith("script:")):
            raise ConfigError(f"pilot = {self.pilot!r}: expected hover, keyboard or script:FILE")


PORT_ROLES = ("rc-in", "rc-out", "servo", "telemetry", "link")


@dataclass(frozen=True)
class JoystickMap:
    """A USB joystick (or a radio in joystick mode) as the view's transmitter: axes and buttons from 0."""

    roll_axis: int = quantity("axis", ge=0, le=31, default=0)
    pitch_axis: int = quantity("axis", ge=0, le=31, default=1)
    collective_axis: int = quantity("axis", ge=0, le=31, default=2)
    yaw_axis: int = quantity("axis", ge=0, le=31, default=3)
    inverted: tuple[str, ...] = quantity("-", default=("pitch", "collective"), doc="axes whose sense is flipped")
    arm_button: int = quantity("button", ge=0, le=63, default=0)
    mode_button: int = quantity("button", ge=0, le=63, default=1)
    deadband: float = quantity("-", ge=0.0, le=0.5, default=0.02, doc="axis values below this read as 0")
    # calibration: the raw axis values (pygame reads -1..1) at full low, centre and full high; a
    # radio in joystick mode rarely reaches both ends or rests exactly at 0
    roll_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, default=(-1.0, 0.0, 1.0), doc="low, centre, high")
    pitch_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, default=(-1.0, 0.0, 1.0))
    collective_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, default=(-1.0, 0.0, 1.0))
    yaw_range: tuple[float, ...] = quantity("-", ge=-1.0, le=1.0, default=(-1.0, 0.0, 1.0))

    def __post_init__(self) -> None:
        axes = [self.roll_axis, self.pitch_axis, self.collective_axis, self.yaw_axis]
        if len(set(axes)) != len(axes):
            raise ConfigError(f"joystick: two sticks share an axis: roll, pitch, collective, yaw = {axes}")
        if self.arm_button == self.mode_button:
            raise ConfigError(f"joystick: arm_button and mode_button are both {self.arm_button}")
        for stick in self.inverted:
            if stick not in STICKS:
                raise ConfigError(f"joystick.inverted = {list(self.inverted)}: expected names from {', '.join(STICKS)}")
        for stick in STICKS:
            values = getattr(self, f"{stick}_range")
            if len(values) != 3 or not values[0] < values[1] < values[2]:
                raise ConfigError(
                    f"joystick.{stick}_range = {list(values)}: expected [low, centre, high] raw values, increasing"
                )


@dataclass(frozen=True)
class PortSpec:
    """One serial port of a flight: a ``[[ports]]`` table, or a ``--rc``/``--servo``/... option."""

    role: str = quantity("-", choices=PORT_ROLES)
    url: str = quantity("-", default="virtual", doc="a device path, a pyserial URL, or virtual")
    protocol: str = quantity(
        "-",
        default="",
        choices=("", "hsf", "crsf", "sbus", "ibus", "msp", "maestro", "mavlink"),
        doc="empty: the role's default (hsf on virtual ports; crsf, maestro or mavlink on devices)",
    )
    vehicle: int = quantity("index", ge=0, default=0, doc="which helicopter (servo and link ports)")
    name: str = quantity("-", default="", doc="shown in the summary; default role and vehicle")
    baud: int = quantity("baud", ge=0, le=20_000_000, default=0, doc="0: the protocol's (CRSF 420000, SBUS 100000)")
    latency_ms: float = quantity(
        "ms", ge=-1.0, le=60_000.0, default=-1.0, doc="virtual device reply latency; -1: the role's (link 100, servo 1)"
    )
    reply_timeout_ms: float = quantity("ms", gt=0.0, le=600_000.0, default=500.0, doc="give up waiting after")
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


FAULT_KINDS = ("byte_loss", "corrupt", "rc_silence", "latency", "pace", "backpressure", "unplug", "loop_delay")


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: a ``[[faults]]`` table.  Times are wall-clock seconds of flight."""

    kind: str = quantity("-", choices=FAULT_KINDS)
    port: str = quantity("-", default="", doc="the port's name (rc-in, servo0, link0, ...); rc_silence: rc-in")
    start_s: float = quantity("s", ge=0.0, default=0.0)
    duration_s: float = quantity("s", ge=0.0, default=0.0, doc="0: to the end of the flight")
    rate: float = quantity("-", ge=0.0, le=1.0, default=0.05, doc="byte_loss, corrupt: the share of bytes hit")
    direction: str = quantity("-", choices=("in", "out", "both"), default="in", doc="byte_loss, corrupt")
    latency_ms: float = quantity("ms", gt=0.0, le=60_000.0, default=50.0, doc="latency: added to every reply")
    baud: int = quantity("baud", ge=50, le=20_000_000, default=9600, doc="pace: the line's speed")
    delay_ms: float = quantity("ms", gt=0.0, le=10_000.0, default=30.0, doc="loop_delay: one stall this long")
    every_s: float = quantity("s", ge=0.0, default=1.0, doc="loop_delay: a stall this often; 0: every tick")

    def __post_init__(self) -> None:
        if self.kind == "loop_delay" and self.port:
            raise ConfigError(f"faults: loop_delay is a fault of the loop, not of a port (drop port = {self.port!r})")
        if self.kind not in ("loop_delay", "rc_silence") and not self.port:
            raise ConfigError(f'faults: a {self.kind} fault needs a port (port = "rc-in", "servo0", ...)')

    @property
    def target(self) -> str:
        """The port it acts on ("rc-in" for rc_silence by default), or "loop"."""
        if self.kind == "loop_delay":
            return "loop"
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
        }[self.kind]


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
    ports: tuple[PortSpec, ...] | None = None
    faults: tuple[FaultSpec, ...] = ()

    def port_specs(self) -> tuple[PortSpec, ...]:
        """The ports this flight opens (the default set when none are configured)."""
        if self.ports is not None:
            return self.ports
        servos = tuple(PortSpec(role="servo", vehicle=i) for i in range(self.flight.fleet))
        # the keyboard pilot (in the view) speaks CRSF into the RC port, as a real radio does
        rc = PortSpec(role="rc-in", protocol="crsf" if self.flight.pilot == "keyboard" else "")
        return (rc, *servos, PortSpec(role="telemetry"))

    def __post_init__(self) -> None:
        names = [p.label for p in self.port_specs()]
        for index, fault in enumerate(self.faults):
            if fault.target != "loop" and fault.target not in names:
                raise ConfigError(
                    f"faults[{index}].port = {fault.target!r}: no such port in this flight; its ports are "
                    f"{', '.join(names) or 'none'}"
                )
            if fault.kind in ("backpressure", "unplug") and fault.target != "loop":
                spec = next(p for p in self.port_specs() if p.label == fault.target)
                if fault.kind == "backpressure" and spec.url != "virtual":
                    raise ConfigError(
                        f"faults[{index}]: backpressure stops a virtual port's emulated device; "
                        f"{fault.target} is {spec.url} (use a virtual port, or unplug)"
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
    return build(FlightConfig, load_toml(path), source=path)


def apply_overrides(config: FlightConfig, **settings: Any) -> FlightConfig:
    """``config`` with the given ``[flight]`` settings replaced (None means "not given"), re-validated."""
    given = {key: value for key, value in settings.items() if value is not None}
    if not given:
        return config
    table = to_table(config.flight)
    table.update(given)
    return replace(config, flight=build(FlightSettings, table, source="command line", path="flight"))
