"""``heli-sim bench startup``: the first tick against importing numpy and pyserial, in one run."""

from __future__ import annotations

from sim.bench.startup import bench_startup
from sim.runtime import process_age_s


def test_the_process_knows_how_old_it_is():
    age = process_age_s()
    assert age is not None and 0.0 < age < 24 * 3600.0  # this test process: started before this line


def test_startup_figures_come_in_one_run_with_their_ratio():
    figures = {r.metric: r for r in bench_startup(quick=True)}
    assert set(figures) == {"import_numpy_serial_s", "first_tick_s", "first_tick_no_ports_s", "first_tick_vs_import"}
    assert 0.0 < figures["import_numpy_serial_s"].value < figures["first_tick_s"].value
    # (the emulators are forks: ports cost tens of milliseconds, within a busy machine's noise; the two are
    # labelled the right way round if the flight without ports is not far slower than the one with them)
    assert figures["first_tick_no_ports_s"].value < 1.5 * figures["first_tick_s"].value
    assert figures["first_tick_vs_import"].unit == "x" and figures["first_tick_vs_import"].value > 1.0
