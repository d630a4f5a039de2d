"""Initial conditions: a fleet at rest on its skids, or trimmed in hover at a given height.

Vehicles of a fleet are placed on a square grid, ``spacing_m`` apart, heading north.
"""

from __future__ import annotations

import math

import numpy as np

from heli.dynamics import FlightModel
from heli.mixer import mix
from heli.ops import SCALAR
from heli.state import STATE_SIZE, StateIndex, VehicleState
from heli.trim import TrimResult, quaternion_from_euler

__all__ = ["fleet_positions_ne", "ground_state", "hover_state"]

_NORTH_EAST = slice(StateIndex.index("pn"), StateIndex.index("pe") + 1)
_DOWN = StateIndex.index("pd")


def fleet_positions_ne(count: int, spacing_m: float) -> np.ndarray:
    """North/east positions (N, 2) on a square grid, vehicle 0 at the origin."""
    side = max(1, math.ceil(math.sqrt(count)))
    index = np.arange(count)
    return np.stack([(index // side) * spacing_m, (index % side) * spacing_m], axis=1).astype(np.float64)


def ground_state(model: FlightModel, count: int = 1, spacing_m: float | None = None) -> VehicleState:
    """``count`` helicopters level on their skids, springs at their static sag, rotors stopped."""
    spacing = spacing_m if spacing_m is not None else 3.0 * model.radius
    contact = model.params.contact
    packed = np.zeros((count, STATE_SIZE))
    packed[:, _NORTH_EAST] = fleet_positions_ne(count, spacing)
    packed[:, _DOWN] = -(contact.skid_depth_m - contact.static_deflection_m)
    packed[:, StateIndex.ATTITUDE] = (1.0, 0.0, 0.0, 0.0)
    packed[:, StateIndex.index("s3")] = -model.tail_pitch_offset / model.tail_pitch_per_throw
    return VehicleState(packed)


def hover_state(
    model: FlightModel, trim: TrimResult, count: int = 1, altitude_m: float = 5.0, spacing_m: float | None = None
) -> VehicleState:
    """``count`` helicopters in the trimmed hover of ``trim``, CG ``altitude_m`` above the ground."""
    spacing = spacing_m if spacing_m is not None else 3.0 * model.radius
    packed = np.zeros((count, STATE_SIZE))
    packed[:, _NORTH_EAST] = fleet_positions_ne(count, spacing)
    packed[:, _DOWN] = -altitude_m
    packed[:, StateIndex.ATTITUDE] = quaternion_from_euler(
        math.radians(trim.roll_deg), math.radians(trim.pitch_deg), 0.0
    )
    packed[:, StateIndex.FLAPPING] = trim.flapping_rad
    packed[:, StateIndex.ROTOR_SPEED] = trim.rotor_speed_rpm * math.pi / 30.0
    packed[:, StateIndex.INFLOW] = trim.inflow_ratio
    swash = mix(
        SCALAR,
        model.swash,
        math.radians(trim.collective_deg),
        math.radians(trim.lateral_cyclic_deg),
        math.radians(trim.longitudinal_cyclic_deg),
    )
    tail = (math.radians(trim.tail_pitch_deg) - model.tail_pitch_offset) / model.tail_pitch_per_throw
    packed[:, StateIndex.SERVOS] = (*swash, tail)
    packed[:, StateIndex.THROTTLE] = trim.throttle
    return VehicleState(packed)
