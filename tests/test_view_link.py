"""The view's plumbing without pygame: snapshots through shared memory, commands into the loop,
the keyboard transmitter's CRSF frames over a real pty, and the CPU helper it toggles."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import serial

from sim.config import FlightConfig, JoystickMap, apply_overrides
from sim.cpu_helper import CpuHelper, factorize
from sim.flight import Flight
from sim.joystick.sticks import JoystickSticks
from sim.loop import FlightLoop, ManualClock
from sim.protocols.crsf import CrsfDecoder
from sim.protocols.rc import ChannelFrame
from sim.view.app import KeyScript, parse_script
from sim.view.link import Publisher
from sim.view.shared import SnapshotReader, SnapshotWriter
from sim.view.snapshot import LATENESS_BINS_MS, lateness_bin
from sim.view.sticks import CrsfSender, StickState
from tests.conftest import heli


class CommandingView:
    """The loop's view slot filled with the real publisher and a queue of commands to deliver at
    given ticks (what the view process does, minus the process)."""

    def __init__(self, writer: SnapshotWriter, commands: dict[int, list[str]]):
        self.publisher = Publisher(writer)
        self.commands = commands
        self.closed = False

    def on_tick(self, loop: FlightLoop, lateness_s: float, period_s: float | None, skipped: int) -> list[str]:
        self.publisher.on_tick(loop, lateness_s, period_s, skipped)
        return self.commands.pop(loop.ticks, [])

    def close(self, finished: bool = True) -> None:
        self.closed = True


@pytest.fixture
def writer():
    w = SnapshotWriter()
    yield w
    w.close()


def flying_loop(duration_s: float, fleet: int = 1, hook=None) -> FlightLoop:
    config = apply_overrides(FlightConfig(), start="hover", fleet=fleet)
    return FlightLoop(Flight(heli("xcell60").config, config), ManualClock(), loop_hz=500, duration_s=duration_s,
                      before_tick=hook)  # fmt: skip


def fly_and_read(loop: FlightLoop, writer):
    """Fly ``loop`` publishing to ``writer``, then read the last snapshot back as the view does."""
    loop.view = CommandingView(writer, {})
    loop.run()
    reader = SnapshotReader(writer.name)
    try:
        return reader.read()
    finally:
        reader.close()


def test_a_published_snapshot_reads_back_as_the_flight_is(writer):
    def stall_at_tick_20(loop: FlightLoop) -> None:
        if loop.ticks == 20:
            loop.clock.advance(0.0105)  # 10.5 ms late: five deadlines missed

    loop = flying_loop(0.2, fleet=3, hook=stall_at_tick_20)
    snap = fly_and_read(loop, writer)
    assert snap.tick == loop.ticks - 1  # published at the start of the last tick
    assert snap.heli_name == loop.flight.heli.params.name and len(snap.vehicles) == 3
    packed = loop.flight.vehicles.packed
    for vehicle, row in zip(snap.vehicles, packed, strict=True):
        assert np.linalg.norm(vehicle.attitude_quat) == pytest.approx(1.0, abs=1e-9)
        assert vehicle.position_ned_m[2] == pytest.approx(row[2], abs=0.05)  # hovering: moved < 5 cm since
        assert not vehicle.crashed
    assert snap.vehicles[0].rotor_speed_rpm > 1000  # hover start: at headspeed
    # the sticks drawn are the ones the controller flew on (the hover pilot's here; a real radio's with --rc)
    assert snap.sticks_us == pytest.approx(tuple(loop.last_input[0][0, :16]), abs=1.0)  # published at 100 Hz
    assert snap.io_mode == "threaded" and snap.ticks_by_mode["threaded"] == loop.ticks
    # tick 20 woke at 40 ms and ran until 50.5 ms: tick 21 woke 8.5 ms after its 42 ms deadline
    assert snap.missed_by_mode["threaded"] == 4
    assert snap.lateness_ms.max() == pytest.approx(8.5, abs=1e-6)
    assert snap.period_ms.max() == pytest.approx(10.5, abs=1e-6)
    assert snap.lateness_hist["threaded"].sum() == loop.ticks
    assert snap.lateness_hist["threaded"][lateness_bin(8.5)] == 1


def test_the_view_is_told_the_wind_each_helicopter_meets(writer):
    config = apply_overrides(FlightConfig(), start="hover", fleet=2)
    config = replace(config, environment=replace(config.environment, wind_east_m_s=4.0, turbulence="light"))
    loop = FlightLoop(Flight(heli("xcell60").config, config), ManualClock(), loop_hz=500, duration_s=0.1)
    snap = fly_and_read(loop, writer)
    winds = [vehicle.wind_ned_m_s for vehicle in snap.vehicles]
    assert all(2.0 < east < 6.0 for _, east, _ in winds)  # a 4 m/s easterly, stirred
    assert winds[0] != winds[1]  # each in its own eddies
    assert np.allclose(winds, loop.flight.air.current, atol=0.5)  # published a tick before the last draw, at most


def test_the_reader_keeps_its_last_snapshot_while_the_writer_is_mid_write(writer):
    writer.begin()
    writer.set(tick=7)
    writer.end()
    reader = SnapshotReader(writer.name)
    try:
        assert reader.read().tick == 7
        writer.begin()
        writer.set(tick=8)  # not ended: a torn snapshot must not be read
        assert reader.read().tick == 7
        writer.end()
        assert reader.read().tick == 8
    finally:
        reader.close()


_HAMMER = """
import sys, time
import numpy as np
from multiprocessing import shared_memory
from sim.view.shared import LAYOUT, _S, _stop_tracking
shm = shared_memory.SharedMemory(name=sys.argv[1])
_stop_tracking(shm)
floats = np.ndarray((LAYOUT.floats,), dtype=np.float64, buffer=shm.buf)
for n in range(1, int(sys.argv[2]) + 1):  # a number of writes, not of seconds: the same race on a busy machine
    floats[0] += 1.0
    floats[_S["tick"]] = n
    floats[LAYOUT.vehicles : LAYOUT.history] = n
    floats[_S["sim_time_s"]] = n * 0.5
    floats[0] += 1.0
    time.sleep(0.0001)  # paced like the loop (faster): the reader gets quiet moments to copy in
