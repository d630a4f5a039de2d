"""``heli-sim bench io``: the seed's experiment in the simulator: one helicopter, N links each
answering after a delay, flown with blocking and with threaded I/O (the loop's lateness, the
links' round trips), against the theory of a serial loop."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from sim.bench.common import Result, bare_loop_lateness
from sim.config import IO_MODES, FlightConfig, PortSpec, apply_overrides, load_heli
from sim.loop import FlightLoop
from sim.session import ViewOptions, flight_session

__all__ = ["IO_FULL", "IO_QUICK", "IoSizes", "bench_io", "fly_with_ports"]


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
