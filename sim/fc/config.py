"""The ``[fc]`` table of a flight file: which firmware flies, where it talks, how its outputs and
its radio channels are wired, and what its sensors read.

With ``[fc] protocol`` empty (the default) heli-sim's own flybarless controller flies.  With a
firmware's protocol (``ardupilot-json``) that firmware's software-in-the-loop build flies the
helicopter instead, and these tables say how it is wired, as a real installation would be:

- ``[fc.outputs]``: which of the firmware's outputs drives each of the helicopter's servos (the
  swashplate's rear, right and left servos, the tail) and its motor, each output's pulse range,
  reversals, and whether the motor output is an ESC governor's headspeed request or a throttle;
- ``[fc] rc``: what the firmware's radio channels 1..12 carry, taken from heli-sim's pilot;
- ``[fc.sensors]``: seeded noise and bias on the IMU, a rangefinder, the battery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heli.errors import ConfigError
from heli.params import quantity

__all__ = [
    "DEFAULT_FRAME_STEP_S",
    "FC_PROTOCOLS",
    "FRAME_STEP_RANGE_S",
    "RC_SOURCES",
    "SWASH_SERVOS",
    "FcConfig",
    "FcOutputs",
    "FcSensors",
]

FC_PROTOCOLS = ("", "ardupilot-json")  # "": heli-sim's own controller; see sim.fc.links for the links
SWASH_SERVOS = ("rear", "right", "left")  # heli-sim's swashplate servos 0, 1, 2 (heli.mixer)
OUTPUT_NAMES = (*SWASH_SERVOS, "tail", "motor")
# what a firmware's RC channel can carry: a function of heli-sim's channel map, the motor interlock
# (on once the arm switch has been on for interlock_delay_s, off in throttle hold), or a fixed pulse
RC_SOURCES = (
    "roll", "pitch", "collective", "yaw", "arm", "mode", "throttle_hold", "interlock", "low", "centre", "high",
)  # fmt: skip
# the physics steps a frame may ask for: 50 Hz to 20 kHz (ArduPilot SITL runs 1200, some 400-8000; slower
# than 50 Hz nothing flies, faster than 20 kHz the physics cannot answer in time)
FRAME_STEP_RANGE_S = (1.0 / 20_000.0, 1.0 / 50.0)
DEFAULT_FRAME_STEP_S = 1.0 / 1200.0  # ArduPilot SITL's SIM_RATE_HZ: the physics step --fc sets without a preset
FC_RC_CHANNELS = 12  # ArduPilot's JSON rc field carries rc_1 .. rc_12
_OUTPUT_CHANNELS = 16  # the flight log keeps 16 output channels per frame: the replay's input
_OUTPUT_WHY = "an output the flight log records (1-16)"
_PULSE_WHY = "servo pulses: 1000-2000 us, some outputs reach 800-2200"


@dataclass(frozen=True)
class FcOutputs:
    """How the firmware's outputs are plugged into the helicopter (``[fc.outputs]``)."""

    swash: tuple[int, ...] = quantity(
        "channel", ge=1, le=_OUTPUT_CHANNELS, items=3, default=(3, 2, 1),
        doc="the outputs driving the rear, right and left swashplate servos", why=_OUTPUT_WHY,
    )  # fmt: skip
    tail: int = quantity(
        "channel", ge=1, le=_OUTPUT_CHANNELS, default=4, doc="the tail servo's output", why=_OUTPUT_WHY
    )
    motor: int = quantity(
        "channel", ge=1, le=_OUTPUT_CHANNELS, default=8, doc="the ESC's (or throttle servo's) output", why=_OUTPUT_WHY
    )
    swash_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0),
        doc="min, centre, max: full throw down, centre, full throw up", why=_PULSE_WHY,
    )  # fmt: skip
    tail_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=3, default=(1000.0, 1500.0, 2000.0), doc="min, centre, max", why=_PULSE_WHY
    )
    motor_us: tuple[float, ...] = quantity(
        "us", ge=500, le=2500, items=2, default=(1000.0, 2000.0), doc="off, full", why=_PULSE_WHY
    )
    reversed: tuple[str, ...] = quantity(
        "-", choices=OUTPUT_NAMES, max_items=len(OUTPUT_NAMES), default=(),
        doc="outputs whose servo moves the other way (a higher pulse: less pitch)",
    )  # fmt: skip
    motor_mode: str = quantity(
        "-", choices=("governor", "throttle"), default="governor",
        doc="governor: the pulse asks an ESC governor for a headspeed; throttle: it is the throttle",
    )  # fmt: skip
    governor_setpoint: float = quantity(
        "-", gt=0.05, le=1.0, default=0.66,
        doc="motor output (0..1 of its range) that asks for the helicopter's governed headspeed "
        "(ArduPilot's H_RSC_SETPOINT / 100); the headspeed asked for is in proportion",
        why="a share of the output's range",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name, pulses in (("swash_us", self.swash_us), ("tail_us", self.tail_us)):
            if not pulses[0] < pulses[1] < pulses[2]:
                raise ConfigError(f"{name} = {list(pulses)}: expected min < centre < max")
        if not self.motor_us[0] < self.motor_us[1]:
            raise ConfigError(f"motor_us = {list(self.motor_us)}: expected off < full")
        used = [*self.swash, self.tail, self.motor]
        if len(set(used)) != len(used):
            raise ConfigError(f"one output drives two things (swash, tail, motor = {used}): expected each its own")
        if len(set(self.reversed)) != len(self.reversed):
            raise ConfigError(f"reversed = {list(self.reversed)} names an output twice: expected each once")

    def channel_of(self, name: str) -> int:
        """The firmware output (1-based) driving ``name`` (one of OUTPUT_NAMES)."""
        if name in SWASH_SERVOS:
            return self.swash[SWASH_SERVOS.index(name)]
        return self.tail if name == "tail" else self.motor


@dataclass(frozen=True)
class FcSensors:
    """What the firmware's sensors read besides the truth (``[fc.sensors]``); seeded by the flight's seed."""

    gyro_noise_rad_s: float = quantity(
        "rad/s", ge=0.0, le=1.0, default=0.0, doc="white noise on each gyro axis (standard deviation)",
        why="MEMS gyros: ~0.001-0.05 rad/s at 1 kHz",
    )  # fmt: skip
    accel_noise_m_s2: float = quantity(
        "m/s^2", ge=0.0, le=10.0, default=0.0, doc="white noise on each accelerometer axis",
        why="MEMS accelerometers: ~0.01-0.5 m/s^2 at 1 kHz, more on a vibrating airframe",
    )  # fmt: skip
    gyro_bias_rad_s: tuple[float, ...] = quantity(
        "rad/s", ge=-0.5, le=0.5, items=3, default=(0.0, 0.0, 0.0), doc="a constant gyro offset, x y z",
        why="uncalibrated MEMS gyros are off by up to ~0.1 rad/s",
    )  # fmt: skip
    accel_bias_m_s2: tuple[float, ...] = quantity(
        "m/s^2", ge=-2.0, le=2.0, items=3, default=(0.0, 0.0, 0.0), doc="a constant accelerometer offset, x y z",
        why="MEMS accelerometers are off by up to ~0.5 m/s^2",
    )  # fmt: skip
    rangefinder: bool = quantity("-", default=False, doc="a downward rangefinder (rng_1): the distance to the ground")
    rangefinder_max_m: float = quantity(
        "m", gt=0.1, le=200.0, default=20.0, doc="beyond this it reads nothing", why="hobby lidars reach 8-200 m"
    )
    battery: bool = quantity("-", default=True, doc="electric helicopters: the battery's voltage and current")


@dataclass(frozen=True)
class FcConfig:
    """Real flight-controller firmware in the loop (``[fc]``); the default is heli-sim's own controller."""

    protocol: str = quantity(
        "-", choices=FC_PROTOCOLS, default="", doc="the firmware's simulation protocol; empty: heli-sim's controller"
    )
    host: str = quantity(
        "-", max_chars=255, default="127.0.0.1", doc="the address to listen on (0.0.0.0: every interface)"
    )
    port: int = quantity(
        "port", ge=0, le=65535, default=9002, doc="the UDP port to listen on; 0: any free one (the events say which)",
        why="a UDP port",
    )  # fmt: skip
    timeout_s: float = quantity(
        "s", ge=1.2, le=60.0, default=2.0,
        doc="no frame for this long (wall clock): the firmware is gone, and no longer drives its servos",
        why="ArduPilot re-sends an unanswered frame after 1.1 s: shorter takes one lost datagram for a lost firmware",
    )  # fmt: skip
    rc: tuple[str, ...] = quantity(
        "-", choices=RC_SOURCES, max_items=FC_RC_CHANNELS,
        default=("roll", "pitch", "collective", "yaw", "arm", "mode", "throttle_hold", "interlock"),
        doc="what the firmware's RC channels 1.. carry", why="the JSON rc field carries 12 channels",
    )  # fmt: skip
    arm_after_s: float = quantity(
        "s", ge=0.0, le=600.0, default=6.0,
        doc="the arm channel stays off until the firmware has run this long (simulated): an arm switch already on "
        "is passed on once the firmware can arm",
        why="ArduPilot SITL can arm ~5 s after its start (its attitude estimate running)",
    )  # fmt: skip
    rc_udp_port: int = quantity(
        "port", ge=0, le=65535, default=5501,
        doc="also send the channels to this UDP port of the firmware's host, 50 times a second (simulated): "
        "ArduPilot SITL's RC input (5501 + 10 x instance), for builds that do not read the JSON rc field; 0: off",
        why="a UDP port",
    )  # fmt: skip
    interlock_delay_s: float = quantity(
        "s", ge=0.0, le=60.0, default=1.0, doc="the interlock channel comes on this long after the arm switch",
        why="the firmware arms with the interlock off, then the motor is let run",
    )  # fmt: skip
    outputs: FcOutputs = field(default_factory=FcOutputs)
    sensors: FcSensors = field(default_factory=FcSensors)

    def __post_init__(self) -> None:
        if self.rc_udp_port and self.rc_udp_port == self.port:
            raise ConfigError(
                f"rc_udp_port = {self.rc_udp_port} is the port heli-sim listens on: expected the firmware's RC "
                "input (ArduPilot: 5501 + 10 x its instance) or 0"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.protocol)

    @property
    def address(self) -> str:
        """Where it listens, as a user writes it: udp:127.0.0.1:9002."""
        return f"udp:{self.host}:{self.port}"
