"""Wiring between a ``Flight`` and the outside world, once per tick of the loop.

``PortIO`` builds the flight's ports from its configuration (``virtual`` ones with their device
emulators), reads the pilot's stick frames before the controller runs (with per-vehicle
freshness: stale input engages the controller's failsafe) and, after it, pushes servo commands,
telemetry, link requests and RC output.  ``InProcessIO`` is the same interface for a flight
with no ports at all: the pilot runs inside the simulator.

The failsafe deadline in blocking mode: the RC port is read inline, so freshness is judged with
the time *after* that read, and the read itself gives up when the first vehicle's input goes
stale (``RcInPort.give_up_at``) instead of waiting out its own deadline.  So the failsafe
engages at the first tick after the deadline, as in the other modes; what blocking I/O still
adds is the inline exchanges of the other ports (a servo's ack, a link's reply), during which
the loop, and so the failsafe check, has no control.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, TypedDict

import numpy as np
import serial

from heli.control import FLIGHT_MODES
from sim.battery import BatteryMeter
from sim.config import FlightConfig, PortSpec
from sim.dataclass_io import to_table
from sim.errors import PortError
from sim.flight import Flight
from sim.ground_control import GroundControl
from sim.ports.codecs import Codec, FlightSnapshot, MavlinkCodec, check_vehicle_ids, crsf_telemetry, make_codec
from sim.ports.events import EventLog, PortEvent
from sim.ports.faults import FaultyOpener, LineFaults, Transport
from sim.ports.port import Port
from sim.ports.portset import PortSet
from sim.ports.roles import ROLES, Downlink, RcInPort, ServoOrder, ServoPort, TelemetryPort
from sim.ports.transport import SerialSettings, check_port_count, open_transport
from sim.ports.virtual import HandoffEndpoint, VirtualEndpoint
from sim.protocols.hsf import ServoCommand, VehicleStateMsg
from sim.protocols.mavlink import TelemetrySample
from sim.protocols.mavlink_fc import GroundStationLink
from sim.rc import CHANNEL_COUNT, neutral_channels, takeover_collective_stick
from sim.stats import LogHistogram

__all__ = ["FlightIO", "InProcessIO", "PortIO", "build_port"]

_DEVICE_POLL_S = 0.1  # how often the emulators' reports are read
_SILENT_VEHICLES_NAMED = 8  # more vehicles than this going failsafe (or back) together share one event
TELEMETRY_HZ = 50.0  # vehicle states to the ground station and down the RC link
EMULATOR_START_TIMEOUT_S = 30.0  # a cold start on a loaded 2-core machine takes about a second


class _PortOptions(TypedDict):
    """The keyword arguments of a ``Port`` that ``build_port`` gives every role."""

    url: str
    vehicle: int
    reply_timeout_s: float
    closer: Callable[[], None] | None
    codec: Codec


def build_port(
    spec: PortSpec,
    events: EventLog,
    transmitter_args: list[str] | None = None,
    stick_to_servo: LogHistogram | None = None,
    far_end: str = "emulator",
    faults: LineFaults | None = None,
) -> tuple[Port, VirtualEndpoint | HandoffEndpoint | None]:
    """The port ``spec`` describes (not opened yet), and its virtual endpoint if it has one.

    ``transmitter_args``: extra ``heli-sim device transmitter`` options for a virtual rc-in port
    (its pilot, helicopter, fleet, channel map).  ``far_end="view"``: a virtual port's far end is
    handed to the view (its keyboard pilot) instead of an emulator.  ``faults``: the line's
    injected faults (``sim.ports.faults``), applied to every transport the port opens.
    """
    role = ROLES[spec.role]
    codec = make_codec(spec.wire_protocol)
    line = codec.line
    baud = spec.baud or line.baudrate
    settings = SerialSettings(baudrate=baud, parity=line.parity, stopbits=line.stopbits)
    reply_timeout_s = spec.reply_timeout_ms / 1e3
    endpoint: VirtualEndpoint | HandoffEndpoint | None = None
    closer: Callable[[], None] | None = None
    open_real: Callable[[], serial.Serial]
    if spec.url == "virtual" and far_end == "view":
        endpoint = HandoffEndpoint(settings)
        open_real, closer = endpoint.open, endpoint.close
    elif spec.url == "virtual":
        args = ["--protocol", spec.wire_protocol, "--baud", str(baud)] + (["--pace"] if spec.pace else [])
        if role.device_answers:
            args += ["--latency-ms", repr(spec.device_latency_ms)]
        if role is RcInPort:
            args += transmitter_args or []
        endpoint = VirtualEndpoint(role.device, args, settings)
        open_real, closer = endpoint.open, endpoint.close
        reply_timeout_s = max(reply_timeout_s, (2.0 * spec.device_latency_ms + 100.0) / 1e3)
    else:

        def open_real(url: str = spec.url) -> serial.Serial:
            return open_transport(url, settings)

    opener: Callable[[], Transport] = open_real if faults is None else FaultyOpener(open_real, faults, spec.label)
    options = _PortOptions(
        url=spec.url, vehicle=spec.vehicle, reply_timeout_s=reply_timeout_s, closer=closer, codec=codec
    )
    if role is ServoPort:
        return ServoPort(spec.label, opener, events, stick_to_servo=stick_to_servo, **options), endpoint
    return role(spec.label, opener, events, **options), endpoint


class _OutgoingTick(NamedTuple):
    """What ``PortIO.push_outputs`` hands each role's method: the time, whether the slow outputs
    (telemetry, the RC link's downlink) are due, and the vehicles' states as HSF messages (where an
    HSF port carries them)."""

    now: float
    slow_due: bool
    states: list


class FlightIO(Protocol):
    """What the loop needs from the outside world each tick."""

    def read_inputs(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames (N, 16) us, fresh (N,) bool, stick arrival times (N,) monotonic s or nan)."""
        ...

    def push_outputs(self, now: float) -> None: ...

    def open(self) -> None: ...

    def switch(self, mode: str) -> None: ...

    def refuses(self, mode: str) -> str | None: ...

    def drain_events(self) -> list[PortEvent]: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...

    def port_summaries(self) -> list[dict]: ...

    def stick_to_servo_ms(self) -> dict: ...


class InProcessIO:
    """No ports: the pilot runs in the simulator and its frames are always fresh."""

    def __init__(self, flight: Flight):
        self.flight = flight
        self._fresh = np.ones(flight.count, dtype=bool)
        self._no_time = np.full(flight.count, math.nan)

    def read_inputs(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.flight.pilot_frames(), self._fresh, self._no_time

    def push_outputs(self, now: float) -> None:
        return None

    def open(self) -> None:
        return None

    def switch(self, mode: str) -> None:
        return None

    def refuses(self, mode: str) -> str | None:
        return None

    def drain_events(self) -> list[PortEvent]:
        return []

    def abort(self) -> None:
        return None

    def close(self) -> None:
        return None

    def port_summaries(self) -> list[dict]:
        return []

    def stick_to_servo_ms(self) -> dict:
        return {"p50": None, "p99": None, "max": None}


def next_on_cadence(due: float, now: float, period_s: float) -> float:
    """When a rate-limited output is next due: one period after it was last due, so the rate
    holds on average though ticks come every 2 ms (``now + period`` would wait for the tick after
    it: 150 Hz would become 125 Hz).  Behind by more than a period (a stall), it starts again from now."""
    due += period_s
    return due if due > now else now + period_s


class PortIO:
    """A flight's ports and the values they carry."""

    def __init__(self, flight: Flight, config: FlightConfig, mode: str, clock: Callable[[], float] = time.monotonic):
        """``clock``: the ports' clock (monotonic s), which stamps the stick frames' arrival.

        ``ConfigError`` if a port's protocol cannot address the vehicles it serves (HSF: 65536).
        """
        self.flight = flight
        self.config = config
        self.events = EventLog()
        self.stick_to_servo = LogHistogram()
        self.endpoints: dict[str, VirtualEndpoint | HandoffEndpoint] = {}
        self.line_faults: dict[str, LineFaults] = {}  # port name -> the faults injected on its line
        self._clock = clock
        specs = config.port_specs()
        check_vehicle_ids(specs, flight.count)  # the default set too (a flight file's ports are checked at load)
        check_port_count([spec.label for spec in specs], flight.count)
        self.specs = {spec.label: spec for spec in specs}
        self.ports = [self._make_port(spec) for spec in specs]
        self._hsf_states = any(p.protocol == "hsf" and p.role in ("telemetry", "rc-in") for p in self.ports)
        self.portset = PortSet(self.ports, self.events, mode)
        self.rc_port = next((p for p in self.ports if isinstance(p, RcInPort)), None)
        self.ground = self._ground_control()
        self.battery = BatteryMeter(flight.model) if flight.model.electric else None
        count = flight.count
        if self.rc_port is not None:
            self.rc_port.vehicles = count  # a stick frame for a vehicle not in the fleet is a decode error
        # one radio (CRSF, SBUS, iBUS, MSP: no vehicle index in a frame) flies the whole fleet, in formation:
        # every vehicle gets its sticks, as none could have a pilot of its own
        self._one_radio_for_all = self.rc_port is not None and self.rc_port.protocol != "hsf"
        self._frames = neutral_channels(count, config.rc)
        self._stick_t = np.full(count, math.nan)
        self._stick_answered = np.full(count, math.nan)  # the stick frame a servo command last answered
        self._had_frame = np.zeros(count, dtype=bool)
        self._flagged = np.zeros(count, dtype=bool)  # the receiver itself says failsafe (SBUS)
        self._was_fresh = np.zeros(count, dtype=bool)
        self._silent_told = np.zeros(count, dtype=bool)  # "no pilot input since the start" was said
        self._tick = -1  # the loop's tick number (read_inputs counts them)
        self._flown = neutral_channels(count, config.rc)  # the frames the controller flew by last
        self._first_read_t: float | None = None
        self._silent_settled = False  # no vehicle is left that could still be silent from the start
        self._timeout_s = config.flight.failsafe_timeout_s
        self._next_slow_t = 0.0
        self._next_rc_out_t = 0.0
        self._rc_seq_seen = 0
        self._next_device_poll_t = 0.0

    # --- building
    def _ground_control(self) -> GroundControl | None:
        """A MAVLink telemetry port answers its ground station; the loop applies what it asks."""
        port = next((p for p in self.ports if isinstance(p, TelemetryPort) and p.protocol == "mavlink"), None)
        if port is None or not isinstance(port.codec, MavlinkCodec):  # (a port speaking MAVLink has its codec)
            return None
        settings = self.config.flight
        link = GroundStationLink(self.flight.controller_params, port.codec.encoder, settings.rc_override,
                                 max_rate_hz=TELEMETRY_HZ, has_battery=self.flight.model.electric)  # fmt: skip
        port.ground = link
        record = lambda kind, detail: self.events.push(kind, detail, self._clock())  # noqa: E731
        return GroundControl(link, self.config.rc, record, settings.failsafe_timeout_s)

    def _make_port(self, spec: PortSpec) -> Port:
        keyboard = spec.role == "rc-in" and self.config.flight.pilot == "keyboard"
        self.line_faults[spec.label] = LineFaults()
        port, endpoint = build_port(
            spec,
            self.events,
            self._transmitter_args() if spec.role == "rc-in" else [],
            self.stick_to_servo,
            far_end="view" if keyboard else "emulator",
            faults=self.line_faults[spec.label],
        )
        if endpoint is not None:
            self.endpoints[spec.label] = endpoint
        return port

    def _transmitter_args(self) -> list[str]:
        settings, cmap = self.config.flight, self.config.rc
        args = [
            "--pilot", settings.pilot, "--heli", self.flight.heli.source, "--fleet", str(self.flight.count),
            "--channel-map", ",".join(str(number) for number in cmap.numbers()),
            "--rate-hz", repr(settings.pilot_hz),
        ]  # fmt: skip
        if settings.pilot_is_joystick:
            args += ["--joystick-map", json.dumps(to_table(self.config.joystick))]
            if settings.start == "hover":  # the joystick takes over a hovering helicopter hovering
                flight = self.flight
                stick = takeover_collective_stick(
                    flight.trim.collective_deg, flight.heli.controller.collective_max_deg, cmap
                )
                args += ["--hover-collective", repr(stick)]
        return [*args, "--airborne"] if settings.start == "hover" else args

    # --- life cycle
    def open(self) -> None:
        """Open every port and wait until every emulated device serves (they start in parallel)."""
        self.portset.open(start=False)
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
        try:
            for name, endpoint in self.endpoints.items():
                try:
                    endpoint.wait_ready(deadline)
                except PortError as error:
                    raise PortError(f"{name} (virtual): {error}") from None
            self.portset.start()
        except BaseException:
            self.portset.close()
            raise

    def close(self) -> None:
        self.portset.close()

    def abort(self) -> None:
        self.portset.abort()

    def view_rc_fd(self) -> int | None:
        """The far end of a keyboard pilot's RC port, for the view to write its CRSF frames into."""
        endpoint = self.endpoints.get(self.rc_port.name) if self.rc_port is not None else None
        return endpoint.take_far_end() if isinstance(endpoint, HandoffEndpoint) else None

    def switch(self, mode: str) -> None:
        self.portset.switch(mode)

    def refuses(self, mode: str) -> str | None:
        return self.portset.refuses(mode)

    def drain_events(self) -> list[PortEvent]:
        now = time.monotonic()
        if now >= self._next_device_poll_t:  # what the emulators report (a joystick unplugged), a few times a second
            self._next_device_poll_t = now + _DEVICE_POLL_S
            for name, endpoint in self.endpoints.items():
                poll = getattr(endpoint, "poll_events", None)
                for kind, detail, at in poll() if poll is not None else ():
                    # when it happened (the emulator's monotonic clock is this one), not when it was read
                    self.events.push(kind, f"{name}: {detail}", min(at, now) if at is not None else now)
        return self.events.drain()

    # --- each tick
    def read_inputs(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frames the controller flies by this tick, which are fresh, and when each came.  The
        loop calls it once a tick, first thing: its calls count the ticks (a ground station's
        parameter set is recorded at its tick)."""
        self._tick += 1
        if self.rc_port is None:
            frames, fresh = self.flight.pilot_frames(), np.ones(self.flight.count, dtype=bool)
            if self.ground is not None:
                frames, fresh = self.ground.apply(frames, fresh, self.flight, self._tick)
            self._flown = frames
            return frames, fresh, self._stick_t
        blocking = self.portset.mode == "blocking"
        self.rc_port.give_up_at = self._stale_at() if blocking else None
        letter = self.portset.read_inputs()[self.rc_port.name]
        if blocking:  # the read was inline: judge freshness now, after it, not before it
            now = max(now, self._clock())
        if letter is not None and letter.seq != self._rc_seq_seen:
            self._rc_seq_seen = letter.seq
            frames = self._frames.copy()  # a new array: the controller decodes each frame once
            first_time = ~self._had_frame
            for vehicle, rc in letter.value.items():
                if 0 <= vehicle < self.flight.count:
                    values = rc.channels.channels_us[:CHANNEL_COUNT]
                    flown: int | slice = slice(None) if self._one_radio_for_all else vehicle
                    frames[flown, : len(values)] = values
                    self._stick_t[flown] = rc.t_received
                    self._flagged[flown] = rc.channels.failsafe
                    self._had_frame[flown] = True
            self._frames = frames
            # a first frame is no recovery, unless the failsafe was said to hold since the start
            self._was_fresh = self._was_fresh | (first_time & self._had_frame & ~self._silent_told)
        recent = (now - np.nan_to_num(self._stick_t, nan=-math.inf)) <= self._timeout_s
        fresh = self._had_frame & recent & ~self._flagged
        frames = self._frames
        if self.ground is not None:  # a ground station's sticks count as pilot input (rc_override)
            frames, fresh = self.ground.apply(frames, fresh, self.flight, self._tick)
        flipped = fresh != self._was_fresh
        if flipped.any():  # rare: most ticks change nothing
            self._tell_failsafe_changes(np.flatnonzero(flipped & (self._had_frame | self._silent_told)), fresh, now)
        self._was_fresh = fresh
        self._tell_silent_from_the_start(now, fresh, self.rc_port)
        self._flown = frames
        return frames, fresh, self._stick_t

    def _tell_failsafe_changes(self, changed: np.ndarray, fresh: np.ndarray, now: float) -> None:
        """``failsafe_on`` / ``failsafe_off`` for the vehicles in ``changed``; more than
        ``_SILENT_VEHICLES_NAMED`` together (one radio for a fleet) are one event, not one per vehicle."""
        for kind, back in (("failsafe_on", False), ("failsafe_off", True)):
            group = changed[fresh[changed] == back]
            what = "back" if back else "stale"
            if len(group) > _SILENT_VEHICLES_NAMED:
                self.events.push(kind, f"vehicles {group[0]}..{group[-1]} ({len(group)}): pilot input {what}", now)
            else:
                for vehicle in group:
                    self.events.push(kind, f"vehicle {vehicle}: pilot input {what}", now)

    def _tell_silent_from_the_start(self, now: float, fresh: np.ndarray, rc_port: RcInPort) -> None:
        """A vehicle whose pilot input has not come at all, a failsafe timeout after the first read,
        has been in failsafe since the start (the controller holds it): an event says so, once,
        and its first frame, if one comes, is a ``failsafe_off``.  A radio that is off, unbound or
        on the wrong baud rate shows this way."""
        if self._silent_settled:  # every vehicle has had a frame or been told: nothing to look at per tick
            return
        if self._first_read_t is None:
            self._first_read_t = now
        if now - self._first_read_t <= self._timeout_s:
            return
        silent = np.flatnonzero(~self._had_frame & ~self._silent_told & ~fresh)
        if not len(silent):
            self._silent_settled = bool((self._had_frame | self._silent_told).all())
            return
        self._silent_told[silent] = True
        self._silent_settled = bool((self._had_frame | self._silent_told).all())
        why = f"no pilot input since the start (no frames from {rc_port.name})"
        if len(silent) <= _SILENT_VEHICLES_NAMED:
            for vehicle in silent:
                self.events.push("failsafe_on", f"vehicle {vehicle}: {why}", now)
        else:
            self.events.push("failsafe_on", f"vehicles {silent[0]}..{silent[-1]} ({len(silent)}): {why}", now)

    def _stale_at(self) -> float | None:
        """When the first vehicle whose input is fresh now goes stale (monotonic s); None if none is fresh."""
        fresh = self._was_fresh & ~np.isnan(self._stick_t)  # not one a ground station's sticks keep fresh
        if not fresh.any():
            return None
        return float(self._stick_t[fresh].min()) + self._timeout_s

    def push_outputs(self, now: float) -> None:
        flight = self.flight
        if self.battery is not None:
            self.battery.update(flight.vehicles, flight.sim_time_s)
        values: dict[str, object] = {}
        slow_due = now >= self._next_slow_t
        states: list[VehicleStateMsg] = []
        if slow_due:
            self._next_slow_t = next_on_cadence(self._next_slow_t, now, 1.0 / TELEMETRY_HZ)
            if self._hsf_states:  # every vehicle's state as a message: only where an HSF port carries them
                states = self._vehicle_states()
        tick = _OutgoingTick(now, slow_due, states)
        for port in self.ports:
            value = self._OUTGOING[port.role](self, port, tick)
            if value is not None:
                values[port.name] = value
        self.portset.push_outputs(values, now)

    # --- what each role is sent this tick (None: nothing new): one method per role, in _OUTGOING

    def _servo_out(self, port: Port, tick: _OutgoingTick) -> ServoOrder:
        row = self.flight.command.packed[port.vehicle]
        # stick-to-servo latency: only the first command after a new stick frame answers it
        stick_t = float(self._stick_t[port.vehicle])
        new_stick = not math.isnan(stick_t) and stick_t != self._stick_answered[port.vehicle]
        self._stick_answered[port.vehicle] = stick_t
        order = ServoCommand(port.vehicle, tuple(row[:4].tolist()), float(row[4]))
        return ServoOrder(order, stick_t if new_stick else None)

    def _telemetry_out(self, port: Port, tick: _OutgoingTick) -> list | None:
        if not tick.slow_due:
            return None
        return tick.states if port.protocol == "hsf" else self._telemetry_samples()

    def _rc_in_out(self, port: Port, tick: _OutgoingTick) -> Downlink | None:
        return self._downlink(port.protocol, tick.states) if tick.slow_due else None

    def _rc_out_out(self, port: Port, tick: _OutgoingTick) -> list | None:
        if tick.now < self._next_rc_out_t:  # at the protocol's frame rate
            return None
        self._next_rc_out_t = next_on_cadence(self._next_rc_out_t, tick.now, 1.0 / port.codec.line.frame_rate_hz)
        rows = self._flown[: port.codec.vehicle_ids or 1]  # a protocol without vehicle ids: vehicle 0's
        return [port.codec.stick_message(i, tuple(float(v) for v in row)) for i, row in enumerate(rows)]

    def _link_out(self, port: Port, tick: _OutgoingTick) -> None:
        return None  # a link asks on its own (request and reply, back to back)

    _OUTGOING: ClassVar[dict[str, Callable[[Any, Port, _OutgoingTick], object]]] = {
        "servo": _servo_out, "telemetry": _telemetry_out, "rc-in": _rc_in_out, "rc-out": _rc_out_out,
        "link": _link_out,
    }  # fmt: skip

    def _downlink(self, protocol: str, states: list[VehicleStateMsg]) -> Downlink:
        """What goes back to the pilot's side of the RC link, in that link's protocol."""
        if protocol == "hsf":
            return Downlink(states)  # the emulated transmitter's pilot flies by these
        snapshot = self._snapshot()
        if protocol == "crsf":
            return Downlink(crsf_telemetry(snapshot))
        return Downlink([], snapshot)  # MSP answers requests with it; SBUS and iBUS are one-way

    def _snapshot(self) -> FlightSnapshot:
        v, flight = self.flight.vehicles, self.flight
        euler = np.radians(v.euler_deg()[0])
        return FlightSnapshot(
            attitude_rad=tuple(euler.tolist()),
            altitude_m=float(v.altitude_m[0]),
            climb_m_s=float(-v.velocity_ned_m_s[0, 2]),
            armed=bool(flight.motor_on()[0]),
            mode=FLIGHT_MODES.get(int(flight.controller.flight_mode[0]), "?"),
            channels_us=tuple(float(c) for c in self._flown[0]),
            battery_voltage_v=flight.heli.params.drive.battery_voltage_v,
            battery_current_a=self.battery.current_a if self.battery is not None else 0.0,
            battery_consumed_mah=self.battery.consumed_mah if self.battery is not None else 0.0,
            body_rates_rad_s=tuple(v.body_rates_rad_s[0].tolist()),
            servo_positions=tuple(flight.command.servo[0].tolist()),
            throttle=float(flight.command.throttle[0]),
            craft_name=flight.heli.params.name,
            position_ned_m=tuple(v.position_ned_m[0].tolist()),
            velocity_ned_m_s=tuple(v.velocity_ned_m_s[0].tolist()),
            home=(self.config.home.latitude_deg, self.config.home.longitude_deg, self.config.home.altitude_m),
        )

    def _telemetry_samples(self) -> list[TelemetrySample]:
        """Vehicle 0's sample: one MAVLink system (the rest of the fleet is not converted)."""
        v, flight, config = self.flight.vehicles, self.flight, self.config
        servos, throttle_cmd = flight.command.servo[0].tolist(), float(flight.command.throttle[0])
        sample = TelemetrySample(
            time_s=flight.sim_time_s,
            position_ned_m=tuple(v.position_ned_m[0].tolist()),
            velocity_ned_m_s=tuple(v.velocity_ned_m_s[0].tolist()),
            attitude_rad=tuple(np.radians(v.euler_deg()[0]).tolist()),
            body_rates_rad_s=tuple(v.body_rates_rad_s[0].tolist()),
            throttle=float(v.throttle[0]),
            armed=bool(flight.motor_on()[0]),
            channels_us=tuple(float(c) for c in self._flown[0]),
            battery_voltage_v=flight.heli.params.drive.battery_voltage_v,
            battery_current_a=self.battery.current_a if self.battery is not None else 0.0,
            battery_consumed_mah=self.battery.consumed_mah if self.battery is not None else 0.0,
            flight_mode=FLIGHT_MODES.get(int(flight.controller.flight_mode[0]), "?"),
            crashed=bool(v.crashed[0]),
            home=(config.home.latitude_deg, config.home.longitude_deg, config.home.altitude_m),
            unix_time_s=time.time(),
            quaternion=tuple(v.attitude_quat[0].tolist()),
            servo_us=(*(1500.0 + 500.0 * x for x in servos), 1000.0 + 1000.0 * throttle_cmd),
        )
        return [sample]

    def _vehicle_states(self) -> list[VehicleStateMsg]:
        v = self.flight.vehicles
        t = self.flight.sim_time_s
        armed = self.flight.controller.governor_state > 0
        rows = v.packed.tolist()
        crashed = v.crashed
        return [
            VehicleStateMsg(
                vehicle=i,
                sim_time_s=t,
                position_ned_m=tuple(row[0:3]),
                velocity_ned_m_s=tuple(row[3:6]),
                attitude_quat=tuple(row[6:10]),
                body_rates_rad_s=tuple(row[10:13]),
                rotor_speed_rad_s=row[15],
                crashed=bool(crashed[i]),
                armed=bool(armed[i]),
            )
            for i, row in enumerate(rows)
        ]

    # --- results
    def port_summaries(self) -> list[dict]:
        out = []
        for port in self.ports:
            entry = port.summary()
            endpoint = self.endpoints.get(port.name)
            if endpoint is not None:
                entry["far_end"] = endpoint.far_end_summaries
            out.append(entry)
        return out

    def stick_to_servo_ms(self) -> dict:
        return self.stick_to_servo.summary(1e3, 3)
