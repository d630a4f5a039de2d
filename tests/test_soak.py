"""``heli-sim bench soak``: the seed demo with faults and toggles loses and repeats no frame it
was not told to lose, and Ctrl-C ends it early with the figures so far."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim.bench.soak import SoakPlan, soak_faults
from sim.config import FAULT_KINDS
from tests.helpers import SIGNAL_ALLOWANCE_S, StderrLines, exit_seconds

ROOT = Path(__file__).resolve().parent.parent


def test_a_long_soak_injects_every_kind_of_fault_in_turn():
    plan = SoakPlan(600.0)
    faults = soak_faults(plan)
    assert {f.kind for f in faults} == set(FAULT_KINDS) - {"packet_loss"}  # that one needs firmware in the loop
    starts = [f.start_s for f in faults]
    assert starts == sorted(starts) and set(np.diff(starts)) == {plan.fault_every_s}
    assert all(f.start_s + f.duration_s <= plan.duration_s for f in faults)


def soak(*args: str) -> tuple[subprocess.Popen, float]:
    """``bench soak ARGS`` started; (the process, when it announced the soak: its loop starts then)."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "bench", "soak", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    StderrLines(proc).wait_for("soak: the seed demo for", timeout_s=60)
    return proc, time.monotonic()


@pytest.mark.realtime
def test_a_short_soak_loses_nothing_and_ctrl_c_ends_one_early_as_promptly_as_it_ends_on_its_own(tmp_path):
    # 13 s: the byte loss on the RC line (2-4 s), link0 unplugged (8-10 s) and back, three switches
    # (3.5, 7, 10.5 s: threaded -> blocking -> asyncio -> threaded); the figures, and how long the
    # soak takes to shut down after its loop ends, the reference for Ctrl-C below
    out = tmp_path / "soak.json"
    with contextlib.ExitStack() as stack:
        proc, announced = soak("--duration", "13", "--json", str(out))
        stack.callback(_end, proc)
        stdout, _err = proc.communicate(timeout=120)
        exited = time.monotonic()
    assert proc.returncode == 0
    figures = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    assert figures["frames_lost"] == 0 and figures["frames_duplicated"] == 0, figures
    assert figures["toggles"] == 3 and figures["faults_injected"] == 2  # threaded, blocking and asyncio flown
    assert {"missed_deadlines_threaded", "missed_deadlines_blocking", "missed_deadlines_asyncio"} <= set(figures)
    assert figures["frames_lost_to_faults"] > 0  # the byte loss on the RC line
    assert figures["disconnects"] == figures["reconnects"] == 1  # link0 unplugged and back
    assert figures["decode_errors"] > 0 and figures["frames_in"] > 0
    assert figures["rss_end_mib"] > 0 and "rss_growth_mib_per_hour" in figures
    assert "frames_lost" in stdout.decode()
    shutdown_s = exited - announced - figures["duration_s"]  # the loop's own run: duration_s (wall clock)

    out = tmp_path / "interrupted.json"
    with contextlib.ExitStack() as stack:
        proc, _announced = soak("--json", str(out))
        stack.callback(_end, proc)
        stopped_s, _stdout = exit_seconds(proc, signal.SIGINT)
    assert proc.returncode == 130
    assert stopped_s < shutdown_s + SIGNAL_ALLOWANCE_S, (stopped_s, shutdown_s)
    figures = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    assert figures["interrupted_by_signal"] == signal.SIGINT and figures["frames_lost"] == 0


def _end(proc: subprocess.Popen) -> None:
    """A soak that a failing test left running is killed and reaped."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)
