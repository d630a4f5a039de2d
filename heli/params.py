"""Helicopter parameters: frozen dataclasses whose field names carry their units.

Every field declares its unit, its valid range and the reason for the range in the field
metadata, which the configuration loader (``sim.config``) uses to validate TOML files and
command-line options and to word its errors.  The ranges are physically plausible for RC
helicopters, from a ~100 g micro to a ~25 kg large-scale turbine; the checks between fields
(``__post_init__``) refuse combinations that are not a helicopter (radius of gyration, solidity,
tip speed, rotor energy against drive power, ...), and ``step_rates_per_s`` gives the fastest
motions a physics step has to resolve.  The numbers themselves live in ``configs/*.toml`` with
their sources; this module holds no helicopter data.
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
    "quantity_metadata",
    "step_rates_per_s",
]


MAX_TEXT_CHARS = 4096  # PATH_MAX on Linux: the longest path a text value may carry


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
    why: str = "",
    max_chars: int = MAX_TEXT_CHARS,
    items: int | None = None,
    max_items: int | None = None,
    pattern: str | None = None,
    shape: str = "",
) -> Any:
    """A dataclass field with its unit, range and meaning recorded for the config loader.

    ``why`` says where the range comes from; the loader puts it in its error message and the
    reference.  ``max_chars`` caps a text value; ``items`` (exactly) and ``max_items`` (at most)
    count the entries of a list value; a text value must match the regular expression
    ``pattern`` in full, which ``shape`` describes in words ("hover, keyboard or script:FILE").
    """
    metadata = {
        "unit": unit,
        "gt": gt,
        "ge": ge,
        "lt": lt,
        "le": le,
        "choices": choices,
        "doc": doc,
        "why": why,
        "max_chars": max_chars,
        "items": items,
        "max_items": max_items,
        "pattern": pattern,
        "shape": shape,
    }
    return field(default=default, metadata=metadata)


def quantity_metadata(unit: str, **options: Any) -> dict[str, Any]:
    """The metadata of ``quantity(unit, **options)``, for a field written ``field(metadata=...)``.

    A type checker takes every ``quantity(...)`` for a field with a default, so a field without
    one that follows fields with defaults is declared with ``dataclasses.field`` and this.
    """
    return dict(quantity(unit, **options).metadata)


# Where the ranges come from (the loader quotes these in its errors and the reference lists them)
_RC_SCALE = "RC scale, from a ~100 g micro to a ~25 kg large-scale turbine helicopter"
_LIFT_SLOPE = "2 pi = 6.28 per rad is the thin-airfoil limit; real blades 5-6"
_SECTION_DRAG = "zero-lift section drag of RC blades, 0.008-0.02"
_INERTIA = "RC scale: ~5e-5 for a micro, ~3 for a large-scale turbine helicopter"
_DRAG_AREA = "equivalent flat plate: ~0.005 for a micro, ~0.5 for a large-scale helicopter"
_LIFT_SURFACE = "RC fins and stabilisers: ~0.002-0.05 m^2"
_TAIL_ARM = "RC tail booms reach ~0.1-1.5 m behind the CG"
_GEAR_POSITION = "RC landing gear lies within ~1 m of the CG"

# Checks between fields: limits of RC-scale rotors and of what the model represents
TIP_SPEED_RANGE_M_S = (30.0, 250.0)  # RC rotors ~50-200 m/s; beyond 250 m/s compressibility, not modelled
SOLIDITY_RANGE = (0.01, 0.25)  # blade area / disc area; RC rotors 0.03-0.1
MIN_ROTOR_ENERGY_TIME_S = 0.01  # rotor energy at headspeed / full drive power; RC 0.04 (micro) to ~0.5 s
MIN_ELECTRIC_GEAR_RATIO = 1.0  # direct drive; the motor never turns slower than the rotor
MIN_MOTOR_DAMPING_TIME_S = 0.005  # electric: how fast the motor's back EMF pulls the rotor to speed
MIN_FIN_CLEAR_FRACTION = 0.5  # the fin may block at most half of the tail rotor's wake
MIN_FUSELAGE_YAW_FRACTION = 0.1  # the fuselage alone keeps at least this share of the yaw inertia
MAX_RATE_STEP_PRODUCT = 0.5  # the physics step times the fastest rate it integrates (a stable margin)
MAX_AIRSPEED_M_S = 40.0  # the fastest RC helicopters fly ~35 m/s
FRICTION_STEP_ALLOWANCE = 4.0  # friction saturates (Coulomb above the stiction speed): it tolerates more
GYRATION_RANGE = (0.08, 0.8)  # radius of gyration / rotor radius: the mass spreads over part of the disc


@dataclass(frozen=True)
class Environment:
    """The air, wind and gravity the vehicles fly in."""

    air_density_kg_m3: float = quantity(
        "kg/m^3", ge=0.4, le=1.6, default=1.225, doc="ISA sea level",
        why="air from ~10 km altitude (0.41) to cold sea level (1.5)",
    )  # fmt: skip
    gravity_m_s2: float = quantity(
        "m/s^2", ge=1.0, le=25.0, default=9.80665, doc="standard gravity",
        why="from the Moon's 1.6 to Jupiter's 24.8; Earth 9.81",
    )  # fmt: skip
    wind_north_m_s: float = quantity(
        "m/s", ge=-50.0, le=50.0, default=0.0, doc="steady wind towards north",
        why="storm force; RC helicopters fly in up to ~15 m/s",
    )  # fmt: skip
    wind_east_m_s: float = quantity(
        "m/s", ge=-50.0, le=50.0, default=0.0, doc="steady wind towards east",
        why="storm force; RC helicopters fly in up to ~15 m/s",
    )  # fmt: skip
    wind_down_m_s: float = quantity(
        "m/s", ge=-20.0, le=20.0, default=0.0, doc="steady wind downwards",
        why="the strongest thermals and downdrafts",
    )  # fmt: skip
    turbulence: str = quantity(
        "-", choices=("none", "light", "moderate", "severe", "wind"), default="none",
        doc="Dryden turbulence, MIL-F-8785C low altitude: as for a wind at 20 ft of 15 / 30 / 45 kt, or (wind) "
        "of the steady wind's own speed",
    )  # fmt: skip
    turbulence_seed: int = quantity(
        "-", ge=0, le=2**63 - 1, default=0, doc="the same seed, the same air (every vehicle its own eddies)",
        why="a numpy PCG64 seed",
    )  # fmt: skip
    wind_shear: bool = quantity(
        "-", default=False, doc="the steady wind is the wind at 20 ft (6.1 m), less below, more above (log profile)",
        why="on or off: MIL-F-8785C's logarithmic profile near the ground",
    )  # fmt: skip
    surface_roughness_m: float = quantity(
        "m", ge=0.001, le=2.0, default=0.046, doc="z0 of the shear profile (MIL-F-8785C: 0.15 ft)",
        why="from smooth ground (~0.001 m) to a town (~2 m)",
    )  # fmt: skip

    @property
    def moves_the_air(self) -> bool:
        """Whether the air is more than the steady wind (turbulence or shear)."""
        return self.turbulence != "none" or self.wind_shear


@dataclass(frozen=True)
class MassProperties:
    """Whole-vehicle mass and principal inertias (rotor included, as a rigid part)."""

    mass_kg: float = quantity("kg", ge=0.05, le=30.0, doc="flying mass", why=_RC_SCALE)
    inertia_xx_kg_m2: float = quantity("kg m^2", ge=1e-5, le=10.0, doc="roll inertia about the CG", why=_INERTIA)
    inertia_yy_kg_m2: float = quantity("kg m^2", ge=1e-5, le=10.0, doc="pitch inertia about the CG", why=_INERTIA)
    inertia_zz_kg_m2: float = quantity("kg m^2", ge=1e-5, le=10.0, doc="yaw inertia about the CG", why=_INERTIA)


@dataclass(frozen=True)
class MainRotor:
    """Main rotor: blade-element thrust, momentum inflow, first-order flapping, torque."""

    radius_m: float = quantity("m", ge=0.05, le=1.5, why="RC scale: ~0.1 m (micro) to ~1.3 m (large-scale)")
    chord_m: float = quantity("m", ge=0.004, le=0.15, why="RC blades: ~8 mm (micro) to ~0.1 m (large-scale)")
    blade_count: int = quantity("blades", ge=2, le=8, why="RC heads have 2 to 5 blades, scale heads up to 8")
    lift_slope_per_rad: float = quantity("1/rad", ge=2.0, le=6.5, why=_LIFT_SLOPE)
    profile_drag_coeff: float = quantity(
        "-", ge=0.004, le=0.05, doc="section C_d at zero lift, C_d0", why=_SECTION_DRAG
    )
    thrust_coeff_max: float = quantity(
        "-", ge=0.001, le=0.05, doc="|C_T| stall limit, sigma C_L,max / 6, approached smoothly",
        why="blade stall at a mean lift coefficient of ~0.7-1.0: C_T about 0.12-0.15 x solidity",
    )  # fmt: skip
    blade_flap_inertia_kg_m2: float = quantity(
        "kg m^2", ge=2e-6, le=1.0, doc="one blade about the hub",
        why="m R^2 / 3 of one blade: ~1e-5 (micro) to ~0.2 (large-scale)",
    )  # fmt: skip
    polar_inertia_kg_m2: float = quantity(
        "kg m^2", ge=5e-6, le=2.0, doc="rotor and drive about the shaft",
        why="RC-scale rotor polar inertia: ~2e-5 (micro) to ~0.5 (large-scale)",
    )  # fmt: skip
    hub_stiffness_nm_per_rad: float = quantity(
        "N m/rad", ge=0.0, le=1000.0, doc="flap spring K_beta",
        why="0 (teetering) to ~300 for a stiff large-scale head",
    )  # fmt: skip
    hub_height_m: float = quantity("m", ge=0.0, le=0.6, doc="hub above the CG", why="RC scale: ~0.05-0.4 m")
    nominal_speed_rpm: float = quantity(
        "rpm", ge=500.0, le=8000.0, doc="governed headspeed",
        why="RC headspeeds: ~1100 (large-scale) to ~4500 rpm (micro)",
    )  # fmt: skip
    cyclic_flap_gain: float = quantity(
        "rad/rad", ge=0.2, le=5.0, doc="steady TPP tilt per swash cyclic", why="1 flybarless, ~4 with a flybar"
    )
    flap_speed_gain: float = quantity("-", ge=0.0, le=1.0, doc="K_mu, blow-back with airspeed", why="about 0.2")
    cross_coupling_deg: float = quantity(
        "deg", ge=-45.0, le=45.0, default=0.0, doc="flap phase error", why="a few degrees on RC heads"
    )
    induced_power_factor: float = quantity(
        "-", ge=1.0, le=1.5, default=1.0, doc="kappa", why="1 is ideal momentum theory; real rotors ~1.15"
    )
    rotation: str = quantity("-", choices=("cw", "ccw"), default="cw", doc="seen from above")
    ground_effect_min_height_ratio: float = quantity(
        "-", ge=0.3, le=2.0, default=0.5, doc="hub height / R below which ground effect stops growing",
        why="Cheeseman-Bennett's ground effect is infinite at 0.25",
    )  # fmt: skip
    profile_drag_quadratic_per_rad2: float = quantity(
        "1/rad^2", ge=0.0, le=3.0, default=0.0, doc="C_d2 of the polar C_d = C_d0 + C_d2 alpha^2",
        why="symmetric sections below stall: ~0.3-0.6 at RC Reynolds numbers (0: constant profile drag)",
    )  # fmt: skip
    stall_drag_per_rad2: float = quantity(
        "1/rad^2", ge=0.0, le=100.0, default=0.0, doc="drag rise with the square of the angle past the stall knee",
        why="sections past stall: C_d rises ~0.1-0.15 over the first 0.1 rad (about 10-15 per rad^2)",
    )  # fmt: skip

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

    @property
    def tip_speed_m_s(self) -> float:
        return self.nominal_speed_rad_s * self.radius_m

    def __post_init__(self) -> None:
        low, high = SOLIDITY_RANGE
        if not low <= self.solidity <= high:
            raise ConfigError(
                f"main_rotor: solidity blade_count x chord_m / (pi radius_m) = {self.solidity:.3g}: expected "
                f"{low:g} to {high:g} (blade area / disc area; RC rotors 0.03-0.1)"
            )
        low, high = TIP_SPEED_RANGE_M_S
        if not low <= self.tip_speed_m_s <= high:
            raise ConfigError(
                f"main_rotor: tip speed nominal_speed_rpm x radius_m = {self.tip_speed_m_s:.4g} m/s: expected "
                f"{low:g} to {high:g} m/s (RC rotors ~50-200 m/s; faster tips meet compressibility, not modelled)"
            )


@dataclass(frozen=True)
class TailRotor:
    """Tail rotor, driven from the main shaft, thrust along body y (anti-torque positive)."""

    radius_m: float = quantity("m", ge=0.015, le=0.3, why="RC tails: ~0.03 m (micro) to ~0.2 m (large-scale)")
    chord_m: float = quantity("m", ge=0.002, le=0.08, why="RC tail blades: ~5 mm to ~50 mm")
    blade_count: int = quantity("blades", ge=2, le=8, why="RC tails have 2 to 4 blades, scale tails up to 8")
    lift_slope_per_rad: float = quantity("1/rad", ge=2.0, le=6.5, why=_LIFT_SLOPE)
    profile_drag_coeff: float = quantity("-", ge=0.004, le=0.05, why=_SECTION_DRAG)
    thrust_coeff_max: float = quantity("-", ge=0.005, le=0.2, why="blade stall of a high-solidity tail rotor")
    gear_ratio: float = quantity("tail rev / main rev", ge=1.5, le=10.0, why="RC tail drives: 3.5-5.5")
    arm_m: float = quantity("m", ge=0.05, le=2.5, doc="tail hub behind the CG", why=_TAIL_ARM)
    height_m: float = quantity("m", ge=-0.5, le=0.5, doc="tail hub above the CG", why="RC scale: within ~0.2 m")
    pitch_offset_deg: float = quantity(
        "deg", ge=-20.0, le=20.0, doc="pitch at tail servo centre", why="a few degrees against the torque"
    )
    pitch_per_throw_deg: float = quantity(
        "deg", ge=5.0, le=45.0, doc="pitch change at full servo throw", why="RC tails reach +-25-35 deg"
    )

    @property
    def solidity(self) -> float:
        return self.blade_count * self.chord_m / (math.pi * self.radius_m)

    @property
    def disc_area_m2(self) -> float:
        return math.pi * self.radius_m**2

    def __post_init__(self) -> None:
        low, high = SOLIDITY_RANGE[0], 2.0 * SOLIDITY_RANGE[1]
        if not low <= self.solidity <= high:
            raise ConfigError(
                f"tail_rotor: solidity blade_count x chord_m / (pi radius_m) = {self.solidity:.3g}: expected "
                f"{low:g} to {high:g} (blade area / disc area; RC tail rotors 0.05-0.2)"
            )


@dataclass(frozen=True)
class Empennage:
    """Vertical fin (at the tail-rotor station) and horizontal stabiliser."""

    fin_area_m2: float = quantity("m^2", ge=0.0, le=0.2, why=_LIFT_SURFACE)
    fin_lift_slope_per_rad: float = quantity("1/rad", ge=0.0, le=6.5, why=_LIFT_SLOPE)
    fin_wash_fraction: float = quantity(
        "-", ge=0.0, le=1.0, doc="share of fin in tail-rotor wash", why="a share, 0 to 1"
    )
    stabilizer_area_m2: float = quantity("m^2", ge=0.0, le=0.2, why=_LIFT_SURFACE)
    stabilizer_lift_slope_per_rad: float = quantity("1/rad", ge=0.0, le=6.5, why=_LIFT_SLOPE)
    stabilizer_arm_m: float = quantity("m", ge=0.0, le=2.5, doc="stabiliser behind the CG", why=_TAIL_ARM)


@dataclass(frozen=True)
class Fuselage:
    """Fuselage equivalent flat-plate drag areas along the body axes."""

    drag_area_x_m2: float = quantity("m^2", ge=0.0, le=1.0, why=_DRAG_AREA)
    drag_area_y_m2: float = quantity("m^2", ge=0.0, le=1.0, why=_DRAG_AREA)
    drag_area_z_m2: float = quantity("m^2", ge=0.0, le=1.0, why=_DRAG_AREA)


@dataclass(frozen=True)
class Drive:
    """What turns the rotor: a power-limited engine or a DC motor on a battery, via a one-way clutch."""

    kind: str = quantity("-", choices=("engine", "electric"))
    response_time_s: float = quantity(
        "s", ge=0.005, le=2.0, doc="throttle to torque lag", why="ESCs ~0.05 s, engines ~0.1-0.3 s"
    )
    max_power_w: float = quantity(
        "W", ge=0.0, le=20000.0, default=0.0, doc="engine: shaft power at full throttle",
        why="~300 W (.15 nitro) to ~10 kW (large turbine)",
    )  # fmt: skip
    battery_voltage_v: float = quantity(
        "V", ge=0.0, le=100.0, default=0.0, doc="electric: pack voltage under load", why="1S (3.7 V) to 14S HV (60 V)"
    )
    motor_kv_rpm_per_v: float = quantity(
        "rpm/V", ge=0.0, le=20000.0, default=0.0, why="~500 (700 class) to ~15000 (micro)"
    )
    motor_resistance_ohm: float = quantity(
        "ohm", ge=0.0, le=5.0, default=0.0, doc="winding + ESC + wiring", why="~0.01-0.5 ohm"
    )
    current_limit_a: float = quantity(
        "A", ge=0.0, le=500.0, default=0.0, doc="ESC current limit", why="~5 A (micro) to ~300 A ESCs"
    )
    gear_ratio: float = quantity("motor rev / rotor rev", ge=0.0, le=30.0, default=0.0, why="RC: ~5-20")

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
        if self.kind == "electric" and self.gear_ratio < MIN_ELECTRIC_GEAR_RATIO:
            raise ConfigError(
                f"gear_ratio = {self.gear_ratio!r}: expected at least {MIN_ELECTRIC_GEAR_RATIO:g} for an electric "
                "drive (a motor never turns slower than the rotor it drives; RC: ~5-20)"
            )

    @property
    def full_power_w(self) -> float:
        """Shaft power at full throttle: the engine's, or the battery's at the ESC's current limit."""
        return self.max_power_w if self.kind == "engine" else self.battery_voltage_v * self.current_limit_a

    @property
    def no_load_rotor_rpm(self) -> float:
        """Electric: the headspeed the motor reaches unloaded at full throttle; engine: unlimited."""
        if self.kind == "engine":
            return math.inf
        return self.battery_voltage_v * self.motor_kv_rpm_per_v / self.gear_ratio


