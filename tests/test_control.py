"""The flight controller on the flight model: rate steps, closed-loop hover with a pilot,
take-off, failsafe, rescue, governor, mixer, precompensation; each helicopter at 500 Hz and 1 kHz."""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np
import pytest

from heli.control import CONTROL_TERMS, ControllerConstants, ControllerState, PilotInput, control, control_with_terms
from heli.dynamics import SCALAR_BATCH_LIMIT, step
from heli.initial import ground_state, hover_state
from heli.margins import loop_margins
from heli.mixer import SwashGeometry, mix, servo_azimuths_deg, unmix
from heli.ops import ARRAY, SCALAR
from heli.state import StateIndex, VehicleState
from heli.trim import quaternion_from_euler
from sim.config import FlightConfig, apply_overrides
from sim.flight import Flight
from tests.conftest import HELIS, heli

RATES_HZ = (500, 1000)


class Bench:
    """One helicopter flying its trimmed hover under its controller, stepped by hand."""

    def __init__(self, name: str, loop_hz: float = 500, altitude_m: float = 30.0, params=None):
        self.h = heli(name)
        m, t = self.h.model, self.h.trim
        self.params = params or self.h.config.controller
        self.k = ControllerConstants.build(self.params, m, math.radians(t.collective_deg))
        self.vehicles = hover_state(m, t, 1, altitude_m)
        self.controller = ControllerState.in_hover(
            self.k, 1, math.radians(t.lateral_cyclic_deg), math.radians(t.longitudinal_cyclic_deg),
            math.radians(t.tail_pitch_deg), math.radians(t.collective_deg), t.throttle,
        )  # fmt: skip
        self.dt = 1.0 / loop_hz
        self.substeps = round(self.dt / 0.001)
        self.t = 0.0
        self.hover_collective_stick = t.collective_deg / self.params.collective_max_deg

    def pilot(self, *, mode: float = 0.0, arm: float = 1.0, valid: float = 1.0, **sticks: float) -> np.ndarray:
        row = [sticks.get("roll", 0.0), sticks.get("pitch", 0.0), sticks.get("yaw", 0.0),
               sticks.get("collective", self.hover_collective_stick), arm, mode, valid]  # fmt: skip
        return np.array([row])

    def fly(self, seconds: float, pilot: np.ndarray, record=None) -> list:
        out = []
        for _ in range(round(seconds / self.dt)):
            self.controller, command = control(self.k, self.controller, PilotInput(pilot), self.vehicles, self.dt)
            for _ in range(self.substeps):
                self.vehicles = step(self.h.model, self.vehicles, command, self.dt / self.substeps)
            self.t += self.dt
            if record is not None:
                out.append(record(self))
        return out


def stick_rate(params, stick: float, axis: int) -> float:
    """The rate (rad/s) the stick curve gives at ``stick`` (the controller's expo)."""
    curve = stick * ((1.0 - params.rate_expo) + params.rate_expo * stick * stick)
    limit = params.yaw_rate_max_deg_s if axis == 2 else params.roll_pitch_rate_max_deg_s
    return math.radians(curve * limit) * (-1.0 if axis == 1 else 1.0)  # pitch stick forward: nose down


@pytest.mark.parametrize("loop_hz", RATES_HZ)
@pytest.mark.parametrize("name", HELIS)
@pytest.mark.parametrize("axis", [0, 1, 2], ids=["roll", "pitch", "yaw"])
def test_rate_step_settles_without_oscillation(name, axis, loop_hz):
    bench = Bench(name, loop_hz)
    bench.fly(0.1, bench.pilot())
    stick = {0: "roll", 1: "pitch", 2: "yaw"}[axis]
    rates = np.array(bench.fly(0.6, bench.pilot(**{stick: 0.4}), lambda b: b.vehicles.body_rates_rad_s[0, axis]))
    target = stick_rate(bench.params, 0.4, axis)
    response = rates / target
    time = np.arange(1, len(rates) + 1) * bench.dt
    assert response.max() < 1.15, "overshoot"
    assert np.all(np.abs(response[time >= 0.35] - 1.0) < 0.1), "not settled within 0.35 s"
    late_error = response[time >= 0.25] - 1.0
    crossings = np.count_nonzero(np.diff(np.sign(late_error[np.abs(late_error) > 0.02])))
    assert crossings <= 1, "oscillates about the setpoint"


