"""Vehicle state and actuator command: one packed float array each, named views per quantity.

Both carry a leading batch axis of N vehicles.  Packing the state into one ``(N, STATE_SIZE)``
array makes the kernels' unpacking a single call, the flight log one row per vehicle, and a
replay comparison one ``array_equal``.  The arrays are read-only: ``heli.dynamics.step`` takes
a state and returns a new one.

Frames: position and velocity in a local NED earth frame (north, east, down; the ground is the
plane down = 0); attitude the unit quaternion (w, x, y, z) rotating body (x forward, y right,
z down) into NED; rates p, q, r about the body axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heli.layout import Layout, column, columns

__all__ = [
    "COMMAND_SIZE",
    "CRASH_REASONS",
    "STATE_SIZE",
    "ActuatorCommand",
    "CommandIndex",
    "StateIndex",
    "VehicleState",
]


class StateIndex(Layout):
    """The columns of ``VehicleState.packed`` (``heli.layout``: an index or a slice each)."""

    POSITION: slice = columns(("pn", "pe", "pd"), "m, NED", ("north_m", "east_m", "down_m"))
    VELOCITY: slice = columns(("vn", "ve", "vd"), "m/s, NED", ("v_north_m_s", "v_east_m_s", "v_down_m_s"))
    ATTITUDE: slice = columns(
        ("qw", "qx", "qy", "qz"), "unit quaternion w, x, y, z (body -> NED)", ("q_w", "q_x", "q_y", "q_z")
    )
    RATES: slice = columns(("p", "q", "r"), "rad/s, body p, q, r", ("p_rad_s", "q_rad_s", "r_rad_s"))
    FLAPPING: slice = columns(
        ("a1", "b1"), "rad, tip-path plane a1 (+ aft), b1 (+ right)", ("flap_a1_rad", "flap_b1_rad")
    )
    ROTOR_SPEED: int = column("omega", "rad/s, main rotor relative to the fuselage", "rotor_rad_s")
    INFLOW: slice = columns(
        ("lam", "lam_t"), "induced inflow ratio, main and tail rotor", ("inflow_main", "inflow_tail")
    )
    SERVOS: slice = columns(
        ("s0", "s1", "s2", "s3"), "servo positions, full throw = +-1: swash 0, 1, 2 and tail",
        ("servo_state_0", "servo_state_1", "servo_state_2", "servo_state_tail"),
    )  # fmt: skip
    THROTTLE: int = column("throttle", "drive output after its lag, 0..1", "throttle_state")
    CRASH: int = column("crash", "0 flying; else a key of CRASH_REASONS", "crash_code")


class CommandIndex(Layout):
    """The columns of ``ActuatorCommand.packed``."""

    SERVOS: slice = columns(
        ("c0", "c1", "c2", "c3"), "servo positions asked, full throw = +-1: swash 0, 1, 2 and tail",
        ("cmd_servo_0", "cmd_servo_1", "cmd_servo_2", "cmd_servo_tail"),
    )  # fmt: skip
    THROTTLE: int = column("throttle_cmd", "0..1", "cmd_throttle")


STATE_SIZE = StateIndex.SIZE
_DOWN = StateIndex.index("pd")
COMMAND_SIZE = CommandIndex.SIZE
CRASH_REASONS = {1: "rotor strike", 2: "hard landing", 3: "roll-over"}


def _frozen(array: np.ndarray, width: int, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)  # no copy: the state takes ownership
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{what} must have shape (N, {width}), got {array.shape}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class VehicleState:
    """The state of N vehicles; ``packed`` is ``(N, STATE_SIZE)`` float64, read-only.

    The state takes ownership of the array it is given (no copy) and marks it read-only.
    """

    packed: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "packed", _frozen(self.packed, STATE_SIZE, "VehicleState.packed"))

    @property
    def count(self) -> int:
        return self.packed.shape[0]

    @property
    def position_ned_m(self) -> np.ndarray:
        return self.packed[:, StateIndex.POSITION]

    @property
    def velocity_ned_m_s(self) -> np.ndarray:
        return self.packed[:, StateIndex.VELOCITY]

    @property
    def attitude_quat(self) -> np.ndarray:
        return self.packed[:, StateIndex.ATTITUDE]

    @property
    def body_rates_rad_s(self) -> np.ndarray:
        return self.packed[:, StateIndex.RATES]

    @property
    def flapping_rad(self) -> np.ndarray:
        return self.packed[:, StateIndex.FLAPPING]

    @property
    def rotor_speed_rad_s(self) -> np.ndarray:
        return self.packed[:, StateIndex.ROTOR_SPEED]

    @property
    def inflow_ratio(self) -> np.ndarray:
        return self.packed[:, StateIndex.INFLOW]

    @property
    def servo_position(self) -> np.ndarray:
        return self.packed[:, StateIndex.SERVOS]

    @property
    def throttle(self) -> np.ndarray:
        return self.packed[:, StateIndex.THROTTLE]

    @property
    def crash_code(self) -> np.ndarray:
        return self.packed[:, StateIndex.CRASH].astype(np.int64)

    @property
    def crashed(self) -> np.ndarray:
        return self.packed[:, StateIndex.CRASH] != 0.0

    @property
    def altitude_m(self) -> np.ndarray:
        return -self.packed[:, _DOWN]

    def euler_deg(self) -> np.ndarray:
        """Roll, pitch, yaw in degrees (ZYX convention), shape (N, 3)."""
        w, x, y, z = self.attitude_quat.T
        roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
        pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
        yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        return np.degrees(np.stack([roll, pitch, yaw], axis=1))

    def replace_columns(self, index: int | slice, values: np.ndarray | float) -> VehicleState:
        """A copy with the given column(s) set, for tests and initial conditions."""
        packed = self.packed.copy()
        packed[:, index] = values
        return VehicleState(packed)


@dataclass(frozen=True, eq=False)
class ActuatorCommand:
    """What the controller asks of the actuators, ``(N, COMMAND_SIZE)``: 4 servos then throttle.

    Servo positions are in full-throw units (-1..1): swashplate servos 0, 1, 2 in the order of
    ``heli.mixer.servo_azimuths_deg`` and the tail servo; throttle is 0..1.
    """

    packed: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "packed", _frozen(self.packed, COMMAND_SIZE, "ActuatorCommand.packed"))

    @property
    def servo(self) -> np.ndarray:
        return self.packed[:, CommandIndex.SERVOS]

    @property
    def throttle(self) -> np.ndarray:
        return self.packed[:, CommandIndex.THROTTLE]

    @classmethod
    def neutral(cls, count: int) -> ActuatorCommand:
        return cls(np.zeros((count, COMMAND_SIZE)))