@dataclass(frozen=True)
class Servos:
    """Swashplate and tail servos: geometry, throw, lag and speed."""

    swash_type_deg: int = quantity("deg", choices=(120, 135, 140), doc="CCPM servo spacing")
    pitch_per_throw_deg: float = quantity(
        "deg", ge=2.0, le=45.0, doc="blade pitch at full servo throw", why="RC heads ~12-20 deg"
    )
    time_constant_s: float = quantity(
        "s", ge=0.002, le=0.5, doc="first-order servo lag", why="digital servos ~0.01-0.05 s"
    )
    max_rate_per_s: float = quantity(
        "throw/s", ge=0.5, le=100.0, doc="slew limit, full throw = 1", why="RC servos ~5-20 full throws a second"
    )


@dataclass(frozen=True)
class Contact:
    """Landing gear and crash limits: skid points, a tail skid, spring-damper and friction."""

    skid_front_x_m: float = quantity("m", ge=-1.5, le=1.5, doc="front skid contact ahead of the CG", why=_GEAR_POSITION)
    skid_rear_x_m: float = quantity(
        "m", ge=-1.5, le=1.5, doc="rear skid contact (negative: behind the CG)", why=_GEAR_POSITION
    )
    skid_half_width_m: float = quantity("m", ge=0.01, le=1.0, why=_GEAR_POSITION)
    skid_depth_m: float = quantity("m", ge=0.01, le=1.0, doc="skid bottom below the CG", why=_GEAR_POSITION)
    tail_skid_x_m: float = quantity("m", ge=-3.0, lt=0.0, doc="tail skid (negative: behind the CG)", why=_TAIL_ARM)
    tail_skid_depth_m: float = quantity("m", ge=-1.0, le=1.0, doc="tail skid below the CG", why=_GEAR_POSITION)
    static_deflection_m: float = quantity(
        "m", ge=0.0005, le=0.1, doc="skid spring sag at rest", why="RC landing gear sags ~2-20 mm"
    )
    damping_ratio: float = quantity("-", ge=0.05, le=3.0, why="0.5-1 is a well damped gear")
    friction_coeff: float = quantity("-", ge=0.0, le=2.0, why="skids on grass or concrete, ~0.3-1")
    stiction_speed_m_s: float = quantity(
        "m/s", ge=0.001, le=1.0, doc="friction is viscous below this", why="a regularisation, ~0.02 m/s"
    )
    hard_landing_speed_m_s: float = quantity(
        "m/s", ge=0.1, le=20.0, doc="skid sink rate that breaks the gear", why="RC gear breaks at ~2-3 m/s"
    )
    max_ground_tilt_deg: float = quantity(
        "deg", ge=10.0, le=170.0, doc="tilt on the ground that rolls over", why="RC gear rolls over at ~40-60 deg"
    )

    def __post_init__(self) -> None:
        if not self.skid_front_x_m > self.skid_rear_x_m:
            raise ConfigError(
                f"contact: skid_front_x_m = {self.skid_front_x_m!r}: expected ahead of (more than) "
                f"skid_rear_x_m = {self.skid_rear_x_m!r}"
            )