def hover_flight(name: str, loop_hz: float, wind_m_s: float = 0.0) -> Flight:
    config = apply_overrides(FlightConfig(), heli=name, start="hover", loop_hz=loop_hz)
    config = replace(config, environment=replace(config.environment, wind_east_m_s=wind_m_s, wind_north_m_s=-wind_m_s))
    return Flight(heli(name).config, config)


def fly_flight(flight: Flight, seconds: float, loop_hz: float, watch=None) -> None:
    substeps = round(1.0 / loop_hz / flight.physics_dt_s)
    for _ in range(round(seconds * loop_hz)):
        flight.run_controller(flight.pilot_frames(), True, 1.0 / loop_hz)
        flight.advance(substeps)
        if watch is not None:
            watch(flight)


@pytest.mark.slow
@pytest.mark.parametrize("loop_hz", RATES_HZ)
@pytest.mark.parametrize("name", HELIS)
def test_pilot_holds_a_hover_for_30_s_within_half_a_metre(name, loop_hz):
    # a 1.4 m/s gust from the north-east at t = 0 and a kick in all three rates
    flight = hover_flight(name, loop_hz, wind_m_s=1.0)
    flight.vehicles = flight.vehicles.replace_columns(StateIndex.RATES, [0.3, -0.2, 0.2])
    start = flight.vehicles.position_ned_m[0].copy()
    worst = [0.0]

    def watch(f: Flight) -> None:
        worst[0] = max(worst[0], float(np.linalg.norm(f.vehicles.position_ned_m[0] - start)))

    fly_flight(flight, 30.0, loop_hz, watch)
    assert not flight.vehicles.crashed[0]
    assert worst[0] < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", HELIS)
def test_hover_pilot_takes_off_to_five_metres(name):
    config = apply_overrides(FlightConfig(), heli=name)
    flight = Flight(heli(name).config, config)
    ground = flight.vehicles.altitude_m[0]
    fly_flight(flight, 25.0, 500)
    v = flight.vehicles
    assert not v.crashed[0]
    assert v.altitude_m[0] - ground == pytest.approx(5.0, abs=0.3)
    assert np.linalg.norm(v.position_ned_m[0, :2]) < 0.5
    assert v.rotor_speed_rad_s[0] == pytest.approx(heli(name).model.nominal_speed, rel=0.02)


def test_angle_mode_holds_the_commanded_bank():
    bench = Bench("xcell60")
    bench.fly(3.0, bench.pilot(mode=1.0, roll=0.2))
    roll = bench.vehicles.euler_deg()[0, 0]
    assert roll == pytest.approx(bench.params.level_trim_roll_deg + 0.2 * bench.params.max_angle_deg, abs=1.0)


def test_failsafe_levels_descends_lands_and_cuts_the_motor():
    bench = Bench("trex450", altitude_m=3.0)
    bench.vehicles = bench.vehicles.replace_columns(
        StateIndex.ATTITUDE, quaternion_from_euler(math.radians(25.0), math.radians(-15.0), 0.0)
    )
    stale = bench.pilot(mode=0.0, roll=0.6, valid=0.0)  # the last frame had the stick hard over
    log = bench.fly(12.0, stale, lambda b: (b.t, b.vehicles.euler_deg()[0], b.vehicles.velocity_ned_m_s[0, 2],
                                            int(b.controller.flight_mode[0]), b.vehicles.throttle[0]))  # fmt: skip
    params = bench.params
    after_level = [row for row in log if params.failsafe_level_s - 0.1 < row[0] < params.failsafe_level_s]
    level = params.level_trim_roll_deg
    assert all(abs(row[1][0] - level) < 3.0 and abs(row[1][1]) < 3.0 for row in after_level), "not level"
    sinking = [row[2] for row in log if row[3] == 4 and row[0] > params.failsafe_level_s + 1.0]
    assert sinking and np.median(sinking) == pytest.approx(params.failsafe_descent_m_s, abs=0.25)
    assert log[-1][3] == 5  # landed
    assert log[-1][4] < 0.05  # motor off
    assert not bench.vehicles.crashed[0]
    assert bench.vehicles.altitude_m[0] < heli("trex450").config.params.contact.skid_depth_m + 0.02


