"""``heli-sim bench --plot``: the figures are drawn from real benchmark runs and are not empty;
without matplotlib, or for a benchmark without a figure, the option is a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest

ROOT = Path(__file__).resolve().parent.parent


def heli_sim(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def drawn(path: Path) -> np.ndarray:
    """The PNG's pixels, (width, height, 3)."""
    return pygame.surfarray.array3d(pygame.image.load(str(path)))


def colours_of(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


# bench io at its smallest: a few tenths of a second per flight, one link count, one slow link in the
# busy flight, one round trip (the plot is what is tested here; `heli-sim bench io --quick` is the same code with
# longer flights).  In a child process: matplotlib keeps its font files open for the process's life.
SMALLEST_IO = dict(counts=[1], round_trips_ms=[100.0], flight_s=0.3, blocking_min_s=0.3, blocking_periods=2,
                   lateness_s=0.3, rounds=1, rtt_flight_s=0.3, rtt_blocking_min_s=0.3, rtt_blocking_periods=2,
                   busy_links=1)  # fmt: skip
_BENCH_IO = """
import json, sys
from sim.bench.io import IoSizes, bench_io
from sim.plots import plot
sizes = IoSizes(**{key: tuple(v) if isinstance(v, list) else v for key, v in json.loads(sys.argv[1]).items()})
figures = {}
results = bench_io(figures=figures, sizes=sizes)
plot("io", results, figures, sys.argv[2])
print(json.dumps({r.metric: r.value for r in results}))
"""


@pytest.mark.realtime
def test_bench_io_draws_period_against_links_and_round_trip_and_the_lateness_tails(tmp_path):
    figure = tmp_path / "io.png"
    result = subprocess.run([sys.executable, "-c", _BENCH_IO, json.dumps(SMALLEST_IO), str(figure)], cwd=ROOT,
                            capture_output=True, text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = drawn(figure)
    assert image.shape == (1600, 500, 3) and colours_of(image) > 50
    # the mode colours of the lines are there: blocking red, threaded green, asyncio blue
    for colour in ((0xC4, 0x2E, 0x2E), (0x24, 0x96, 0x48), (0x30, 0x68, 0xC8)):
        assert (np.abs(image.reshape(-1, 3).astype(int) - colour).sum(axis=1) < 30).sum() > 200, colour
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    # three 100 ms waits in turn (load only adds to them); threads and the event loop overlap them:
    # judged against the blocking period measured in the same run
    assert metrics["blocking_period_ms_rtt100"] >= 3 * 100.0
    assert 10 * metrics["threaded_period_ms_rtt100"] < metrics["blocking_period_ms_rtt100"]
    assert 10 * metrics["asyncio_period_ms_rtt100"] < metrics["blocking_period_ms_rtt100"]
    assert metrics["theory_blocking_period_ms_rtt100"] == 300.0 and metrics["theory_blocking_period_ms_n1"] == 100.0
    assert metrics["blocking_period_ms_n1"] >= 100.0 > 10 * metrics["threaded_period_ms_n1"]


def test_bench_step_draws_the_cost_per_vehicle_against_fleet_size(tmp_path):
    figure = tmp_path / "step.png"
    result = heli_sim("bench", "step", "--quick", "--plot", str(figure))
    assert result.returncode == 0, result.stderr
    assert f"figure: {figure}" in result.stdout
    image = drawn(figure)
    assert image.shape == (800, 500, 3) and colours_of(image) > 30
    per_vehicle = [
        float(line.split()[1].replace(",", ""))
        for line in result.stdout.splitlines()
        if "fleet_step_us_per_vehicle_n" in line
    ]  # fmt: skip  (the table: metric, value, unit)
    assert len(per_vehicle) == 5 and per_vehicle[-1] < per_vehicle[0]  # a batch amortises the overhead


def test_several_benchmarks_get_one_figure_each(tmp_path):
    result = heli_sim("bench", "step", "protocols", "--quick", "--plot", str(tmp_path / "b.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b.png").exists() and not (tmp_path / "b-protocols.png").exists()


def test_plot_errors_are_one_line(tmp_path):
    result = heli_sim("bench", "gil", "--plot", str(tmp_path / "g.png"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--plot: none of gil has a figure; expected one of io, step" in result.stderr
    # a machine without matplotlib: an import that fails, as it would there
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(blocker.parent)}
    result = heli_sim("bench", "step", "--plot", str(tmp_path / "s.png"), env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "pip install 'heli-sim[plot]'" in result.stderr and not (tmp_path / "s.png").exists()
