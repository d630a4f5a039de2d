"""RC channels in microseconds, and their meaning for the flight controller.

The contract's default order (1-based): 1 roll, 2 pitch, 3 collective, 4 yaw, 5 arm
(> 1700 us armed, else throttle hold), 6 flight mode (< 1300 rate, 1300-1700 angle, > 1700
rescue), 7 throttle hold (> 1700 us held, whatever the arm switch says: the motor stops and
the controller flies on, for autorotations); sticks 1000-2000 us, 1500 centre.
``to_pilot_input`` turns frames of channels into the controller's normalised ``PilotInput``,
with a per-vehicle "input is fresh" flag; each stick
is normalised by its calibration (min, centre, max microseconds; ``heli-sim calibrate`` measures
them) and reversed where the channel map says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from heli.control import PILOT_INPUT_SIZE, PilotInput
from heli.ops import ARRAY, SCALAR
from sim.config import FRAME_CHANNELS, ChannelMap
from sim.protocols.rc import CENTRE_US, HALF_RANGE_US

if TYPE_CHECKING:
    from sim.compiled import CompiledKernels

__all__ = [
    "ARM_THRESHOLD_US",
    "CENTRE_US",
    "CHANNEL_COUNT",
    "HALF_RANGE_US",
    "MODE_ANGLE_US",
    "MODE_RESCUE_US",
    "neutral_channels",
    "pulse_us",
    "takeover_collective_stick",
    "to_pilot_input",
]

CHANNEL_COUNT = FRAME_CHANNELS
ARM_THRESHOLD_US = 1700.0
MODE_ANGLE_US = 1300.0  # from here up to MODE_RESCUE_US: angle mode
MODE_RESCUE_US = 1700.0


def neutral_channels(count: int, channel_map: ChannelMap) -> np.ndarray:
    """(count, 16) frames: sticks centred, collective low, disarmed, angle mode, no throttle hold."""
    frames = np.full((count, CHANNEL_COUNT), CENTRE_US, dtype=np.float64)
    frames[:, channel_map.collective - 1] = CENTRE_US - HALF_RANGE_US
    frames[:, channel_map.arm - 1] = CENTRE_US - HALF_RANGE_US
    if channel_map.hold_channel:
        frames[:, channel_map.hold_channel - 1] = CENTRE_US - HALF_RANGE_US
    return frames


def takeover_collective_stick(hover_collective_deg: float, collective_max_deg: float, channel_map: ChannelMap) -> float:
    """The collective stick (-1..1 as a transmitter sends it: 1500 + 500 x stick microseconds) that the
    flight's calibration and reversal turn into ``hover_collective_deg``: where a transmitter taking
    over a hovering helicopter puts its collective."""
    return float(
        (pulse_us(hover_collective_deg / collective_max_deg, channel_map, "collective") - CENTRE_US) / HALF_RANGE_US
    )


def pulse_us(stick: Any, channel_map: ChannelMap, name: str) -> Any:
    """The pulse (us) a transmitter set up as ``channel_map`` says sends for stick ``name`` at ``stick``
    (-1..1; a float or an array): through its calibration and reversal, so that ``to_pilot_input``
    reads ``stick`` back."""
    low, centre, high = channel_map.calibration(name)
    sent = -stick if name in channel_map.reversed else stick
    return np.where(sent >= 0.0, centre + sent * (high - centre), centre + sent * (centre - low))


@dataclass(frozen=True)
class StickDecoding:
    """What the decode kernel reads of a channel map: per stick (low, centre, high) microseconds and
    a sign (-1.0 where the channel map reverses it)."""

    roll: tuple[float, float, float, float]
    pitch: tuple[float, float, float, float]
    yaw: tuple[float, float, float, float]
    collective: tuple[float, float, float, float]


@functools.lru_cache(maxsize=16)
def stick_decoding(channel_map: ChannelMap) -> StickDecoding:
    """``channel_map``'s calibrations and reversals as the decode kernel reads them (kept per map)."""

    def stick(name: str) -> tuple[float, float, float, float]:
        return (*channel_map.calibration(name), -1.0 if name in channel_map.reversed else 1.0)

    return StickDecoding(stick("roll"), stick("pitch"), stick("yaw"), stick("collective"))


def _stick(xp: Any, us: Any, calibration: tuple) -> Any:
    """-1..1 from a stick's calibrated (min, centre, max), reversed by its sign."""
    low, centre, high, sign = calibration
    value = xp.where(us >= centre, (us - centre) / (high - centre), (us - centre) / (centre - low))
    return xp.clip(value, -1.0, 1.0) * sign


def decode_kernel(xp: Any, d: StickDecoding, channels: tuple, fresh: Any) -> tuple:
    """One vehicle's ``PilotInput`` row (or numpy columns of many) from its (roll, pitch, yaw,
    collective, arm, hold, mode) channels in microseconds (hold 0.0 without a throttle-hold channel)
    and its freshness (1.0 or 0.0); written over a math namespace, ``heli.ops``'s rules, so that
    ``sim.compiled`` compiles it too."""
    roll, pitch, yaw, collective, arm, hold, mode = channels
    armed = xp.where((arm > ARM_THRESHOLD_US) & (hold <= ARM_THRESHOLD_US), 1.0, 0.0)
    flight_mode = xp.where(mode > MODE_RESCUE_US, 2.0, xp.where(mode >= MODE_ANGLE_US, 1.0, 0.0))
    return (
        _stick(xp, roll, d.roll), _stick(xp, pitch, d.pitch), _stick(xp, yaw, d.yaw),
        _stick(xp, collective, d.collective), armed, flight_mode, fresh,
    )  # fmt: skip


def to_pilot_input(
    frames_us: np.ndarray, fresh: np.ndarray | bool, channel_map: ChannelMap, kernels: CompiledKernels | None = None
) -> PilotInput:
    """Normalised controller input from (N, >= 6) channel frames in microseconds (``decode_kernel``:
    on ``kernels``, a flight's compiled kernels, if given; else on numpy columns, or on floats for
    one vehicle, ~8x faster than numpy on 1-element arrays)."""
    frames = np.asarray(frames_us, dtype=np.float64)
    count = frames.shape[0]
    decoding = stick_decoding(channel_map)
    cmap, hold = channel_map, channel_map.hold_channel
    indices = [cmap.roll - 1, cmap.pitch - 1, cmap.yaw - 1, cmap.collective - 1, cmap.arm - 1]
    has_hold = 0 < hold <= frames.shape[1]  # a frame without that channel: no hold switch
    if count == 1:
        row = frames[0].tolist()
        channels = [row[i] for i in indices] + [row[hold - 1] if has_hold else 0.0, row[cmap.mode - 1]]
        values = decode_kernel(SCALAR, decoding, tuple(channels), 1.0 if np.all(fresh) else 0.0)
        return PilotInput(np.array([values], dtype=np.float64))
    columns = [frames[:, i] for i in indices]
    columns += [frames[:, hold - 1] if has_hold else np.zeros(count), frames[:, cmap.mode - 1]]
    fresh_column = np.broadcast_to(np.asarray(fresh, dtype=np.float64), (count,))
    if kernels is not None:
        return PilotInput(kernels.decode(decoding, columns, fresh_column).T)
    packed = np.empty((count, PILOT_INPUT_SIZE), order="F")  # by column: as the kernels read it
    for index, values in enumerate(decode_kernel(ARRAY, decoding, tuple(columns), fresh_column)):
        packed[:, index] = values
    return PilotInput(packed)
