"""Figures for ``heli-sim bench --plot FILE``, drawn with matplotlib (the optional ``plot`` extra).

Each plotter takes a benchmark's ``Result`` rows (and the histograms it measured) and writes a
PNG: what the numbers say, as a picture.  matplotlib is imported only here, with the Agg backend,
so the simulator never needs it and a headless machine can draw.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from heli.errors import ConfigError
from sim.bench.common import Result

__all__ = ["PLOTTERS", "check_available", "plot"]

_MODE_COLOURS = {"threaded": "#249648", "blocking": "#c42e2e", "asyncio": "#3068c8", "theory": "#555555"}


def check_available() -> None:
    """Raise ``ConfigError`` (one line) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'heli-sim[plot]'") from None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(results: list[Result], pattern: str) -> dict[str, list[tuple[float, float]]]:
    """``{group: [(x, value)]}`` for metrics matching ``pattern`` (groups ``mode`` and ``x``)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        match = re.fullmatch(pattern, r.metric)
        if match:
            out.setdefault(match["mode"], []).append((float(match["x"]), float(r.value)))
    return {mode: sorted(points) for mode, points in out.items()}


_MODE_STYLES = {"threaded": "-o", "blocking": "-o", "asyncio": ":s", "theory": "--"}  # asyncio dotted: it
# lies on top of threaded
_SCENARIO_STYLES = (("default + 5 links", "-."), ("default ports", "--"))  # lateness curves, else solid


def _lines(axis, series: dict[str, list[tuple[float, float]]]) -> None:
    for mode, points in series.items():
        xs, ys = zip(*points, strict=True)
        kind = mode.split("_")[0]
        label = "theory: N x round trip" if kind == "theory" else mode
        hollow = {"markerfacecolor": "none", "linewidth": 2.0} if kind == "asyncio" else {}
        axis.plot(xs, ys, _MODE_STYLES[kind], color=_MODE_COLOURS[kind], label=label, markersize=5, **hollow)


def plot_io(results: list[Result], figures: dict, path: str) -> None:
    """Loop period against the number of slow links and their round trip; lateness distributions."""
    plt = _pyplot()
    fig, (by_count, by_rtt, lateness) = plt.subplots(1, 3, figsize=(16, 5))
    count = _series(results, r"(?P<mode>threaded|blocking|asyncio|theory_blocking)_period_ms_n(?P<x>\d+)")
    _lines(by_count, count)
    by_count.set(xlabel="links answering after 100 ms", ylabel="loop period, median (ms)", yscale="log",
                 title="Blocking waits add up; threads and asyncio overlap them")  # fmt: skip
    rtt = _series(results, r"(?P<mode>threaded|blocking|asyncio|theory_blocking)_period_ms_rtt(?P<x>[\d.]+)")
    _lines(by_rtt, rtt)
    by_rtt.set(xlabel="round-trip time of each of 3 links (ms)", ylabel="loop period, median (ms)", yscale="log",
               title="Against the round-trip time")  # fmt: skip
    for axis in (by_count, by_rtt):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    for name, histogram in figures.get("lateness", {}).items():
        if not histogram.count:
            continue
        # the share of ticks later than x: the tail, where the I/O mode shows, reads off directly
        bins = [b for b in histogram.bins() if math.isfinite(b[1])]
        if not bins:
            continue
        xs, later, remaining = [max(bins[0][0], 1e-7) * 1e6], [1.0], histogram.count
        for _lower, upper, n in bins:
            remaining -= n
            xs.append(upper * 1e6)
            later.append(remaining / histogram.count if remaining > 0 else later[-1])  # the last step, drawn
        colour: str | None
        if name.startswith("bare"):
            style, colour = ":", "#777777"
        else:
            style = next((s for scenario, s in _SCENARIO_STYLES if name.endswith(scenario)), "-")
            colour = _MODE_COLOURS.get(name.split(",")[0])
        lateness.step(xs, later, where="post", linestyle=style, color=colour, label=name)
    lateness.set(xscale="log", yscale="log", xlabel="lateness against the deadline (us)",
                 ylabel="share of ticks later than that", title="Loop lateness: the tail per I/O mode")  # fmt: skip
    lateness.grid(True, which="both", alpha=0.3)
    lateness.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_step(results: list[Result], figures: dict, path: str) -> None:
    """Cost per vehicle-step against fleet size: one numpy kernel, overhead amortised."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 5))
    points = sorted(
        (float(m["n"]), float(r.value))
        for r in results
        if (m := re.fullmatch(r"fleet_step_us_per_vehicle_n(?P<n>\d+)", r.metric))
    )
    xs, ys = zip(*points, strict=True)
    axis.plot(xs, ys, "-o", color="#3068c8", label="physics step, per vehicle")
    budget_us = 1000.0  # a 1 ms physics step in real time: the whole fleet must fit in it
    axis.plot(xs, [budget_us / x for x in xs], "--", color="#555555", label="real-time budget per vehicle at 1 kHz")
    axis.set(xscale="log", yscale="log", xlabel="fleet size (vehicles)", ylabel="us per vehicle-step",
             title="One kernel for one vehicle and for ten thousand")  # fmt: skip
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_MAX_SERIES = 8


def plot_sweep(name: str, parameters: tuple[str, ...], grid: tuple[str, ...], rows: list[dict], metric: str,
               path: str) -> None:  # fmt: skip
    """A sweep's ``metric`` against its first parameter: a point per flight (crashed flights as
    crosses), a series per value of the second grid parameter (up to eight), and each series'
    median at each value."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 5))
    x_key = parameters[0]
    others = [key for key in grid if key != x_key]
    series_key = others[0] if others and len({str(r[others[0]]) for r in rows}) <= _MAX_SERIES else None
    groups: dict[object, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[series_key] if series_key else None, []).append(row)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (value, members) in enumerate(groups.items()):
        colour = colours[index % len(colours)]
        label = f"{series_key.split('.', 1)[1]} = {value}" if series_key else None
        flying = [(r[x_key], r[metric]) for r in members if not r["crashed"] and _finite(r[metric])]
        crashed = [(r[x_key], r[metric]) for r in members if r["crashed"] and _finite(r[metric])]
        if flying:
            axis.plot(*zip(*flying, strict=True), "o", color=colour, alpha=0.6, label=label)
        if crashed:
            axis.plot(*zip(*crashed, strict=True), "x", color=colour, markersize=9,
                      label=f"{label}, crashed" if label else "crashed")  # fmt: skip
        by_x: dict[float, list[float]] = {}
        for x, y in flying:
            by_x.setdefault(x, []).append(y)
        if len(by_x) > 1:
            xs = sorted(by_x)
            axis.plot(xs, [sorted(by_x[x])[len(by_x[x]) // 2] for x in xs], "-", color=colour, alpha=0.8)
    xs = [r[x_key] for r in rows if _finite(r[x_key])]
    if xs and min(xs) > 0 and max(xs) >= 20 * min(xs):  # values over decades (gains): a log axis
        axis.set_xscale("log")
    axis.set(xlabel=x_key, ylabel=metric, title=f"sweep: {name}")
    axis.grid(True, alpha=0.3)
    if series_key or any(r["crashed"] for r in rows):
        axis.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


PLOTTERS: dict[str, Callable[[list[Result], dict, str], None]] = {"io": plot_io, "step": plot_step}


def plot(name: str, results: list[Result], figures: dict, path: str) -> str:
    """Draw benchmark ``name``'s figure into ``path``; returns the path written."""
    PLOTTERS[name](results, figures, path)
    return str(Path(path))
