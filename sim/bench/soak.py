"""``heli-sim bench soak``: the seed demo flown for a long time with faults and live toggles.

The flight is ``configs/seed-demo.toml`` (five helicopters, an RC receiver and five 100 ms
links) plus a servo board and a ground station, with a fault injected every few seconds (every
kind in turn) and the I/O mode switched every few seconds (through every ordered pair of the
three modes: threaded, blocking, asyncio).  What it checks is what a long flight
must not do: lose or repeat a frame the simulator was not told to lose, leak memory, fall over.

Frames lost on purpose are told apart from frames lost by the simulator by when the sequence
check saw the gap: while a fault that destroys frames was on that port, or within a grace
period after it (the gap shows when the next frame arrives), the loss is the fault's; any other
gap or repeat is the simulator's, and the target is none.  One more cause is counted apart: in
blocking mode a tick stretched by a fault can outlast the OS buffer of a busy input (the seed
demo's transmitter fills a pty's 20 KiB in 0.7 s), and the device then drops what it cannot
write; it counts those drops, so they are reported as ``frames_dropped_unread``.  On the far ends (counted by the
emulated devices), each write cut by its timeout under backpressure explains up to two missing
frames, and each unanswered request one.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from sim import stopping
from sim.bench.common import Result
from sim.config import FaultSpec, PortSpec, apply_overrides, configs_dir, load_flight, load_heli
from sim.loop import FlightLoop
from sim.session import flight_session

__all__ = ["SoakPlan", "bench_soak", "soak_faults"]

# faults that destroy frames on the port they act on (their gaps are expected)
_LOSSY = {"byte_loss", "corrupt", "rc_silence", "unplug", "backpressure"}
_GRACE_S = 1.5  # a gap shows with the first frame after the loss; a restarted device needs ~0.5 s
_RSS_EVERY_S = 1.0
# from threaded: every ordered pair of the three I/O modes once per round of six switches
SWITCH_ORDER = ("blocking", "asyncio", "threaded", "asyncio", "blocking", "threaded")


@dataclass(frozen=True)
class SoakPlan:
    """How long, how often: a fault every ``fault_every_s`` for ``fault_s``; a toggle every ``toggle_every_s``."""

    duration_s: float
    fault_every_s: float = 6.0
    fault_s: float = 2.0
    toggle_every_s: float = 3.5  # not a multiple of the fault period: toggles land in every phase


def soak_faults(plan: SoakPlan) -> tuple[FaultSpec, ...]:
    """Every fault kind in turn, on the soak's ports, from 2 s in until the end (but packet_loss, which acts
    on a firmware's link only: the soak flies heli-sim's own controller)."""
    cycle = (
        dict(kind="byte_loss", port="rc-in", rate=0.02),
        dict(kind="unplug", port="link0"),
        dict(kind="latency", port="link1", latency_ms=100.0),
        dict(kind="corrupt", port="rc-in", rate=0.01),
        dict(kind="backpressure", port="servo0"),
        dict(kind="rc_silence"),
        dict(kind="pace", port="servo0", baud=9600),
        dict(kind="loop_delay", delay_ms=30.0, every_s=0.5),
        dict(kind="backpressure", port="telemetry"),
        dict(kind="unplug", port="rc-in"),
        dict(kind="gust", gust_east_m_s=4.0, gust_length_m=10.0),
    )
    faults: list[FaultSpec] = []
    start = 2.0
    while start + plan.fault_s <= plan.duration_s:
        settings = cycle[len(faults) % len(cycle)]
        faults.append(FaultSpec(start_s=start, duration_s=plan.fault_s, **settings))
        start += plan.fault_every_s
    return tuple(faults)


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class _Watch:
    """Called before every tick: toggles, memory samples, and who lost which frame."""

    plan: SoakPlan
    faults: tuple[FaultSpec, ...]
    toggles: int = 0
    resets: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)
    explained: dict[str, int] = field(default_factory=dict)  # port -> gaps and repeats during its faults
    unexplained_gaps: dict[str, int] = field(default_factory=dict)
    unexplained_repeats: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    _next_toggle_s: float = 0.0
    _next_rss_s: float = 0.0

    def __post_init__(self) -> None:
        self._next_toggle_s = self.plan.toggle_every_s

    def _excused(self, port: str, t_s: float) -> bool:
        """Whether a gap on ``port`` seen at ``t_s`` (simulated flight time, the faults' own) is a fault's."""
        for fault in self.faults:
            if fault.target != port or fault.kind not in _LOSSY:
                continue
            if fault.start_s <= t_s <= fault.start_s + fault.duration_s + _GRACE_S:
                return True
        return False

    def __call__(self, loop: FlightLoop) -> None:
        t_s = loop.clock.now() - loop.t0
        if t_s >= self.plan.duration_s:  # wall clock: a reset sets simulated time back to zero
            loop.request_stop("soak done")
        if t_s >= self._next_toggle_s:
            if loop.io_mode == "blocking" and loop.flight.vehicles.crashed.any():
                loop.command("reset")  # the seed's blocking loop crashes them: back on the pad, fly on
                self.resets += 1
            loop.request_io_mode(SWITCH_ORDER[self.toggles % len(SWITCH_ORDER)])
            self.toggles += 1
            self._next_toggle_s += self.plan.toggle_every_s
        if t_s >= self._next_rss_s:
            self.rss.append((t_s, _rss_mib()))
            self._next_rss_s += _RSS_EVERY_S
        for port in getattr(loop.io, "ports", []):
            check = port.stats.rx_sequence
            gaps, repeats = self._seen.get(port.name, (0, 0))
            if check.gaps == gaps and check.repeats == repeats:
                continue
            self._seen[port.name] = (check.gaps, check.repeats)
            new_gaps, new_repeats = check.gaps - gaps, check.repeats - repeats
            name = port.name
            if self._excused(name, loop.flight_time_s):
                self.explained[name] = self.explained.get(name, 0) + new_gaps + new_repeats
            else:
                self.unexplained_gaps[name] = self.unexplained_gaps.get(name, 0) + new_gaps
                self.unexplained_repeats[name] = self.unexplained_repeats.get(name, 0) + new_repeats


def bench_soak(
    quick: bool = False, duration_s: float | None = None, announce: Callable[[str], None] | None = None
) -> list[Result]:
    """Fly the seed demo with faults and toggles; count frames, errors, reconnects, memory.

    ``announce`` is told what the soak will do once the ports are open (the CLI prints it).
    """
    plan = SoakPlan(duration_s or (30.0 if quick else 600.0))
    faults = soak_faults(plan)
    config = load_flight(configs_dir() / "seed-demo.toml")
    ports = (*(config.ports or ()), PortSpec(role="servo"), PortSpec(role="telemetry"))
    config = apply_overrides(replace(config, ports=ports, faults=faults), duration_s=0.0, seed=1)
    watch = _Watch(plan, faults)
    box: list[FlightLoop] = []
    heli = load_heli(config.flight.heli)

    def on_stop(signum: int) -> None:  # from the signal handler (sim.stopping): sets values only
        for loop in box:
            loop.request_stop(signal.Signals(signum).name)

    # Ctrl-C or SIGTERM: before the soak starts, it ends with no figures (sim.stopping.Stopped); once
    # it runs, it ends early, in order, with the figures so far
    with stopping.handling_stops(on_stop):
        with flight_session(config, heli, before_tick=watch) as loop:
            box.append(loop)  # first: a signal from now on stops the loop itself
            stopping.check()  # one came while the ports were opening: the soak never started
            if announce is not None:
                announce(
                    f"soak: the seed demo for {plan.duration_s:g} s, a fault every {plan.fault_every_s:g} s, a "
                    f"toggle every {plan.toggle_every_s:g} s (Ctrl-C ends it early with the figures so far)"
                )
            loop.run()  # a signal during the announcement has stopped it already: no tick, still figures
        signum = stopping.requested()
    results = _results(loop, watch, plan)
    if signum is not None:
        results.append(Result("soak", "interrupted_by_signal", signum, "signal"))
    return results


def _results(loop: FlightLoop, watch: _Watch, plan: SoakPlan) -> list[Result]:
    summary = loop.summary()
    ports = summary["ports"]

    def total(key: str) -> int:
        return sum(p[key] for p in ports)

    lost, duplicated, far_excused = dict(watch.unexplained_gaps), dict(watch.unexplained_repeats), 0
    unread = 0
    for port in ports:
        ends = port.get("far_end") or []
        name = port["name"]
        # frames the device could not write because nobody read its port for longer than the OS
        # buffer lasts (blocking mode, a tick stretched by a fault): the seed's lesson, counted apart
        dropped = min(lost.get(name, 0), sum(e.get("write_drops", 0) for e in ends))
        lost[name] = lost.get(name, 0) - dropped
        unread += dropped
        gaps = sum(e.get("rx_sequence_gaps", 0) for e in ends)
        # a write cut by its timeout costs the far end that frame, and the next one if its decoder
        # read into it; a request left unanswered, at most itself
        excused = min(gaps, 2 * port["write_timeouts"] + port.get("frames_dropped", 0) + port["timeouts"])
        far_excused += excused
        lost[f"{name} (far end)"] = gaps - excused
        duplicated[f"{name} (far end)"] = sum(e.get("rx_sequence_repeats", 0) for e in ends)
    segments = summary["segments"]
    samples = [(t, m) for t, m in watch.rss if t >= min(10.0, plan.duration_s / 3)]  # after warm-up
    if len(samples) >= 3:
        times, mib = np.array(samples).T
        slope = float(np.polyfit(times, mib, 1)[0]) * 3600.0
    else:
        slope = float("nan")
    return [
        Result("soak", "duration_s", round(segments[-1]["t_end_s"], 1), "s"),
        Result("soak", "ticks", sum(s["ticks"] for s in segments), "ticks"),
        Result("soak", "toggles", watch.toggles, "switches"),
        Result("soak", "crashes", sum(e["kind"] == "crash" for e in summary["events"]), "crashes"),
        Result("soak", "resets", watch.resets, "resets"),
        Result("soak", "faults_injected", len(summary.get("faults", [])), "faults"),
        Result("soak", "frames_in", total("frames_in"), "frames"),
        Result("soak", "frames_out", total("frames_out"), "frames"),
        Result("soak", "decode_errors", total("decode_errors"), "frames"),
        Result("soak", "timeouts", total("timeouts"), "replies"),
        Result("soak", "write_timeouts", total("write_timeouts"), "writes"),
        Result("soak", "disconnects", total("disconnects"), "times"),
        Result("soak", "reconnects", total("reconnects"), "times"),
        Result("soak", "frames_lost_to_faults", sum(watch.explained.values()) + far_excused, "frames"),
        Result("soak", "frames_dropped_unread", unread, "frames"),
        Result("soak", "frames_lost", sum(lost.values()), "frames"),
        Result("soak", "frames_duplicated", sum(duplicated.values()), "frames"),
        *(Result("soak", f"frames_lost_on {name}", n, "frames") for name, n in lost.items() if n),
        *(Result("soak", f"frames_duplicated_on {name}", n, "frames") for name, n in duplicated.items() if n),
        Result("soak", "missed_deadlines_threaded", _missed(segments, "threaded"), "ticks"),
        Result("soak", "missed_deadlines_blocking", _missed(segments, "blocking"), "ticks"),
        Result("soak", "missed_deadlines_asyncio", _missed(segments, "asyncio"), "ticks"),
        Result("soak", "rss_start_mib", round(samples[0][1] if samples else float("nan"), 1), "MiB"),
        Result("soak", "rss_end_mib", round(samples[-1][1] if samples else float("nan"), 1), "MiB"),
        Result("soak", "rss_growth_mib", round(samples[-1][1] - samples[0][1], 1) if samples else float("nan"), "MiB"),
        Result("soak", "rss_growth_mib_per_hour", round(slope, 2), "MiB/h"),
    ]


def _missed(segments: list[dict], mode: str) -> int:
    return sum(s["missed_deadlines"] for s in segments if s["io_mode"] == mode)