del floats
shm.close()
"""


def test_a_reader_racing_a_writer_process_sees_only_whole_snapshots(writer):
    """Another process writes as fast as it can, keeping tick and sim_time in step with a long
    write between them; a snapshot mixing two writes would break the step."""
    writer_process = subprocess.Popen([sys.executable, "-c", _HAMMER, writer.name, "5000"])
    reader = SnapshotReader(writer.name)
    seen = set()
    try:
        while writer_process.poll() is None:
            snap = reader.read()
            assert snap.sim_time_s == snap.tick * 0.5
            seen.add(snap.tick)
    finally:
        writer_process.wait(10.0)
        reader.close()
    assert writer_process.returncode == 0
    assert len(seen) >= 100  # of the 5,000 snapshots written, while they were being written


def test_view_commands_toggle_io_pause_reset_and_are_recorded(writer):
    commands = {5: ["toggle_io"], 10: ["pause"], 30: ["pause", "note camera chase"], 40: ["reset"], 45: ["toggle_io"]}
    loop = flying_loop(0.3)
    loop.view = CommandingView(writer, commands)
    loop.run()
    kinds = [(e.kind, e.detail) for e in loop.events]
    assert ("pause", "paused") in kinds and ("pause", "resumed") in kinds
    assert ("view", "camera chase") in kinds and ("reset", "vehicles back to their start") in kinds
    assert [s.io_mode for s in loop.segments] == ["threaded", "blocking", "threaded"]
    assert loop.segments[1].ticks == 40  # ticks 6..45: the switch lands at the next tick boundary


def test_paused_flight_holds_still_and_resumes_without_catching_up(writer):
    loop = flying_loop(0.2)
    loop.view = CommandingView(writer, {10: ["pause"], 60: ["pause"]})
    loop.run()
    # 50 ticks (0.1 s) paused: the simulated world lost exactly that time, not replayed it
    assert loop.flight.sim_time_s == pytest.approx(0.2, abs=0.002)
    assert loop.clock.now() - loop.t0 == pytest.approx(0.3, abs=0.003)


def test_cpu_helper_thread_and_process_start_and_stop():
    assert factorize(2 * 3 * 3 * 1_000_003) == [2, 3, 3, 1_000_003]
    helper = CpuHelper()
    try:
        helper.set_mode("thread")
        assert helper.mode == "thread"
        assert any(t.name == "cpu-helper" and t.is_alive() for t in threading.enumerate())
        helper.set_mode("process")  # the thread is stopped and joined first
        assert not any(t.name == "cpu-helper" for t in threading.enumerate())
        assert helper._process is not None and helper._process.poll() is None
        with pytest.raises(ValueError, match="off, thread or process"):
            helper.set_mode("fibre")
    finally:
        helper.close()
    assert helper.mode == "off"


def test_view_commands_start_and_stop_the_cpu_helper(writer):
    loop = flying_loop(0.1)
    presses = {2: ["cpu_thread"], 10: ["cpu_thread"], 12: ["cpu_process"], 20: ["cpu_process"]}
    loop.view = CommandingView(writer, presses)
    try:
        loop.run()
    finally:
        loop.cpu_helper.close()
    assert [e.detail for e in loop.events if e.kind == "cpu_helper"] == ["thread", "off", "process", "off"]


@pytest.mark.parametrize(
    ("text", "script"),
    [("", []), ("2:g, 0.5:t", [(0.5, "t"), (2.0, "g")]), ("1:escape,", [(1.0, "escape")])],
)
def test_view_script_parses(text, script):
    assert parse_script(text) == script


@pytest.mark.parametrize("text", ["t", "0.5", "soon:t", "1:", "nan:t", "inf:t", "-1:t"])
def test_bad_view_script_names_the_item(text):
    with pytest.raises(ValueError, match="not SECONDS:KEY"):
        parse_script(text)


def frames(script: KeyScript, snapshots) -> list[tuple[int, str]]:
    """Feed ``(tick, sim_time_s, paused, view_time_s)`` snapshots, one a frame; the (frame, key) pressed."""
    pressed = []
    for frame, (tick, sim_time_s, paused, now_s) in enumerate(snapshots):
        key = script.update(tick, sim_time_s, paused, now_s)
        if key is not None:
            pressed.append((frame, key))
    return pressed


def test_scripted_keys_come_at_simulated_times_however_slowly_the_view_draws():
    script = KeyScript([(0.3, "t"), (0.31, "g")])
    # a view drawing every 0.1 s of flight: nothing before 0.3 s; the second key, due in the same
    # frame, waits until the loop has run two ticks after the first one's command went out
    steady = [(k * 50, k * 0.1, False, 100.0 + k * 0.1) for k in range(8)]
    assert frames(script, steady) == [(3, "t"), (5, "g")]
    assert script.items == []
    # a view drawing faster than the loop ticks (a stalled loop): one tick is not enough
    script = KeyScript([(0.3, "t"), (0.3, "t")])
    stalled = [(150, 0.3, False, 0.0), (150, 0.3, False, 0.01), (151, 0.302, False, 0.02), (151, 0.302, False, 0.03)]
    assert frames(script, [*stalled, (152, 0.304, False, 0.04)]) == [(0, "t"), (4, "t")]


def test_a_late_view_moves_the_rest_of_the_script_so_no_gap_gets_shorter():
    script = KeyScript([(0.4, "f2"), (1.2, "f2"), (1.4, "escape")])
    # starved for a second (a busy machine): the first key comes at 1.5 s instead of 0.4 s; the
    # next ones keep their gaps (0.8 s, 0.2 s) after it instead of all coming at once
    snapshots = [(0, 0.0, False, 0.0), (750, 1.5, False, 1.5)]
    snapshots += [(750 + k * 25, 1.5 + k * 0.05, False, 1.5 + k * 0.05) for k in range(1, 40)]
    pressed = frames(script, snapshots)
    times = [snapshots[frame][1] for frame, _ in pressed]
    assert [key for _, key in pressed] == ["f2", "f2", "escape"]
    assert times[0] == 1.5 and times[1] - times[0] >= 0.8 - 1e-9 and times[2] - times[1] >= 0.2 - 1e-9


def test_a_reset_does_not_rewind_the_script_and_a_pause_does_not_stop_it():
    script = KeyScript([(0.5, "r"), (1.0, "space"), (2.0, "space"), (2.5, "escape")])
    snapshots = [(k * 50, k * 0.1, False, k * 0.1) for k in range(7)]  # r pressed at 0.5 s
    snapshots += [(350 + k * 50, k * 0.1, False, 0.7 + k * 0.1) for k in range(1, 6)]  # reset: 0.1 s.. again
    snapshots += [(600 + k * 50, 0.5, True, 1.2 + k * 0.1) for k in range(1, 12)]  # paused: the view's clock runs
    snapshots += [(1150 + k * 50, 0.5 + k * 0.1, False, 2.3 + k * 0.1) for k in range(1, 8)]
    pressed = frames(script, snapshots)
    assert [key for _, key in pressed] == ["r", "space", "space", "escape"]
    assert script.late_s == pytest.approx(0.0, abs=0.11)  # each key within a frame of its time


def test_keys_deflect_sticks_that_spring_back_and_a_collective_that_stays():
    sticks = StickState()
    for _ in range(100):  # W held 5/3 s: 0.3 of full throw a second, fine enough to find the hover
        sticks.from_keys({"right", "w"}, 1 / 60)
    assert sticks.roll == pytest.approx(1.0) and sticks.collective == pytest.approx(0.5)
    for _ in range(15):  # a quarter second released
        sticks.from_keys(set(), 1 / 60)
    assert sticks.roll == pytest.approx(0.0, abs=1e-9) and sticks.collective == pytest.approx(0.5)
    sticks.toggle_arm()
    sticks.next_mode()
    channels = sticks.channels_us()
    assert channels[:6] == pytest.approx((1500.0, 1500.0, 1750.0, 1500.0, 2000.0, 2000.0))  # coll 0.5, armed, rescue


def test_a_joystick_reading_holds_the_sticks_and_the_switches():
    mapping = JoystickMap(roll_axis=3, pitch_axis=2, collective_axis=1, yaw_axis=0, inverted=("yaw",), deadband=0.1)
    reading = JoystickSticks(mapping, mapping.layout("a gamepad")).read([0.5, -1.0, 0.05, 0.8], [False, False])
    sticks = StickState(channel_map=(2, 1, 3, 4, 5, 6))  # roll on channel 2, pitch on channel 1
    sticks.from_joystick(reading)
    assert (sticks.roll, sticks.pitch, sticks.collective, sticks.yaw) == (0.8, 0.0, -1.0, -0.5)
    assert sticks.channels_us()[:6] == (1500.0, 1900.0, 1000.0, 1250.0, 1000.0, 1500.0)


def test_the_keyboard_transmitter_sends_crsf_frames_down_a_pty():
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=0.1, write_timeout=0.5)
    os.close(slave)
    sticks = StickState(roll=1.0, collective=-1.0, armed=True)
    sender = CrsfSender(master, sticks)
    sender.start()
    try:
        decoder, frames = CrsfDecoder(), []
        deadline = time.monotonic() + 10.0
        while len(frames) < 10 and time.monotonic() < deadline:
            frames += [m for m in decoder.feed(port.read(256)) if isinstance(m, ChannelFrame)]
    finally:
        assert sender.stop()
        port.close()
        os.close(master)
    assert len(frames) >= 10 and decoder.decode_errors == 0
    roll, pitch, collective, yaw, arm, mode = frames[-1].channels_us[:6]
    assert roll == pytest.approx(2000, abs=1) and collective == pytest.approx(1000, abs=1)
    assert pitch == pytest.approx(1500, abs=1) and yaw == pytest.approx(1500, abs=1)
    assert arm == pytest.approx(2000, abs=1) and mode == pytest.approx(1500, abs=1)


def test_lateness_bins_cover_the_range():
    assert lateness_bin(0.0) == 0
    assert lateness_bin(LATENESS_BINS_MS[-1] * 10) == len(LATENESS_BINS_MS)
    edges = [lateness_bin(x) for x in np.geomspace(0.01, 1000, 200)]
    assert edges == sorted(edges)


def test_joystick_calibration_maps_a_short_off_centre_range_to_full_sticks():
    """A radio in joystick mode: collective reads -0.8 (low) .. 0.1 (centre) .. 0.9 (high)."""
    mapping = JoystickMap(collective_range=(-0.8, 0.1, 0.9), inverted=(), deadband=0.0)
    sticks = JoystickSticks(mapping, mapping.layout())
    for raw, expected in ((-0.8, -1.0), (0.1, 0.0), (0.9, 1.0), (0.5, 0.5), (-0.35, -0.5), (-1.0, -1.0)):
        assert sticks.read([0.0, 0.0, raw, 0.0], []).collective == pytest.approx(expected)