@dataclass(frozen=True)
class HeliParams:
    """One helicopter type: everything the flight model needs, units in the names."""

    name: str = field(metadata=quantity_metadata("-", max_chars=64, doc="shown in the view, the summary and logs"))
    description: str = field(
        metadata=quantity_metadata("-", max_chars=500, doc="one line about the helicopter and its sources")
    )
    mass: MassProperties
    main_rotor: MainRotor
    tail_rotor: TailRotor
    empennage: Empennage
    fuselage: Fuselage
    drive: Drive
    servos: Servos
    contact: Contact

    def __post_init__(self) -> None:
        for check in (self._check_gyration, self._check_yaw_inertia, self._check_drive, self._check_fin):
            check()

    def _check_gyration(self) -> None:
        low, high = GYRATION_RANGE
        radius = self.main_rotor.radius_m
        for axis in ("xx", "yy", "zz"):
            inertia = getattr(self.mass, f"inertia_{axis}_kg_m2")
            ratio = math.sqrt(inertia / self.mass.mass_kg) / radius
            if not low <= ratio <= high:
                raise ConfigError(
                    f"mass.inertia_{axis}_kg_m2 = {inertia!r}: radius of gyration sqrt(inertia / mass_kg) = "
                    f"{ratio:.2g} x main_rotor.radius_m; expected {low:g} to {high:g} (RC helicopters: 0.15-0.3)"
                )

    def _check_yaw_inertia(self) -> None:
        polar, yaw = self.main_rotor.polar_inertia_kg_m2, self.mass.inertia_zz_kg_m2
        if polar > (1.0 - MIN_FUSELAGE_YAW_FRACTION) * yaw:
            raise ConfigError(
                f"main_rotor.polar_inertia_kg_m2 = {polar!r}: expected less than "
                f"{1.0 - MIN_FUSELAGE_YAW_FRACTION:g} x mass.inertia_zz_kg_m2 = {yaw!r} "
                "(the yaw inertia includes the rotor, and the fuselage has its own)"
            )

    def _check_drive(self) -> None:
        rotor, drive = self.main_rotor, self.drive
        if drive.no_load_rotor_rpm < rotor.nominal_speed_rpm:
            raise ConfigError(
                f"drive: battery_voltage_v x motor_kv_rpm_per_v / gear_ratio = {drive.no_load_rotor_rpm:.4g} rpm: "
                f"expected at least main_rotor.nominal_speed_rpm = {rotor.nominal_speed_rpm:g} "
                "(the motor cannot turn the rotor at its headspeed)"
            )
        energy_time_s = 0.5 * rotor.polar_inertia_kg_m2 * rotor.nominal_speed_rad_s**2 / drive.full_power_w
        if energy_time_s < MIN_ROTOR_ENERGY_TIME_S:
            raise ConfigError(
                f"main_rotor.polar_inertia_kg_m2 = {rotor.polar_inertia_kg_m2!r}: the rotor's energy at headspeed is "
                f"{energy_time_s:.2g} s of full drive power ({drive.full_power_w:.4g} W); expected at least "
                f"{MIN_ROTOR_ENERGY_TIME_S:g} s (RC rotors: ~0.04-0.5 s)"
            )
        if drive.kind == "electric":
            kv_rad = drive.motor_kv_rpm_per_v * 2.0 * math.pi / 60.0
            damping_time_s = rotor.polar_inertia_kg_m2 * kv_rad**2 * drive.motor_resistance_ohm / drive.gear_ratio**2
            if damping_time_s < MIN_MOTOR_DAMPING_TIME_S:
                raise ConfigError(
                    f"drive: back-EMF time constant I_rotor kv^2 R / gear_ratio^2 = {damping_time_s:.2g} s: expected "
                    f"at least {MIN_MOTOR_DAMPING_TIME_S:g} s (RC drives: ~0.05-0.2 s)"
                )

    def _check_fin(self) -> None:
        tail = self.tail_rotor
        blocked = 0.75 * self.empennage.fin_area_m2 / (4.0 * math.pi * tail.radius_m**2)
        if blocked > 1.0 - MIN_FIN_CLEAR_FRACTION:
            raise ConfigError(
                f"empennage.fin_area_m2 = {self.empennage.fin_area_m2!r}: blocks {blocked:.0%} of the tail rotor's "
                f"wake (tail_rotor.radius_m = {tail.radius_m!r}); expected at most "
                f"{1.0 - MIN_FIN_CLEAR_FRACTION:.0%}"
            )


