"""Helicopter parameters: frozen dataclasses whose field names carry their units.

Every field declares its unit and its valid range in the field metadata, which the
configuration loader (``sim.config``) uses to validate TOML files and to word its errors.
The numbers themselves live in ``configs/*.toml`` with their sources; this module holds no
helicopter data, only the structure and the checks between fields.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field
from typing import Any

from heli.errors import ConfigError

__all__ = [
    "Contact",
    "Drive",
    "Empennage",
    "Environment",
    "Fuselage",
    "HeliParams",
    "MainRotor",
    "MassProperties",
    "Servos",
    "TailRotor",
    "quantity",
]


def quantity(
    unit: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    default: Any = MISSING,
    doc: str = "",
) -> Any:
    """A dataclass field with its unit, range and meaning recorded for the config loader."""
    metadata = {"unit": unit, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "doc": doc}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Environment:
    """The air, wind and gravity the vehicles fly in."""

    air_density_kg_m3: float = quantity("kg/m^3", gt=0.1, lt=2.0, default=1.225, doc="ISA sea level")
    gravity_m_s2: float = quantity("m/s^2", gt=0.0, lt=30.0, default=9.80665, doc="standard gravity")
    wind_north_m_s: float = quantity("m/s", ge=-50.0, le=50.0, default=0.0, doc="steady wind towards north")
    wind_east_m_s: float = quantity("m/s", ge=-50.0, le=50.0, default=0.0, doc="steady wind towards east")
    wind_down_m_s: float = quantity("m/s", ge=-20.0, le=20.0, default=0.0, doc="steady wind downwards")


@dataclass(frozen=True)
class MassProperties:
    """Whole-vehicle mass and principal inertias (rotor included, as a rigid part)."""

    mass_kg: float = quantity("kg", gt=0.0, lt=100.0, doc="flying mass")
    inertia_xx_kg_m2: float = quantity("kg m^2", gt=0.0, doc="roll inertia about the CG")
    inertia_yy_kg_m2: float = quantity("kg m^2", gt=0.0, doc="pitch inertia about the CG")
    inertia_zz_kg_m2: float = quantity("kg m^2", gt=0.0, doc="yaw inertia about the CG")


@dataclass(frozen=True)
class MainRotor:
    """Main rotor: blade-element thrust, momentum inflow, first-order flapping, torque."""

    radius_m: float = quantity("m", gt=0.05, lt=5.0)
    chord_m: float = quantity("m", gt=0.001, lt=0.5)
    blade_count: int = quantity("blades", ge=2, le=8)
    lift_slope_per_rad: float = quantity("1/rad", gt=1.0, lt=7.0)
    profile_drag_coeff: float = quantity("-", gt=0.0, lt=0.1)
    thrust_coeff_max: float = quantity("-", gt=0.0, lt=0.05, doc="|C_T| clip (blade stall)")
    blade_flap_inertia_kg_m2: float = quantity("kg m^2", gt=0.0, doc="one blade about the hub")
    polar_inertia_kg_m2: float = quantity("kg m^2", gt=0.0, doc="rotor and drive about the shaft")
    hub_stiffness_nm_per_rad: float = quantity("N m/rad", ge=0.0, doc="flap spring K_beta")
    hub_height_m: float = quantity("m", ge=0.0, lt=2.0, doc="hub above the CG")
    nominal_speed_rpm: float = quantity("rpm", gt=100.0, lt=10000.0, doc="governed headspeed")
    cyclic_flap_gain: float = quantity("rad/rad", gt=0.0, lt=10.0, doc="steady TPP tilt per swash cyclic")
    flap_speed_gain: float = quantity("-", ge=0.0, lt=2.0, doc="K_mu, blow-back with airspeed")
    cross_coupling_deg: float = quantity("deg", ge=-45.0, le=45.0, default=0.0, doc="flap phase error")
    induced_power_factor: float = quantity("-", ge=1.0, lt=2.0, default=1.0, doc="kappa")
    rotation: str = quantity("-", choices=("cw", "ccw"), default="cw", doc="seen from above")
    ground_effect_min_height_ratio: float = quantity(
        "-", gt=0.25, lt=2.0, default=0.5, doc="hub height / R below which ground effect stops growing"
    )

    @property
    def direction(self) -> int:
        """+1 for a rotor turning clockwise seen from above (about body +z, down), else -1."""
        return 1 if self.rotation == "cw" else -1

    @property
    def nominal_speed_rad_s(self) -> float:
        return self.nominal_speed_rpm * 2.0 * math.pi / 60.0

    @property
    def solidity(self) -> float:
        return self.blade_count * self.chord_m / (math.pi * self.radius_m)

    @property
    def disc_area_m2(self) -> float:
        return math.pi * self.radius_m**2


@dataclass(frozen=True)
class TailRotor:
    """Tail rotor, driven from the main shaft, thrust along body y (anti-torque positive)."""

    radius_m: float = quantity("m", gt=0.01, lt=1.0)
    chord_m: float = quantity("m", gt=0.001, lt=0.2)
    blade_count: int = quantity("blades", ge=2, le=8)
    lift_slope_per_rad: float = quantity("1/rad", gt=1.0, lt=7.0)
    profile_drag_coeff: float = quantity("-", gt=0.0, lt=0.1)
    thrust_coeff_max: float = quantity("-", gt=0.0, lt=0.2)
    gear_ratio: float = quantity("tail rev / main rev", gt=1.0, lt=10.0)
    arm_m: float = quantity("m", gt=0.0, lt=5.0, doc="tail hub behind the CG")
    height_m: float = quantity("m", gt=-1.0, lt=1.0, doc="tail hub above the CG")
    pitch_offset_deg: float = quantity("deg", ge=-20.0, le=20.0, doc="pitch at tail servo centre")
    pitch_per_throw_deg: float = quantity("deg", gt=0.0, le=45.0, doc="pitch change at full servo throw")

    @property
    def solidity(self) -> float:
        return self.blade_count * self.chord_m / (math.pi * self.radius_m)

    @property
    def disc_area_m2(self) -> float:
        return math.pi * self.radius_m**2


@dataclass(frozen=True)
class Empennage:
    """Vertical fin (at the tail-rotor station) and horizontal stabiliser."""

    fin_area_m2: float = quantity("m^2", ge=0.0)
    fin_lift_slope_per_rad: float = quantity("1/rad", ge=0.0, lt=7.0)
    fin_wash_fraction: float = quantity("-", ge=0.0, le=1.0, doc="share of fin in tail-rotor wash")
    stabilizer_area_m2: float = quantity("m^2", ge=0.0)
    stabilizer_lift_slope_per_rad: float = quantity("1/rad", ge=0.0, lt=7.0)
    stabilizer_arm_m: float = quantity("m", ge=0.0, lt=5.0, doc="stabiliser behind the CG")


@dataclass(frozen=True)
class Fuselage:
    """Fuselage equivalent flat-plate drag areas along the body axes."""

    drag_area_x_m2: float = quantity("m^2", ge=0.0)
    drag_area_y_m2: float = quantity("m^2", ge=0.0)
    drag_area_z_m2: float = quantity("m^2", ge=0.0)


@dataclass(frozen=True)
class Drive:
    """What turns the rotor: a power-limited engine or a DC motor on a battery, via a one-way clutch."""

    kind: str = quantity("-", choices=("engine", "electric"))
    response_time_s: float = quantity("s", gt=0.0, lt=2.0, doc="throttle to torque lag")
    max_power_w: float = quantity("W", ge=0.0, default=0.0, doc="engine: shaft power at full throttle")
    battery_voltage_v: float = quantity("V", ge=0.0, default=0.0, doc="electric: pack voltage under load")
    motor_kv_rpm_per_v: float = quantity("rpm/V", ge=0.0, default=0.0)
    motor_resistance_ohm: float = quantity("ohm", ge=0.0, default=0.0, doc="winding + ESC + wiring")
    current_limit_a: float = quantity("A", ge=0.0, default=0.0, doc="ESC current limit")
    gear_ratio: float = quantity("motor rev / rotor rev", ge=0.0, default=0.0)

    def __post_init__(self) -> None:
        needed = (
            ("max_power_w",)
            if self.kind == "engine"
            else ("battery_voltage_v", "motor_kv_rpm_per_v", "motor_resistance_ohm", "current_limit_a", "gear_ratio")
        )
        for name in needed:
            if getattr(self, name) <= 0.0:
                value = getattr(self, name)
                raise ConfigError(f"{name} = {value!r}: expected > 0 for a drive of kind {self.kind!r}")


@dataclass(frozen=True)
class Servos:
    """Swashplate and tail servos: geometry, throw, lag and speed."""

    swash_type_deg: int = quantity("deg", choices=(120, 135, 140), doc="CCPM servo spacing")
    pitch_per_throw_deg: float = quantity("deg", gt=0.0, le=45.0, doc="blade pitch at full servo throw")
    time_constant_s: float = quantity("s", gt=0.0, lt=0.5, doc="first-order servo lag")
    max_rate_per_s: float = quantity("throw/s", gt=0.0, doc="slew limit, full throw = 1")


@dataclass(frozen=True)
class Contact:
    """Landing gear and crash limits: skid points, a tail skid, spring-damper and friction."""

    skid_front_x_m: float = quantity("m", doc="front skid contact ahead of the CG")
    skid_rear_x_m: float = quantity("m", doc="rear skid contact (negative: behind the CG)")
    skid_half_width_m: float = quantity("m", gt=0.0)
    skid_depth_m: float = quantity("m", gt=0.0, doc="skid bottom below the CG")
    tail_skid_x_m: float = quantity("m", lt=0.0, doc="tail skid (negative: behind the CG)")
    tail_skid_depth_m: float = quantity("m", doc="tail skid below the CG")
    static_deflection_m: float = quantity("m", gt=0.0, lt=0.1, doc="skid spring sag at rest")
    damping_ratio: float = quantity("-", gt=0.0, lt=3.0)
    friction_coeff: float = quantity("-", ge=0.0, lt=3.0)
    stiction_speed_m_s: float = quantity("m/s", gt=0.0, lt=1.0, doc="friction is viscous below this")
    hard_landing_speed_m_s: float = quantity("m/s", gt=0.0, doc="skid sink rate that breaks the gear")
    max_ground_tilt_deg: float = quantity("deg", gt=0.0, lt=180.0, doc="tilt on the ground that rolls over")


@dataclass(frozen=True)
class HeliParams:
    """One helicopter type: everything the flight model needs, units in the names."""

    name: str
    description: str
    mass: MassProperties
    main_rotor: MainRotor
    tail_rotor: TailRotor
    empennage: Empennage
    fuselage: Fuselage
    drive: Drive
    servos: Servos
    contact: Contact

    def __post_init__(self) -> None:
        if self.main_rotor.polar_inertia_kg_m2 >= self.mass.inertia_zz_kg_m2:
            raise ConfigError(
                f"main_rotor.polar_inertia_kg_m2 = {self.main_rotor.polar_inertia_kg_m2!r}: expected less than "
                f"mass.inertia_zz_kg_m2 = {self.mass.inertia_zz_kg_m2!r} (the yaw inertia includes the rotor)"
            )
