"""Firmware in the loop against a stand-in for ArduPilot SITL (``sim.fc.standin``, a real process
speaking the published JSON format over real UDP): lock-step, lost, repeated, malformed and
restarted frames, a firmware that goes away and comes back, faults on the link, the replay."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from heli.errors import ConfigError
from sim.config import FaultSpec, FlightConfig, FlightSettings, load_heli
from sim.dataclass_io import build, to_table
from sim.fc.config import FcConfig
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.session import flight_session

RATE = 1200
STEP = 1.0 / RATE


def fc_config(duration_s: float, **fc: object) -> FlightConfig:
    settings = FlightSettings(heli="trex450", duration_s=duration_s, physics_dt_s=STEP, pilot="hover")
    return FlightConfig(flight=settings, ports=(), fc=replace(FcConfig(protocol="ardupilot-json", port=0), **fc))


def fly_against_standin(config: FlightConfig, *standin_args: str, log_path: str | None = None) -> tuple[dict, dict]:
    """Fly ``config`` against the stand-in (started once heli-sim listens); the run summary and the
    stand-in's report."""
    heli = load_heli(config.flight.heli)
    with flight_session(config, heli, log_path=log_path) as loop:
        standin = subprocess.Popen(
            [sys.executable, "-P", "-m", "sim.fc.standin", "--port", str(loop.link.port), "--give-up-s", "3",
             *standin_args],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            loop.run()
        finally:
            out, _ = standin.communicate(timeout=30)
        summary = loop.summary()
    return summary, json.loads(out)


def test_each_frame_steps_the_physics_once_and_is_answered_in_lock_step():
    summary, standin = fly_against_standin(fc_config(0.5), "--frames", "600")
    assert standin["bad_replies"] == [] and standin["replies"] == 600 and not standin["gave_up"]
    assert standin["step_min"] == pytest.approx(STEP, rel=1e-6) and standin["step_max"] == pytest.approx(STEP, rel=1e-6)
    fc = summary["fc"]
    assert (fc["frames"], fc["lost"], fc["repeated"], fc["malformed"], fc["restarts"]) == (600, 0, 0, 0, 0)
    assert summary["duration_s"] == pytest.approx(0.5)
    last = standin["last"]
    assert last["timestamp"] == pytest.approx(0.5)
    assert last["imu"]["accel_body"][2] == pytest.approx(-9.80665, abs=0.05)  # on its skids: -g on body z
    assert sorted(last["rc"]) == sorted(f"rc_{i}" for i in range(1, 9))  # the pilot's channels, as [fc] rc lists
    assert "battery" in last  # the 450 is electric


def test_lost_and_repeated_frames_are_counted_and_never_stepped_twice():
    summary, standin = fly_against_standin(
        fc_config(0.25), "--frames", "300", "--lose", "100", "--lose", "200", "--repeat", "50", "--repeat", "150"
    )
    fc = summary["fc"]
    assert (fc["lost"], fc["repeated"], fc["frames"]) == (2, 2, 300)
    assert summary["duration_s"] == pytest.approx(300 * STEP)  # each frame flown once, lost ones are not made up
    assert standin["bad_replies"] == [] and standin["duplicates"] == 2  # a repeat is answered again


def test_a_malformed_datagram_is_counted_and_skipped():
    summary, standin = fly_against_standin(fc_config(0.1), "--frames", "120", "--malformed", "10")
    fc = summary["fc"]
    assert fc["malformed"] == 2 and fc["frames"] == 120 and fc["lost"] == 0
    assert "expected 40" in fc["last_error"]
    assert standin["bad_replies"] == []


def test_a_restarted_firmware_restarts_the_flight(tmp_path):
    config = fc_config(0.3, outputs=replace(FcConfig().outputs, motor_mode="throttle"))
    summary, standin = fly_against_standin(
        config, "--frames", "560", "--restart", "200", "--pulses", ",".join(["1500"] * 7 + ["2000"] + ["0"] * 8),
        log_path=str(tmp_path / "log"),
    )  # fmt: skip
    assert summary["fc"]["restarts"] == 1
    assert [e["kind"] for e in summary["events"]].count("fc_restart") == 1
    assert summary["duration_s"] == pytest.approx(360 * STEP)  # the flight started again with it
    assert standin["last"]["timestamp"] == pytest.approx(360 * STEP)
    replay = Replay(read_log(str(tmp_path / "log")))
    replay.run()
    assert replay.difference is None  # the reset and both halves replay bit for bit


def test_a_firmware_gone_quiet_is_lost_then_flies_on_when_it_comes_back():
    config = fc_config(2.0, timeout_s=1.2)
    summary, standin = fly_against_standin(
        config, "--frames", "1200", "--silent-after", "240", "--silence-s", "1.6", "--give-up-s", "0.3",
        "--pulses", ",".join(["1500"] * 7 + ["1900"] + ["0"] * 8),
    )  # fmt: skip
    kinds = [e["kind"] for e in summary["events"]]
    assert kinds.count("fc_lost") == 1 and kinds.count("fc_back") == 1
    assert summary["fc"]["timeouts"] == 1 and standin["bad_replies"] == []
    # meanwhile the world ran on by the wall clock: more time flew than the frames carried
    assert summary["duration_s"] >= 1200 * STEP + 0.3


def test_a_second_sender_is_counted_and_ignored_while_the_firmware_flies():
    frames = 4800  # a few seconds of them: the second sender starts while they come
    config = fc_config(frames * STEP)
    heli = load_heli(config.flight.heli)
    second = None

    def start_the_second(loop) -> None:  # the loop's progress report, once a second: once the first flies
        nonlocal second
        if second is None and loop.link.stats.frames > 0:
            second = subprocess.Popen(
                [sys.executable, "-P", "-m", "sim.fc.standin", "--port", port, "--frames", "5", "--resend-s", "0.05",
                 "--give-up-s", "0.5"], stdout=subprocess.PIPE, text=True,
            )  # fmt: skip

    with flight_session(config, heli, on_progress=start_the_second) as loop:
        port = str(loop.link.port)
        first = subprocess.Popen([sys.executable, "-P", "-m", "sim.fc.standin", "--port", port, "--frames",
                                  str(frames), "--give-up-s", "3"], stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            loop.run()
        finally:
            first_report = json.loads(first.communicate(timeout=30)[0])
            second_report = json.loads(second.communicate(timeout=30)[0]) if second is not None else None
        summary = loop.summary()
    fc = summary["fc"]
    assert fc["frames"] == frames and fc["restarts"] == 0 and fc["lost"] == 0 and fc["foreign"] > 0
    assert first_report["replies"] == frames and second_report is not None and second_report["replies"] == 0


def test_a_flight_whose_firmware_never_comes_back_ends_at_its_duration():
    summary, _standin = fly_against_standin(fc_config(1.0, timeout_s=1.2), "--frames", "240")
    assert summary["stop_reason"] == "duration reached" and summary["fc"]["state"] == "lost"
    assert summary["duration_s"] == pytest.approx(1.0, abs=0.01)  # 0.2 s in lock-step, the rest by the clock


def test_a_firmware_stepping_at_another_rate_gets_answers_a_frame_step_apart_and_the_log_replays(tmp_path):
    summary, standin = fly_against_standin(
        fc_config(0.5), "--frames", "500", "--rate", "1000", log_path=str(tmp_path / "log")
    )  # physics at 1/1200 s, frames at 1/1000 s
    assert standin["bad_replies"] == [] and standin["replies"] == 500
    steps = (standin["step_min"], standin["step_max"])
    assert steps == pytest.approx((0.001, 0.001), rel=1e-6)  # its clock moves by its own step, every frame
    assert [e["kind"] for e in summary["events"]].count("fc_step") == 1
    assert summary["duration_s"] == pytest.approx(0.5, abs=STEP)
    replay = Replay(read_log(str(tmp_path / "log")))
    replay.run()
    assert replay.difference is None


def test_packet_loss_on_the_link_is_recovered_by_the_firmware_resending():
    config = replace(
        fc_config(0.1), faults=(FaultSpec(kind="packet_loss", port="fc", rate=0.05, direction="both"),), flight=replace(
            fc_config(0.1).flight, seed=3)
    )  # fmt: skip
    summary, standin = fly_against_standin(config, "--frames", "120", "--resend-s", "0.02")
    fc = summary["fc"]
    assert fc["frames_dropped_by_fault"] + fc["replies_dropped_by_fault"] > 0
    assert fc["frames"] == 120 and standin["replies"] == 120 and standin["bad_replies"] == []


def test_the_flight_log_replays_from_the_recorded_servo_frames(tmp_path):
    pulses = ["1600", "1450", "1520", "1700"] + ["1500"] * 3 + ["1800"] + ["0"] * 8
    summary, _standin = fly_against_standin(
        fc_config(0.5), "--frames", "600", "--pulses", ",".join(pulses), log_path=str(tmp_path / "log")
    )
    log = read_log(str(tmp_path / "log"))
    assert log.tick_count == summary["fc"]["frames"] == 600
    replay = Replay(log)
    replay.run()
    assert replay.difference is None
    # exported as it was: the firmware's outputs in the channel columns, no columns of a controller that did not fly
    csv_path = tmp_path / "flight.csv"
    result = subprocess.run([sys.executable, "-m", "sim", "export", str(tmp_path / "log"), "--format", "csv",
                             "--output", str(csv_path)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and "flown by firmware in the loop" in result.stderr
    header, first = csv_path.read_text().splitlines()[:2]
    columns = dict(zip(header.split(","), first.split(","), strict=True))
    assert not any(name.startswith("ctl_") for name in columns) and float(columns["ch1_us"]) == 1600.0


def test_fc_flies_one_helicopter():
    table = to_table(fc_config(1.0))
    table["flight"]["fleet"] = 2
    with pytest.raises(ConfigError, match="flies one helicopter"):
        build(FlightConfig, table, source="test")


def test_a_fault_that_a_udp_link_cannot_have_is_refused():
    table = to_table(fc_config(1.0))
    table["faults"] = [{"kind": "byte_loss", "port": "fc"}]
    with pytest.raises(ConfigError, match="takes latency and packet_loss"):
        build(FlightConfig, table, source="test")
