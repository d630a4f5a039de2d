"""The flight log and replay: written by its own thread, read back by numpy and pandas, complete
after SIGINT and SIGTERM, readable after SIGKILL, and a replay equal to the flight, float for float."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.config import FlightConfig, apply_overrides
from sim.errors import LogError
from sim.log.format import FRAME_DTYPE, STATUS_FILE, TICK_DTYPE, TICK_FLAGS, NpyAppender
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import FlightLoop, ManualClock
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import SIGNAL_ALLOWANCE_S, StderrLines, exit_seconds, running
from tests.test_aio import wait_until

ROOT = Path(__file__).resolve().parent.parent


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def logged_flight(path: Path, duration_s: float, hook=None, **settings) -> FlightLoop:
    """A flight on a hand-driven clock, in process (no ports), logged to ``path``."""
    config = apply_overrides(FlightConfig(ports=()), duration_s=duration_s, **settings)
    with flight_session(config, heli(settings.get("heli", "xcell60")).config, clock=ManualClock(), before_tick=hook,
                        log_path=str(path)) as loop:  # fmt: skip
        loop.run()
    return loop


# --- the file format


def test_npy_appender_counts_only_committed_rows(tmp_path):
    path = tmp_path / "rows.npy"
    appender = NpyAppender(str(path), FRAME_DTYPE)
    rows = np.zeros(5, FRAME_DTYPE)
    rows["sequence"] = np.arange(5)
    appender.append(rows)
    appender.commit()
    appender.append(rows)  # written, not committed: as if the process died before its next flush
    appender._file.flush()
    assert np.load(path)["sequence"].tolist() == [0, 1, 2, 3, 4]
    appender.close()
    assert len(np.load(path)) == 10


def test_a_logged_flight_opens_in_numpy_and_pandas_in_one_line(tmp_path):
    log_path = tmp_path / "flight.hslog"
    loop = logged_flight(log_path, 0.5, fleet=2, start="hover")
    ticks = np.load(log_path / "ticks.npy")
    assert ticks.dtype == TICK_DTYPE and len(ticks) == 2 * loop.ticks
    table = pd.DataFrame(np.load(log_path / "ticks.npy"))
    assert list(table.columns[:3]) == ["tick", "vehicle", "t_s"] and len(table) == 2 * loop.ticks
    assert table.groupby("vehicle")["down_m"].min().lt(-4.0).all()  # both hovering near 5 m
    last = ticks[-2:]
    assert (last["tick"] == loop.ticks - 1).all() and last["vehicle"].tolist() == [0, 1]
    assert last["sim_time_s"][0] == pytest.approx(0.5)
    packed = loop.flight.vehicles.packed
    assert last["down_m"].tolist() == packed[:, 2].tolist() and last["q_w"].tolist() == packed[:, 6].tolist()
    header = json.loads((log_path / "header.json").read_text())
    assert header["format"] == "heli-sim flight log" and header["fleet"] == 2 and header["seed"] == 0
    assert header["heli_name"] == loop.flight.heli.params.name and header["heli"]["controller"]
    assert loop.summary()["log"] == {"path": str(log_path), "ticks": loop.ticks, "frames": 0, "events": 0,
                                     "dropped": 0, "status": "complete"}  # fmt: skip


def test_a_replay_of_a_flight_with_toggles_reset_and_pause_is_identical(tmp_path):
    def hook(loop: FlightLoop) -> None:
        commands = {40: "toggle_io", 80: "pause", 120: "pause", 150: "reset", 200: "toggle_io"}
        if loop.ticks in commands:
            loop.command(commands[loop.ticks])
        if loop.ticks == 300:
            loop.clock.advance(0.05)  # a 50 ms stall: the physics catches up in one tick

    log_path = tmp_path / "flight.hslog"
    loop = logged_flight(log_path, 1.2, hook=hook, start="hover", fleet=3)
    log = read_log(str(log_path))
    flags = log.ticks["flags"][:: log.fleet]
    assert np.count_nonzero(flags & TICK_FLAGS["paused"]) == 40 and np.count_nonzero(flags & TICK_FLAGS["reset"]) == 1
    assert log.ticks["steps"].max() >= 50  # the stall's catch-up
    assert [e["kind"] for e in log.events] == ["mode_switch", "pause", "pause", "reset", "mode_switch"]
    replay = Replay(log)
    replay.run()
    assert replay.difference is None
    assert np.array_equal(replay.flight.vehicles.packed, loop.flight.vehicles.packed)


def test_a_replay_notices_a_changed_log(tmp_path):
    log_path = tmp_path / "flight.hslog"
    logged_flight(log_path, 0.3, start="hover")
    log = read_log(str(log_path))
    log.ticks["ch1"][100] += 1.0  # the pilot moved the stick a microsecond further than recorded
    replay = Replay(log)
    replay.run()
    difference = replay.difference
    assert difference is not None and difference.tick == 100 and difference.vehicle == 0
    assert difference.column.startswith("cmd_")  # the controller answers the stick in the same tick


# --- bad logs


def test_unreadable_logs_are_named(tmp_path):
    good = tmp_path / "good.hslog"
    logged_flight(good, 0.2)
    cases = {
        "missing": (tmp_path / "nothing-here", "no such log"),
        "a file": (good / "header.json", "is a file, not a flight log"),
        "no header": (tmp_path, "no header.json"),
    }
    for what, (path, message) in cases.items():
        with pytest.raises(LogError, match=message):
            read_log(str(path))
        assert what
    damaged = tmp_path / "damaged.hslog"

    def damage(name: str, change) -> str:
        if damaged.exists():
            for item in damaged.iterdir():
                item.unlink()
            damaged.rmdir()
        damaged.mkdir()
        for item in good.iterdir():
            (damaged / item.name).write_bytes(item.read_bytes())
        change(damaged / name)
        with pytest.raises(LogError) as caught:
            read_log(str(damaged))
        return str(caught.value)

    def truncate(path: Path) -> None:
        os.truncate(path, path.stat().st_size - 100)

    assert "truncated: its header counts 101 rows, the file holds 100" in damage("ticks.npy", truncate)
    assert "not an NPY array file" in damage("ticks.npy", lambda p: p.write_bytes(b"hello"))
    assert "not a heli-sim log header" in damage("header.json", lambda p: p.write_text("{not json"))
    newer = json.loads((good / "header.json").read_text()) | {"format_version": 99}
    assert "log format 99; this heli-sim reads format 1" in damage(
        "header.json", lambda p: p.write_text(json.dumps(newer))
    )
    assert "frames.npy: missing" in damage("frames.npy", lambda p: p.unlink())


def test_replay_command_errors_are_one_line(tmp_path):
    (tmp_path / "not-a-log").mkdir()
    result = subprocess.run(heli_sim("replay", str(tmp_path / "not-a-log")), cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"heli-sim replay: error: {tmp_path / 'not-a-log'}: no header.json, so not a flight log; "
        "expected a heli-sim flight log (a directory with header.json, ticks.npy, ...)"
    )


def test_an_existing_log_is_never_written_over(tmp_path):
    existing = tmp_path / "flight.hslog"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    result = subprocess.run(heli_sim("fly", "--headless", "--duration", "1", "--log", str(existing)), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "already exists" in result.stderr and "Traceback" not in result.stderr
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    missing = tmp_path / "no" / "such" / "flight.hslog"
    result = subprocess.run(heli_sim("fly", "--headless", "--duration", "1", "--log", str(missing)), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "no such directory" in result.stderr and not (tmp_path / "no").exists()


# --- real flights, real signals


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait (on pidfds, no polling) until the processes have ended; return those still running."""
    alive = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if not select.select([fd], [], [], timeout_s)[0]:
                alive.append(pid)
        finally:
            os.close(fd)
    return alive