def test_valid_input_hands_control_back_after_a_failsafe():
    bench = Bench("xcell60")
    bench.fly(0.5, bench.pilot(valid=0.0))
    assert int(bench.controller.flight_mode[0]) == 3
    bench.fly(0.1, bench.pilot(mode=1.0))
    assert int(bench.controller.flight_mode[0]) == 1
    assert not bool(bench.controller.failsafe_active[0])


def test_rescue_rights_an_inverted_helicopter_and_climbs():
    bench = Bench("trex700", altitude_m=40.0)
    bench.vehicles = bench.vehicles.replace_columns(StateIndex.ATTITUDE, quaternion_from_euler(math.pi, 0.1, 0.0))
    bench.fly(2.5, bench.pilot(mode=2.0))
    roll, pitch, _ = bench.vehicles.euler_deg()[0]
    assert abs(roll - bench.params.level_trim_roll_deg) < 5.0 and abs(pitch) < 5.0
    assert -bench.vehicles.velocity_ned_m_s[0, 2] > 0.5  # climbing
    assert not bench.vehicles.crashed[0]


def test_throttle_hold_cuts_the_motor_but_keeps_the_rotor_controlled():
    bench = Bench("xcell60", altitude_m=200.0)
    bench.fly(1.0, bench.pilot(arm=0.0, mode=1.0))
    assert bench.vehicles.throttle[0] < 0.01
    assert int(bench.controller.governor_state[0]) == 0
    roll, pitch, _ = bench.vehicles.euler_deg()[0]
    assert abs(roll) < 10.0 and abs(pitch) < 10.0  # still level: the controller flies on


