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
from sim.bench import Result

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


PLOTTERS: dict[str, Callable[[list[Result], dict, str], None]] = {"io": plot_io, "step": plot_step}


def plot(name: str, results: list[Result], figures: dict, path: str) -> str:
    """Draw benchmark ``name``'s figure into ``path``; returns the path written."""
    PLOTTERS[name](results, figures, path)
    return str(Path(path))