def _children_of(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found


@pytest.mark.parametrize("mode", ["threaded", "blocking", "asyncio"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_at_a_random_moment_leaves_a_log_that_replays(tmp_path, mode, sig):
    rng = random.Random(f"{mode}-{sig}")
    log_path, stats = tmp_path / "flight.hslog", tmp_path / "run.json"
    command = heli_sim("-v", "fly", "--headless", "--start", "hover", "--io", mode, "--log", str(log_path),
                       "--stats-json", str(stats))  # fmt: skip
    with running(command, cwd=ROOT) as proc:
        lines = StderrLines(proc)
        lines.wait_for("heli-sim: flying")
        emulators = _children_of(proc.pid)
        proc.send_signal(signal.SIGUSR1)  # a toggle in every log
        lines.wait_for("mode_switch")
        # the writer has made some of the flight durable (a flush every 0.25 s: on a busy machine the
        # first may come later than the random moment would), then the random moment
        assert wait_until(lambda: _durable_ticks(log_path) > 0, 30.0), "the log writer never flushed"
        threading.Event().wait(rng.uniform(0.1, 0.8))  # the random moment (a stimulus, not a synchronisation)
        proc.send_signal(sig)
        proc.wait(10)
    assert not _wait_gone(emulators, 5.0), "device emulators outlived the flight"
    log = read_log(str(log_path))
    # after SIGKILL, what the writer had flushed (every 0.25 s; the flight ran longer): how many ticks
    # that is depends on the machine, not on the log
    assert log.tick_count > 0
    # status.json counts what each flush made durable: after SIGKILL, no more than the log holds
    # (rows appended after the last flush are there too), and at least one flush's worth
    assert 0 < log.status["ticks"] <= log.tick_count and log.status["frames"] <= len(log.frames)
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig
        summary = json.loads(stats.read_text())
        assert summary["log"]["dropped"] == 0
        assert summary["log"]["ticks"] == log.tick_count == sum(s["ticks"] for s in summary["segments"])
        assert [e["kind"] for e in log.events] == [e["kind"] for e in summary["events"]]
        assert len(log.frames) == summary["log"]["frames"] > 0
    replay = Replay(log)
    replay.run()
    assert replay.difference is None


def _durable_ticks(log_path: Path) -> int:
    """The ticks the log's status file says are on disk (0 before its first flush)."""
    try:
        return int(json.loads((log_path / STATUS_FILE).read_text()).get("ticks", 0))
    except (OSError, ValueError):  # not written yet, or caught between its write and rename
        return 0


def stopped_by_sigterm(tmp_path: Path, *log: str) -> float:
    """Seconds from SIGTERM to exit of a headless flight (``log``: ``--log PATH``, or nothing)."""
    stats = tmp_path / f"run{len(log)}.json"
    with running(heli_sim("fly", "--headless", "--stats-json", str(stats), *log), cwd=ROOT) as proc:
        StderrLines(proc).wait_for("heli-sim: flying")
        threading.Event().wait(0.5)  # a stimulus: half a second of log to finish, not a synchronisation
        seconds, _out = exit_seconds(proc, signal.SIGTERM)
    assert proc.returncode == 143
    return seconds


@pytest.mark.realtime
def test_a_logged_flight_stops_on_a_signal_as_promptly_as_one_without_a_log(tmp_path):
    reference_s = stopped_by_sigterm(tmp_path)  # the same flight, same test, same load, no log
    log_path = tmp_path / "flight.hslog"
    stopped_s = stopped_by_sigterm(tmp_path, "--log", str(log_path))  # the log's last flush included
    assert stopped_s < reference_s + SIGNAL_ALLOWANCE_S, (stopped_s, reference_s)
    assert read_log(str(log_path)).tick_count > 0


@pytest.mark.realtime
def test_replay_command_reports_an_identical_replay(tmp_path):
    log_path, stats = tmp_path / "flight.hslog", tmp_path / "replay.json"
    flight_stats = tmp_path / "flight.json"
    flown = subprocess.run(heli_sim("fly", "--headless", "--quiet", "--duration", "2", "--log", str(log_path),
                                    "--stats-json", str(flight_stats)),
                           cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert flown.returncode == 0, flown.stderr
    flight = json.loads(flight_stats.read_text())
    result = subprocess.run(heli_sim("replay", str(log_path), "--headless", "--stats-json", str(stats)), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "identical to the log" in result.stdout
    summary = json.loads(stats.read_text())
    replay = summary["replay"]
    # every tick the flight flew is in the log and replayed (how many: the machine's; the flight says)
    ticks_flown = sum(segment["ticks"] for segment in flight["segments"])
    assert replay["identical"] is True and replay["ticks"] == replay["ticks_in_log"] == ticks_flown > 0
    # the flight's duration, replayed (its last tick may step past 2 s when a busy machine made it
    # catch up: by its catch-up at most)
    catchup_s = FlightConfig().flight.catchup_limit_s
    assert summary["duration_s"] == flight["duration_s"] and 2.0 <= summary["duration_s"] <= 2.0 + catchup_s
    assert {"segments", "vehicles", "events", "ports"} <= set(summary)
    # headless, a replay is not paced: faster than the flight it replays took, here, now
    assert summary["replay"]["speed_x_real_time"] > 1.0