@pytest.mark.parametrize("name", HELIS)
def test_governor_spools_up_without_overshoot(name):
    h = heli(name)
    m = h.model
    k = ControllerConstants.build(h.config.controller, m, math.radians(h.trim.collective_deg))
    vehicles, controller = ground_state(m, 1), ControllerState.initial(1)
    pilot = PilotInput(np.array([[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]))
    speeds = []
    for _ in range(round((h.config.controller.spoolup_time_s + 3.0) / 0.002)):
        controller, command = control(k, controller, pilot, vehicles, 0.002)
        vehicles = step(m, step(m, vehicles, command, 0.001), command, 0.001)
        speeds.append(vehicles.rotor_speed_rad_s[0])
    speeds = np.array(speeds) / m.nominal_speed
    assert speeds.max() < 1.03
    assert speeds[-1] == pytest.approx(1.0, abs=0.01)
    assert int(controller.governor_state[0]) == 2
    assert not vehicles.crashed[0]


def test_controller_paths_agree():
    bench = Bench("trex450")
    count = 30
    vehicles = VehicleState(np.repeat(bench.vehicles.packed, count, axis=0))
    rng = np.random.default_rng(3)
    packed = vehicles.packed.copy()
    packed[:, StateIndex.RATES] += rng.normal(0.0, 0.5, (count, 3))
    vehicles = VehicleState(packed)
    controller = ControllerState(np.repeat(bench.controller.packed, count, axis=0))
    pilots = PilotInput(np.repeat(bench.pilot(roll=0.3, yaw=-0.2, mode=1.0), count, axis=0))
    batch_state, batch_cmd = control(bench.k, controller, pilots, vehicles, 0.002)
    for i in (0, 7, 29):
        one_state, one_cmd = control(
            bench.k, ControllerState(controller.packed[i : i + 1]), PilotInput(pilots.packed[i : i + 1]),
            VehicleState(vehicles.packed[i : i + 1].copy()), 0.002,
        )  # fmt: skip
        np.testing.assert_allclose(batch_cmd.packed[i], one_cmd.packed[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batch_state.packed[i], one_state.packed[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("count", [1, SCALAR_BATCH_LIMIT + 6])  # the per-vehicle path and the array path
def test_control_with_terms_flies_bit_for_bit_as_control_and_its_pid_terms_add_up(count):
    """The terms an export shows are the ones the cycle summed: with them asked for, the state and
    the command are the same bits; each rate PID's P + I + D + F is the cyclic the swash shows (its
    I term is the integrator in the new state); in rate mode the setpoint is the stick's rate."""
    bench = Bench("trex450")
    rng = np.random.default_rng(5)
    packed = np.repeat(bench.vehicles.packed, count, axis=0)
    packed[:, StateIndex.RATES] += rng.normal(0.0, 0.3, (count, 3))
    vehicles = VehicleState(packed)
    controller = ControllerState(np.repeat(bench.controller.packed, count, axis=0))
    pilots = PilotInput(np.repeat(bench.pilot(roll=0.2, pitch=-0.1, yaw=0.1, mode=0.0), count, axis=0))
    state, command = control(bench.k, controller, pilots, vehicles, 0.002)
    state_too, command_too, terms = control_with_terms(bench.k, controller, pilots, vehicles, 0.002)
    assert np.array_equal(state.packed, state_too.packed) and np.array_equal(command.packed, command_too.packed)
    assert terms.shape == (count, len(CONTROL_TERMS))
    term = dict(zip(CONTROL_TERMS, terms.T, strict=True))
    _collective, lateral, longitudinal = unmix(bench.k.swash, *command.packed[:, :3].T)
    for axis, integrator, cyclic in (("roll", 0, lateral), ("pitch", 1, longitudinal)):
        pid = term[f"{axis}_p_rad"] + state.packed[:, integrator] + term[f"{axis}_d_rad"] + term[f"{axis}_f_rad"]
        np.testing.assert_allclose(cyclic, pid, atol=1e-12)  # inside the cyclic ring: nothing clipped
    assert term["sp_roll_rate_rad_s"] == pytest.approx(stick_rate(bench.params, 0.2, 0))
    assert term["sp_pitch_rate_rad_s"] == pytest.approx(stick_rate(bench.params, -0.1, 1))
    # P acts on the error, F on the setpoint, with the gains' signs
    error = term["sp_roll_rate_rad_s"] - vehicles.packed[:, StateIndex.RATES][:, 0]
    np.testing.assert_allclose(term["roll_p_rad"], bench.k.roll[0] * error)
    np.testing.assert_allclose(term["roll_f_rad"], bench.k.roll[3] * term["sp_roll_rate_rad_s"])


@pytest.mark.parametrize("swash_type", [120, 135, 140])
def test_mixer_is_inverted_exactly_by_the_swash_geometry(swash_type):
    geometry = SwashGeometry.build(swash_type, 15.0)
    c, lat, lon = math.radians(3.0), math.radians(-2.0), math.radians(4.0)
    servos = mix(SCALAR, geometry, c, lat, lon)
    assert unmix(geometry, *servos) == pytest.approx((c, lat, lon), abs=1e-12)
    same = mix(SCALAR, geometry, c, 0.0, 0.0)
    assert same[0] == pytest.approx(same[1]) == pytest.approx(same[2])  # pure collective: all servos alike
    rear, right, left = mix(SCALAR, geometry, 0.0, math.radians(2.0), 0.0)
    assert rear == pytest.approx(0.0, abs=1e-12) and right < 0.0 < left  # roll right: right side down
    assert servo_azimuths_deg(swash_type)[1] == pytest.approx(180.0 - swash_type)
    clipped = mix(ARRAY, geometry, np.array([math.radians(40.0)]), np.zeros(1), np.zeros(1))
    assert all(s[0] == 1.0 for s in clipped)  # servo limits


def test_tail_precompensation_in_the_configs_matches_the_hover_trim(each_heli):
    params, t = each_heli.config.controller, each_heli.trim
    deflection = params.yaw_precomp_collective_weight * t.collective_deg / 12.0
    deflection += params.yaw_precomp_cyclic_weight * math.hypot(t.lateral_cyclic_deg, t.longitudinal_cyclic_deg) / 12.0
    predicted = params.yaw_precomp_base_deg + params.yaw_precomp_gain_deg * deflection**2
    offset = each_heli.config.params.tail_rotor.pitch_offset_deg
    assert predicted == pytest.approx(t.tail_pitch_deg - offset, abs=1.0)


# --- liftoff: the controller knows when it is on the ground


@functools.cache  # two tests read the same flight
def fly_a_liftoff_and_landing(name: str) -> dict:
    """Sticks level in angle mode: arm, spool up, collective up at 6 s to lift off and climb to 1.5 m,
    then under the hover collective to settle back down, and once down the collective low.  Per
    tick: time, roll, pitch, height above the start, the controller's on-the-ground estimate."""
    h = heli(name)
    flight = Flight(h.config, apply_overrides(FlightConfig(), heli=name, start="ground"))
    cmap = flight.config.rc
    hover_stick = h.trim.collective_deg / h.config.controller.collective_max_deg
    start_height = float(flight.vehicles.altitude_m[0])
    rows, phase = [], "spool"
    for tick in range(9000):  # 18 s at most
        t = tick * 0.002
        height = float(flight.vehicles.altitude_m[0]) - start_height
        if phase == "spool" and t >= 6.0:
            phase = "climb"
        elif phase == "climb" and height > 1.5:
            phase = "descend"
        elif phase == "descend" and height < 0.01:
            phase, touched = "down", t
        elif phase == "down" and t > touched + 2.0:
            break
        stick = {"spool": 0.0, "climb": hover_stick + 0.15, "descend": hover_stick - 0.04, "down": -0.3}[phase]
        frames = np.full((1, 16), 1500.0)
        frames[0, cmap.arm - 1] = 2000.0 if t > 0.5 else 1000.0
        frames[0, cmap.collective - 1] = 1500.0 + 500.0 * stick
        flight.run_controller(frames, np.ones(1, dtype=bool), 0.002)
        flight.advance(2)
        roll, pitch, _ = flight.vehicles.euler_deg()[0]
        rows.append((t, roll, pitch, height, flight.controller.packed[0, 18], phase == "down"))
    return {"rows": np.array(rows), "trim": h.trim}


@pytest.mark.parametrize("name", HELIS)
def test_a_liftoff_with_the_sticks_level_leans_into_the_hover_attitude_without_overshoot(name):
    """On the skids the controller does not fight for the hover's lean (which it cannot reach
    there) and winds nothing up; off the ground it leans into it.  Roll stays within 3 degrees of
    the way from the attitude on the skids to the hover attitude (it reached 23-26 degrees when the
    roll integrator wound up on the ground)."""
    flown = fly_a_liftoff_and_landing(name)
    t, roll, pitch, height, on_ground, _down = flown["rows"].T
    lift = int(np.argmax(height > 0.02))
    on_skids = roll[lift - 1]
    hover_roll = flown["trim"].roll_deg
    climb = slice(lift, lift + 1500)  # 3 s
    low, high = min(on_skids, hover_roll) - 3.0, max(on_skids, hover_roll) + 3.0
    assert low <= roll[climb].min() and roll[climb].max() <= high, (roll[climb].min(), roll[climb].max(), hover_roll)
    assert abs(pitch[climb]).max() < 3.0
    assert abs(roll[lift + 1500] - hover_roll) < 0.5  # and settles into the hover lean
    before_collective_up = int(np.searchsorted(t, 5.9))
    assert on_ground[before_collective_up] >= 0.5 and on_ground[lift + 100] == 0.0  # it saw the liftoff


@pytest.mark.parametrize("name", HELIS)
def test_the_controller_knows_it_has_landed_once_the_collective_is_down(name):
    flown = fly_a_liftoff_and_landing(name)
    t, _roll, _pitch, height, on_ground, down = flown["rows"].T
    assert height.max() > 1.5 and down.any()  # it flew, and came back down
    settled = down.astype(bool) & (t >= t[down.astype(bool)][0] + 1.0)
    assert abs(height[settled]).max() < 0.05 and (on_ground[settled] >= 0.5).all()


def test_the_hover_pilot_lifts_off_within_3_degrees_of_the_hover_lean_in_its_first_metre():
    """The default flight: the hover pilot spools up and climbs; in its first metre it leans no more
    than 3 degrees past the hover lean (a careful pilot climbs out before it corrects a drift)."""
    h = heli("xcell60")
    flight = Flight(h.config, apply_overrides(FlightConfig(), heli="xcell60", start="ground"))
    start_height = float(flight.vehicles.altitude_m[0])
    rolls = []
    while float(flight.vehicles.altitude_m[0]) - start_height < 1.0 and flight.sim_time_s < 20.0:
        flight.run_controller(flight.pilot_frames(), np.ones(1, dtype=bool), 0.002)
        flight.advance(2)
        rolls.append(flight.vehicles.euler_deg()[0][0])
    assert flight.sim_time_s < 20.0  # it climbed a metre
    assert min(rolls) > -3.0 and max(rolls) < h.trim.roll_deg + 3.0, (min(rolls), max(rolls))


# --- the failsafe from any state

# (what the pilot was doing for the 3 s before the radio went silent: stick values -1..1 beside the
# hover collective, the flight mode 0 rate / 1 angle)
FAILSAFE_ENTRIES = {
    "climbing": {"collective": +0.1, "mode": 1.0},
    "descending": {"collective": -0.06, "mode": 1.0},
    "fast forward": {"pitch": 0.6, "collective": +0.1, "mode": 1.0},
    "turning": {"roll": 0.4, "yaw": 0.5, "collective": +0.05, "mode": 1.0},
    "rate mode": {"roll": 0.05, "collective": +0.05, "mode": 0.0},
}


def fly_into_a_failsafe(name: str, entry: dict) -> dict:
    """A hover at 20 m, the pilot's ``entry`` for 2 s, then the radio silent until the failsafe has
    landed the helicopter (or 90 s): the touchdown sink rate and how the flight ended."""
    h = heli(name)
    flight = Flight(h.config, apply_overrides(FlightConfig(), heli=name, start="hover", start_altitude_m=20.0))
    cmap = flight.config.rc
    hover_stick = h.trim.collective_deg / h.config.controller.collective_max_deg
    ground = float(h.config.params.contact.skid_depth_m)
    frames = np.full((1, 16), 1500.0)
    frames[0, cmap.arm - 1] = 2000.0
    frames[0, cmap.mode - 1] = 1000.0 + 500.0 * entry.get("mode", 1.0)
    for stick in ("roll", "pitch", "yaw"):
        frames[0, getattr(cmap, stick) - 1] = 1500.0 + 500.0 * entry.get(stick, 0.0)
    frames[0, cmap.collective - 1] = 1500.0 + 500.0 * (hover_stick + entry.get("collective", 0.0))
    touchdown_sink, worst_sink, speed_at_loss = None, 0.0, None
    for tick in range(int(92.0 / 0.002)):
        valid = tick * 0.002 < 2.0
        if not valid and speed_at_loss is None:
            speed_at_loss = float(np.linalg.norm(flight.vehicles.velocity_ned_m_s[0]))
        flight.run_controller(frames, np.array([valid]), 0.002)
        flight.advance(2)
        sink = float(flight.vehicles.velocity_ned_m_s[0, 2])
        if int(flight.controller.flight_mode[0]) == 4:  # descending (after the level phase)
            worst_sink = max(worst_sink, sink)
        if touchdown_sink is None and not valid and float(flight.vehicles.altitude_m[0]) < ground + 0.05:
            touchdown_sink = sink
        if flight.vehicles.crashed[0] or int(flight.controller.flight_mode[0]) == 5:
            break
    return {"touchdown_sink": touchdown_sink, "worst_sink": worst_sink, "speed_at_loss": speed_at_loss,
            "crashed": bool(flight.vehicles.crashed[0]), "mode": int(flight.controller.flight_mode[0])}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("entry", list(FAILSAFE_ENTRIES))
@pytest.mark.parametrize("name", HELIS)
def test_the_failsafe_lands_gently_from_any_state(name, entry):
    """Whatever the helicopter was doing when the radio went silent, the failsafe levels, holds, then
    descends at its configured rate and touches down at 1 m/s or less.  From a climb it used to
    take the top of the climb (no vertical speed) for a landing, cut the collective at 11 m and
    crash at 6 m/s."""
    result = fly_into_a_failsafe(name, FAILSAFE_ENTRIES[entry])
    assert not result["crashed"] and result["mode"] == 5, result  # landed, motor cut
    assert result["touchdown_sink"] is not None and result["touchdown_sink"] <= 1.0, result
    descent = heli(name).config.controller.failsafe_descent_m_s
    assert result["worst_sink"] <= descent + 1.5, result  # the descent is held, whatever the entry


def test_dropping_the_collective_in_a_hover_is_not_taken_for_a_landing():
    """Still for a moment with the collective down: the start of a descent, not the ground (a
    landing needs that for half a second); the integrators keep the hover's trim meanwhile."""
    h = heli("xcell60")
    flight = Flight(h.config, apply_overrides(FlightConfig(), heli="xcell60", start="hover", start_altitude_m=10.0))
    cmap = flight.config.rc
    frames = np.full((1, 16), 1500.0)  # collective stick centred: 0 degrees, far under the hover's
    frames[0, cmap.arm - 1] = 2000.0
    ground_times = []
    for _ in range(500):  # 1 s
        flight.run_controller(frames, np.ones(1, dtype=bool), 0.002)
        flight.advance(2)
        ground_times.append(flight.controller.packed[0, 18])
    assert max(ground_times) < 0.5 and float(flight.vehicles.altitude_m[0]) > 5.0
    assert flight.controller.packed[0, 0] != 0.0  # the roll integrator still holds its trim


# --- margins with a servo delay


class DelayedBench(Bench):
    """A ``Bench`` whose servos act on the controller's command ``delay_s`` late (a transport delay)."""

    def __init__(self, name: str, loop_hz: float, delay_s: float, params=None):
        super().__init__(name, loop_hz, altitude_m=50.0, params=params)
        self.pipeline: list = []
        self.delay_cycles = round(delay_s * loop_hz)

    def fly(self, seconds: float, pilot: np.ndarray, record=None) -> list:
        out = []
        for _ in range(round(seconds / self.dt)):
            self.controller, command = control(self.k, self.controller, PilotInput(pilot), self.vehicles, self.dt)
            self.pipeline.append(command)
            applied = self.pipeline.pop(0) if len(self.pipeline) > self.delay_cycles else self.pipeline[0]
            for _ in range(self.substeps):
                self.vehicles = step(self.h.model, self.vehicles, applied, self.dt / self.substeps)
            if record is not None:
                out.append(record(self))
        return out


def kicked_hover_rates(name: str, loop_hz: float, delay_s: float, params=None) -> np.ndarray:
    """Body rates (rad/s) over 8 s of angle-mode hover after a kick in all three rates, servos late."""
    bench = DelayedBench(name, loop_hz, delay_s, params)
    bench.vehicles = bench.vehicles.replace_columns(StateIndex.RATES, [0.3, -0.2, 0.2])
    rates = bench.fly(8.0, bench.pilot(mode=1.0), lambda b: b.vehicles.body_rates_rad_s[0].copy())
    assert not bench.vehicles.crashed[0]
    return np.array(rates)


@pytest.mark.parametrize("loop_hz", RATES_HZ)
@pytest.mark.parametrize("name", HELIS)
def test_default_gains_hold_a_hover_with_50_ms_of_servo_delay(name, loop_hz):
    """Flight controllers' servo outputs lag 30-50 ms (ArduPilot measures its own); the kick dies
    away with 50 ms of delay, and the linearised loops keep their margins."""
    rates = np.abs(kicked_hover_rates(name, loop_hz, 0.05))
    time = np.arange(1, len(rates) + 1) / loop_hz
    assert rates[time > 6.0].max() < 0.05  # 3 deg/s at most: no limit cycle ...
    assert rates[time > 7.0].max() < rates[(time > 5.0) & (time <= 6.0)].max()  # ... and still dying away
    h = heli(name)
    k = ControllerConstants.build(h.config.controller, h.model, math.radians(h.trim.collective_deg))
    for margins in loop_margins(h.model, h.trim, k, loop_hz, 0.05):
        assert margins.gain_margin_db > 3.0 and margins.phase_margin_deg > 25.0, margins


def test_the_margins_say_when_a_delay_makes_a_loop_diverge():
    """The 450's old tail gains (P 0.05, I 0.3: a 10 Hz crossover): the linearised yaw loop has a
    negative margin with 50 ms of delay, and the delayed flight's yaw rate grows, as it said."""
    h = heli("trex450")
    old = replace(h.config.controller, yaw_p_s=0.05, yaw_i_per_s=0.3)
    k = ControllerConstants.build(old, h.model, math.radians(h.trim.collective_deg))
    yaw = next(m for m in loop_margins(h.model, h.trim, k, 500, 0.05) if m.axis == "yaw")
    assert yaw.gain_margin_db < 0.0
    rates = DelayedBench("trex450", 500, 0.05, params=old)
    rates.vehicles = rates.vehicles.replace_columns(StateIndex.RATES, [0.0, 0.0, 0.05])
    yaw_rates = np.abs(rates.fly(1.5, rates.pilot(mode=1.0), lambda b: b.vehicles.body_rates_rad_s[0, 2]))
    assert yaw_rates[-250:].max() > 4.0 * 0.05  # growing, where the new gains settle (above)


@pytest.mark.parametrize("name", HELIS)
def test_a_flight_that_starts_in_hover_holds_its_headspeed(name):
    """The governor's integrator starts at the trim throttle less its feed-forward (it held the
    whole trim throttle on top of it once: the 450 ran up to 3185 rpm in a second)."""
    bench = Bench(name)
    speeds = np.array(bench.fly(2.0, bench.pilot(mode=1.0), lambda b: b.vehicles.rotor_speed_rad_s[0]))
    assert np.abs(speeds / bench.h.model.nominal_speed - 1.0).max() < 0.005


def test_a_loop_with_no_gain_has_no_margin_to_lose():
    h = heli("xcell60")
    open_tail = replace(h.config.controller, yaw_p_s=0.0, yaw_i_per_s=0.0, governor_p=0.0, governor_i_per_s=0.0)
    k = ControllerConstants.build(open_tail, h.model, math.radians(h.trim.collective_deg))
    for delay in (0.0, 0.002, 0.05):
        margins = {m.loop: m for m in loop_margins(h.model, h.trim, k, 500, delay) if m.axis in ("yaw", "rotor speed")}
        assert all(math.isinf(m.gain_margin_db) for m in margins.values())


@pytest.mark.parametrize(("name", "collective_deg", "most_deg"), [("xcell60", 0.0, 20.0), ("trex450", -4.0, 50.0),
                                                                  ("trex700", -3.0, 30.0)])  # fmt: skip
def test_throttle_hold_in_a_hover_does_not_spin_the_nose_round(name, collective_deg, most_deg):
    """With the motor off its torque no longer needs the tail: the precompensation fades to zero tail
    pitch (as fast as the drive's torque goes), so the nose holds within a few tens of degrees (in
    the scripted autorotations it swung 66-140 degrees while the tail pushed against a torque that
    was gone)."""
    bench = Bench(name, altitude_m=200.0)
    stick = collective_deg / bench.params.collective_max_deg
    headings = bench.fly(4.0, bench.pilot(arm=0.0, mode=1.0, collective=stick), lambda b: b.vehicles.euler_deg()[0, 2])
    swing = np.degrees(np.abs(np.unwrap(np.radians(headings)) - math.radians(headings[0])))
    assert swing.max() < most_deg