def step_rates_per_s(params: HeliParams, env: Environment | None = None) -> dict[str, float]:
    """The fastest motions of a helicopter, in 1/s: what a fixed physics step has to resolve.

    Estimates, for the integrator's stability rather than for flight dynamics: the landing gear
    (heave, roll and pitch on the skid springs, times ``1 + 2 zeta`` for the damper), the hub's
    flap spring against the body's inertia (its frequency and its damping rate), the rotor speed
    under full drive power, the skids' regularised (viscous) friction, and the aerodynamic damping
    of the tail rotor (yaw) and of the fin and stabiliser at the fastest forward flight.
    """
    env = env or Environment()
    gravity = env.gravity_m_s2
    contact, mass, rotor = params.contact, params.mass, params.main_rotor
    heave = math.sqrt(gravity / contact.static_deflection_m)
    damper = 1.0 + 2.0 * contact.damping_ratio
    gyration = {axis: math.sqrt(getattr(mass, f"inertia_{axis}_kg_m2") / mass.mass_kg) for axis in ("xx", "yy")}
    roll_arm = math.hypot(contact.skid_half_width_m, contact.skid_depth_m)
    pitch_arm = math.hypot(max(abs(contact.skid_front_x_m), abs(contact.skid_rear_x_m)), contact.skid_depth_m)
    lock = env.air_density_kg_m3 * rotor.lift_slope_per_rad * rotor.chord_m * rotor.radius_m**4
    flap_time_s = 16.0 * rotor.blade_flap_inertia_kg_m2 / (lock * rotor.nominal_speed_rad_s)
    hub = rotor.hub_stiffness_nm_per_rad + mass.mass_kg * gravity * rotor.hub_height_m
    body = min(mass.inertia_xx_kg_m2, mass.inertia_yy_kg_m2)
    tail, emp = params.tail_rotor, params.empennage
    yaw_inertia = mass.inertia_zz_kg_m2 - rotor.polar_inertia_kg_m2  # the fuselage's own
    tail_tip_speed = rotor.nominal_speed_rad_s * tail.gear_ratio * tail.radius_m
    # thrust per unit of inflow velocity, d T / d v = (a sigma / 4) rho A (Omega R), at the tail's arm
    tail_damping = 0.25 * tail.lift_slope_per_rad * tail.solidity * env.air_density_kg_m3 * tail.disc_area_m2
    tail_damping *= tail_tip_speed * tail.arm_m**2
    # lift per unit of normal velocity at the fastest forward flight, 1/2 rho S a V, at the surface's arm
    surface = 0.5 * env.air_density_kg_m3 * MAX_AIRSPEED_M_S
    fin = surface * emp.fin_area_m2 * emp.fin_lift_slope_per_rad * tail.arm_m**2 / yaw_inertia
    stabiliser = surface * emp.stabilizer_area_m2 * emp.stabilizer_lift_slope_per_rad * emp.stabilizer_arm_m**2
    return {
        "tail rotor": tail_damping / yaw_inertia,
        "tail surfaces": max(fin, stabiliser / mass.inertia_yy_kg_m2),
        "landing gear": heave * damper * max(1.0, roll_arm / gyration["xx"], pitch_arm / gyration["yy"]),
        "hub spring": max(math.sqrt(hub / body), hub * flap_time_s / body),
        "rotor speed": params.drive.full_power_w / (0.5 * rotor.polar_inertia_kg_m2 * rotor.nominal_speed_rad_s**2),
        "skid friction": contact.friction_coeff * gravity / contact.stiction_speed_m_s / FRICTION_STEP_ALLOWANCE,
    }
