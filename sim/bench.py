"""Benchmarks: measured figures, medians of repeats taken in the same run (``heli-sim bench``).

Each benchmark returns ``Result`` rows; ``machine_info`` says where they were taken.  The
figures are measured, never asserted: the README keeps a table of them.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from heli.control import ControllerConstants, ControllerState, PilotInput, control
from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.state import ActuatorCommand, VehicleState
from heli.trim import solve_hover_trim
from sim.bench_common import Result, bare_loop_lateness, machine_info, median_time
from sim.bench_limits import count_kernel_calls, elementwise_ns_per_element, jsbsim_run_us
from sim.compiled import available as compiled_available
from sim.compiled import compiled_kernels
from sim.config import IO_MODES, FlightConfig, PortSpec, apply_overrides, load_heli
from sim.loop import FlightLoop
from sim.ports.codecs import protocols_for
from sim.session import ViewOptions, flight_session

__all__ = ["BENCHMARKS", "IO_FULL", "IO_QUICK", "ON_REQUEST", "IoSizes", "Result", "machine_info"]

log = logging.getLogger(__name__)


def bench_step(quick: bool = False, heli: str = "xcell60", figures: dict | None = None) -> list[Result]:
    """Physics and controller cost for one vehicle, batch throughput at N = 10,000, and the
    cost per vehicle-step against fleet size (one numpy kernel serves every size)."""
    config = load_heli(heli)
    model = FlightModel.build(config.params)
    trim = solve_hover_trim(model)
    collective = math.radians(trim.collective_deg)
    constants = ControllerConstants.build(config.controller, model, collective)
    repeats = 3 if quick else 7
    steps = 300 if quick else 2000

    def hold(state):
        return ActuatorCommand(np.concatenate([state.servo_position, state.throttle[:, None]], axis=1))

    single = hover_state(model, trim, 1, 50.0)
    single_cmd = hold(single)

    step_us = _seconds_per_call(lambda s: step(model, s, single_cmd, 0.001), single, steps, repeats) * 1e6

    def controller_state(count: int) -> ControllerState:
        return ControllerState.in_hover(
            constants, count, math.radians(trim.lateral_cyclic_deg), math.radians(trim.longitudinal_cyclic_deg),
            math.radians(trim.tail_pitch_deg), collective, trim.throttle,
        )  # fmt: skip

    pilot1 = PilotInput.centred(1, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg)
    cstate1 = controller_state(1)

    control_us = (
        _seconds_per_call(lambda cs: control(constants, cs, pilot1, single, 0.002)[0], cstate1, steps, repeats) * 1e6
    )

    batch_n = 10_000
    batch_steps = 5 if quick else 20
    batch = hover_state(model, trim, batch_n, 50.0, spacing_m=10.0)
    batch_cmd = hold(batch)
    batch = step(model, batch, batch_cmd, 0.001)  # steady state: stepped once, so kept column-major (no first copy)

    batch_rate = batch_n / _seconds_per_call(lambda s: step(model, s, batch_cmd, 0.001), batch, batch_steps, repeats)
    pilot_n = PilotInput.centred(
        batch_n, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg
    )
    cstate_n = controller_state(batch_n)

    batch_control_rate = batch_n / _seconds_per_call(
        lambda cs: control(constants, cs, pilot_n, batch, 0.002)[0], cstate_n, batch_steps, repeats
    )
    fleet_rows = []
    for n in (1, 10, 100, 1000, 10_000):
        fleet = hover_state(model, trim, n, 50.0, spacing_m=10.0)
        fleet_cmd = hold(fleet)
        fleet = step(model, fleet, fleet_cmd, 0.001)  # steady state, as above
        fleet_steps = max(5 if quick else 10, (300 if quick else 2000) // n)

        def advance(s: VehicleState, fleet_cmd: ActuatorCommand = fleet_cmd) -> VehicleState:
            return step(model, s, fleet_cmd, 0.001)

        per_vehicle_us = _seconds_per_call(advance, fleet, fleet_steps, repeats) / n * 1e6
        fleet_rows.append(Result("step", f"fleet_step_us_per_vehicle_n{n}", round(per_vehicle_us, 3), "us"))
    # default rates: controller at 500 Hz, physics at 1 kHz: half a controller cycle per step
    share_us = step_us + 0.5 * control_us
    both_rate = 1.0 / (1.0 / batch_rate + 0.5 / batch_control_rate)
    limits, jsbsim_us = _step_limits(model, batch, batch_cmd, batch_rate, step_us, repeats, steps)
    compiled = _compiled_step(
        model, constants, (single, single_cmd, cstate1, pilot1), (batch, batch_cmd, cstate_n, pilot_n),
        (steps, batch_steps, repeats), (step_us, batch_rate, both_rate, jsbsim_us),
    )  # fmt: skip
    return [
        Result("step", "single_step_us", round(step_us, 2), "us"),
        Result("step", "controller_cycle_us", round(control_us, 2), "us"),
        Result("step", "per_physics_step_us", round(share_us, 2), "us"),
        Result("step", "one_vehicle_cpu_share", round(share_us * 1e-6 * 1000.0, 4), "cores"),
        Result("step", "headless_realtime_factor", round(1000.0 / share_us, 1), "x"),
        Result("step", "batch_vehicle_steps_per_s", round(batch_rate), "1/s"),
        Result("step", "batch_controller_cycles_per_s", round(batch_control_rate), "1/s"),
        Result("step", "batch_size", batch_n, "vehicles"),
        Result("step", "batch_physics_and_controller_per_s", round(both_rate), "1/s"),
        *fleet_rows,
        *limits,
        *compiled,
    ]


def _seconds_per_call(advance: Callable[[Any], Any], start: Any, calls: int, repeats: int) -> float:
    """Seconds per call of ``advance`` chained ``calls`` times from ``start`` (each call takes the last
    one's result: a state stepped on), the median of ``repeats`` runs."""

    def run() -> None:
        value = start
        for _ in range(calls):
            value = advance(value)

    return median_time(run, repeats) / calls


def _step_limits(
    model: FlightModel,
    batch: VehicleState,
    batch_cmd: ActuatorCommand,
    batch_rate: float,
    step_us: float,
    repeats: int,
    steps: int,
) -> tuple[list[Result], float | None]:
    """The limits the step figures are measured against (``sim.bench_limits``), in this run; and
    JSBSim's step (us), None where JSBSim is not installed."""
    calls = count_kernel_calls(model, batch, batch_cmd, 0.001)
    element_ns = elementwise_ns_per_element(batch.count, repeats)
    floor_rate = 1e9 / (calls * element_ns)
    rows = [
        Result("step", "batch_numpy_calls_per_step", calls, "calls"),
        Result("step", "numpy_elementwise_ns_per_element", round(element_ns, 3), "ns"),
        Result("step", "batch_numpy_floor_vehicle_steps_per_s", round(floor_rate), "1/s"),
        Result("step", "batch_share_of_numpy_floor", round(batch_rate / floor_rate, 3), "x"),
    ]
    jsbsim_us = jsbsim_run_us(steps, repeats)
    if jsbsim_us is not None:
        rows += [
            Result("step", "jsbsim_ah1s_run_us", round(jsbsim_us, 2), "us"),
            Result("step", "single_step_speed_vs_jsbsim", round(jsbsim_us / step_us, 3), "x"),
        ]
    return rows, jsbsim_us


def _compiled_step(
    model: FlightModel, constants: ControllerConstants, single: tuple, batch: tuple, counts: tuple, numpy: tuple
) -> list[Result]:
    """The same figures with the compiled kernels (``sim.compiled``), and their ratios to the numpy
    ones of this run: ``single`` and ``batch`` are (state, command, controller state, pilot);
    ``counts`` (single steps, batch steps, repeats); ``numpy`` (single step us, batch rate, physics
    and controller rate, JSBSim us or None).  None of them without numba (said in the log)."""
    if not compiled_available():
        log.warning("bench step: no compiled-kernel figures: numba is not installed (pip install 'heli-sim[fast]')")
        return []
    kernels = compiled_kernels()
    steps, batch_steps, repeats = counts
    step_us, batch_rate, both_rate, jsbsim_us = numpy
    vehicle, command, controller, pilot = single
    fleet, fleet_command, fleet_controller, fleet_pilot = batch
    build_s = kernels.warm_up(model, constants)  # compiling, or loading the machine code cached on disk

    single_us = _seconds_per_call(lambda s: kernels.steps(model, s, command, 0.001), vehicle, steps, repeats) * 1e6
    control_us = (
        _seconds_per_call(
            lambda cs: kernels.control(constants, cs, pilot, vehicle, 0.002)[0], controller, steps, repeats
        )
        * 1e6
    )
    rate = fleet.count / _seconds_per_call(
        lambda s: kernels.steps(model, s, fleet_command, 0.001), fleet, batch_steps, repeats
    )
    control_rate = fleet.count / _seconds_per_call(
        lambda cs: kernels.control(constants, cs, fleet_pilot, fleet, 0.002)[0], fleet_controller, batch_steps, repeats
    )
    both = 1.0 / (1.0 / rate + 0.5 / control_rate)
    rows = [
        Result("step", "compiled_build_s", round(build_s, 2), "s"),
        Result("step", "compiled_single_step_us", round(single_us, 2), "us"),
        Result("step", "compiled_controller_cycle_us", round(control_us, 2), "us"),
        Result("step", "compiled_batch_vehicle_steps_per_s", round(rate), "1/s"),
        Result("step", "compiled_batch_controller_cycles_per_s", round(control_rate), "1/s"),
        Result("step", "compiled_batch_physics_and_controller_per_s", round(both), "1/s"),
        Result("step", "compiled_single_step_speedup", round(step_us / single_us, 2), "x"),
        Result("step", "compiled_batch_speedup", round(rate / batch_rate, 2), "x"),
        Result("step", "compiled_physics_and_controller_speedup", round(both / both_rate, 2), "x"),
    ]
    if jsbsim_us is not None:
        rows.append(Result("step", "compiled_single_step_speed_vs_jsbsim", round(jsbsim_us / single_us, 3), "x"))
    return rows


BENCHMARKS: dict[str, Callable[..., list[Result]]] = {"step": bench_step}


def fly_with_ports(
    ports: tuple[PortSpec, ...], io_mode: str, duration_s: float, fleet: int, view: ViewOptions | None = None
) -> FlightLoop:
    """A hovering T-Rex 450 flight with ``ports`` (``view``: a ``sim.session.ViewOptions`` to watch it)."""
    config = apply_overrides(
        FlightConfig(), heli="trex450", fleet=fleet, start="hover", io=io_mode, duration_s=duration_s
    )
    with flight_session(replace(config, ports=ports), load_heli("trex450"), view=view) as loop:
        loop.run()
    return loop


@dataclass(frozen=True)
class IoSizes:
    """How much ``bench io`` measures: the link counts and round trips swept, how long each flight is."""

    counts: tuple[int, ...]  # slow links, for the period against the number of links
    round_trips_ms: tuple[float, ...]  # of each of three links, for the period against the round trip
    flight_s: float  # a threaded or asyncio flight of the sweeps
    blocking_min_s: float  # a blocking flight of the sweeps lasts at least this ...
    blocking_periods: int  # ... and at least this many of its (long) periods
    lateness_s: float  # each flight (and bare loop) of the lateness comparison
    rounds: int  # alternating rounds of the lateness comparison (medians reported)
    rtt_flight_s: float = 1.0  # the round-trip sweep: a threaded or asyncio flight
    rtt_blocking_min_s: float = 1.5  # the round-trip sweep: a blocking flight, at least this ...
    rtt_blocking_periods: int = 6  # ... and this many periods
    busy_links: int = 5  # the lateness comparison's busy flight: the default ports and this many slow links


IO_FULL = IoSizes(tuple(range(1, 9)), (10.0, 30.0, 100.0, 200.0), 2.0, 2.0, 6, 4.0, 3)
IO_QUICK = IoSizes((1, 3, 5), (10.0, 100.0), 1.0, 1.5, 3, 2.0, 1)


def bench_io(
    quick: bool = False, latency_ms: float = 100.0, figures: dict | None = None, sizes: IoSizes | None = None
) -> list[Result]:
    """The seed in the simulator (N slow links served inline, by threads, by one event loop) and loop lateness.

    The sweep flies one helicopter with N link devices, so the loop's period is the I/O and not
    the physics catching up a fleet.  Lateness: the default flight (virtual transmitter, servo
    board, ground station; threaded, then asyncio) and the same with five 100 ms links busy, each
    against a bare sleep-to-deadline loop; three alternating rounds, medians reported.  Then three
    links at several round-trip times.  ``figures`` (a dict) receives the lateness histograms.
    ``sizes`` (default ``IO_QUICK`` or ``IO_FULL``) says how much to measure.
    """
    sizes = sizes or (IO_QUICK if quick else IO_FULL)
    histograms = {} if figures is None else figures.setdefault("lateness", {})
    return [
        *_io_slow_links(sizes, latency_ms, histograms),
        *_io_lateness(sizes, latency_ms, histograms),
        *_io_round_trips(sizes),
    ]


def _io_slow_links(sizes: IoSizes, latency_ms: float, histograms: dict) -> list[Result]:
    """The seed: the loop's period with N slow links served inline, by threads, by one event loop."""
    results: list[Result] = []
    latency_s = latency_ms / 1e3
    counts = sizes.counts
    for n in counts:
        links = tuple(PortSpec(role="link", name=f"link{i}", latency_ms=latency_ms) for i in range(n))
        periods = {}
        for mode in IO_MODES:
            if mode == "blocking":
                duration = max(sizes.blocking_min_s, sizes.blocking_periods * n * latency_s)
            else:
                duration = sizes.flight_s
            loop = fly_with_ports(links, mode, duration, fleet=1)
            (segment,) = loop.segments
            if n == counts[-1]:
                histograms[f"{mode}, {n} slow links"] = segment.lateness
            periods[mode] = (segment.period.quantile(0.5) or 0.0) * 1e3
            rates = [p["frames_in"] / loop.flight.sim_time_s for p in loop.summary()["ports"]]
            results.append(Result("io", f"{mode}_period_ms_n{n}", round(periods[mode], 2), "ms"))
            results.append(Result("io", f"{mode}_link_rate_hz_n{n}", round(statistics.median(rates), 2), "1/s"))
        theory_ms = n * latency_ms
        results.append(Result("io", f"theory_blocking_period_ms_n{n}", theory_ms, "ms"))
        results.append(Result("io", f"blocking_vs_theory_n{n}", round(periods["blocking"] / theory_ms, 3), "ratio"))
    return results


def _io_lateness(sizes: IoSizes, latency_ms: float, histograms: dict) -> list[Result]:
    """The loop's lateness with the default ports, and with five slow links busy beside them, each
    against a bare sleep-to-deadline loop: alternating rounds, medians."""
    results: list[Result] = []
    seconds = sizes.lateness_s
    default = (PortSpec(role="rc-in"), PortSpec(role="servo"), PortSpec(role="telemetry"))
    busy = (*default, *(PortSpec(role="link", name=f"link{i}", latency_ms=latency_ms) for i in range(sizes.busy_links)))
    for ports, prefix in ((default, "loop"), (busy, "busy_loop")):
        rounds: dict[str, list[float]] = {}
        for _ in range(sizes.rounds):
            bare = bare_loop_lateness(seconds)
            if prefix == "loop":
                histograms["bare sleep-to-deadline loop"] = bare
            rounds.setdefault("bare50", []).append(bare.sampled_quantile(0.5))
            rounds.setdefault("bare99", []).append(bare.sampled_quantile(0.99))
            for mode in ("threaded", "asyncio"):
                (segment,) = fly_with_ports(ports, mode, seconds, fleet=1).segments
                what = "default ports" if prefix == "loop" else "default + 5 links"
                histograms[f"{mode}, {what}"] = segment.lateness
                rounds.setdefault(f"{mode}50", []).append(segment.lateness.sampled_quantile(0.5))
                rounds.setdefault(f"{mode}99", []).append(segment.lateness.sampled_quantile(0.99))
        med = {key: statistics.median(values) for key, values in rounds.items()}
        bare_prefix = "bare_loop" if prefix == "loop" else "busy_bare_loop"
        for mode, metric_prefix in (("threaded", prefix), ("asyncio", f"asyncio_{prefix}")):
            for q in ("50", "99"):
                p_us = round(med[f"{mode}{q}"] * 1e6, 1)
                results.append(Result("io", f"{metric_prefix}_lateness_p{q}_us", p_us, "us"))
        for q in ("50", "99"):
            results.append(Result("io", f"{bare_prefix}_lateness_p{q}_us", round(med[f"bare{q}"] * 1e6, 1), "us"))
        for mode, metric_prefix in (("threaded", prefix), ("asyncio", f"asyncio_{prefix}")):
            for q in ("50", "99"):
                ratio = med[f"{mode}{q}"] / max(med[f"bare{q}"], 1e-9)
                results.append(Result("io", f"{metric_prefix}_lateness_p{q}_vs_bare", round(ratio, 2), "ratio"))
    return results


def _io_round_trips(sizes: IoSizes) -> list[Result]:
    """Three links at several round-trip times, in each I/O mode, against the blocking theory."""
    results: list[Result] = []
    links_n = 3
    for rtt_ms in sizes.round_trips_ms:
        links = tuple(PortSpec(role="link", name=f"link{i}", latency_ms=rtt_ms) for i in range(links_n))
        for mode in IO_MODES:
            if mode == "blocking":
                duration = max(sizes.rtt_blocking_min_s, sizes.rtt_blocking_periods * links_n * rtt_ms / 1e3)
            else:
                duration = sizes.rtt_flight_s
            (segment,) = fly_with_ports(links, mode, duration, fleet=1).segments
            period_ms = (segment.period.quantile(0.5) or 0.0) * 1e3
            results.append(Result("io", f"{mode}_period_ms_rtt{rtt_ms:g}", round(period_ms, 2), "ms"))
        results.append(Result("io", f"theory_blocking_period_ms_rtt{rtt_ms:g}", links_n * rtt_ms, "ms"))
    return results


BENCHMARKS["io"] = bench_io


def _protocol_stream(protocol: str, frames: int, rng: np.random.Generator) -> tuple[list[bytes], object]:
    """``frames`` encoded stick frames of ``protocol`` (varying sticks) and a decoder factory."""
    from sim.ports.codecs import make_codec

    host, device = make_codec(protocol, "host"), make_codec(protocol, "device")
    encoded = []
    for i in range(frames):
        sticks = tuple(float(v) for v in rng.integers(1000, 2001, 16))
        encoded.append(device.encode(device.stick_message(0, sticks), i % 65536))
    return encoded, host.new_decoder


def bench_protocols(quick: bool = False) -> list[Result]:
    """Decode throughput per protocol through the port's codec: from a byte stream in 4 KiB chunks,
    in 64-byte chunks (a USB full-speed packet), and with 30 % random garbage interleaved between
    frames (and how many frames the garbage cost)."""
    results: list[Result] = []
    rng = np.random.default_rng(2026)
    count = 2_000 if quick else 20_000
    repeats = 3 if quick else 5
    for protocol in protocols_for("rc-in"):
        frames, new_decoder = _protocol_stream(protocol, count, rng)
        clean = b"".join(frames)
        garbage_bytes = int(len(clean) * 0.3 / 0.7)
        cuts = np.sort(rng.integers(0, count, garbage_bytes // 8))  # garbage in runs of about 8 bytes
        noise = rng.integers(0, 256, garbage_bytes, dtype=np.uint8).tobytes()
        pieces, at, used = [], 0, 0
        run = max(1, garbage_bytes // max(1, len(cuts)))
        for index, frame in enumerate(frames):
            while at < len(cuts) and cuts[at] == index:
                pieces.append(noise[used : used + run])
                used += run
                at += 1
            pieces.append(frame)
        dirty = b"".join(pieces)
        for label, stream, chunk_size in (
            ("", clean, 4096),
            ("_64_byte_chunks", clean, 64),
            ("_with_garbage", dirty, 4096),
        ):
            chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
            decoded = [0]

            def decode(chunks: list[bytes] = chunks, new_decoder=new_decoder, decoded: list[int] = decoded) -> None:
                decoder = new_decoder()
                decoded[0] = sum(len(decoder.feed(chunk)) for chunk in chunks)

            seconds = median_time(decode, repeats)
            metric = f"decode_frames_per_s{label}"
            results.append(Result("protocols", metric, round(decoded[0] / seconds), "1/s", protocol))
            if label == "_with_garbage":
                recovered = round(decoded[0] / count, 4)
                results.append(Result("protocols", "frames_recovered_with_garbage", recovered, "ratio", protocol))
    return results


BENCHMARKS["protocols"] = bench_protocols


def bench_view(quick: bool = False) -> list[Result]:
    """Frames per second of the view at 1280x720, and loop lateness with the view on vs off."""
    from sim.view.bench import bench_view as run  # pygame only when this benchmark runs

    return run(quick)


BENCHMARKS["view"] = bench_view


def bench_gil(quick: bool = False) -> list[Result]:
    """The seed's experiments (threads vs serial) and the loop with the CPU helper off/thread/process."""
    from sim.bench_gil import bench_gil as run

    return run(quick)


BENCHMARKS["gil"] = bench_gil


def bench_msp(quick: bool = False) -> list[Result]:
    """MSP identification and reply times over a pty, in each I/O mode."""
    from sim.bench_msp import bench_msp as run

    return run(quick)


BENCHMARKS["msp"] = bench_msp


def bench_fleet(quick: bool = False) -> list[Result]:
    """A fleet of 8,000 stepped by 1..cores worker processes, and by threads, against one process."""
    from sim.bench_fleet import bench_fleet as run

    return run(quick)


BENCHMARKS["fleet"] = bench_fleet


def bench_startup(quick: bool = False) -> list[Result]:
    """From the command to the first tick of the default headless flight, against importing numpy and pyserial."""
    from sim.bench_startup import bench_startup as run

    return run(quick)


BENCHMARKS["startup"] = bench_startup


def bench_soak(quick: bool = False, duration_s: float | None = None, announce=None) -> list[Result]:
    """The seed demo for a long time (10 min; --quick 30 s) with faults and toggles: losses, memory."""
    from sim.bench_soak import bench_soak as run

    return run(quick, duration_s, announce)


BENCHMARKS["soak"] = bench_soak
ON_REQUEST = ("soak",)  # long: run only when named
