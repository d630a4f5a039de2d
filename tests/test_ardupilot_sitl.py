"""Real ArduPilot firmware flies heli-sim's physics: its helicopter SITL build (``arducopter-heli``),
unchanged, started against ``fly --fc ardupilot-json`` with the shipped parameter file.  The pilot
is heli-sim's (``hover:20``), reaching ArduPilot through its radio channels: it arms in STABILIZE,
climbs to 5 m on the collective, hovers 20 s and lands.

Runs where the firmware is found: ``HELI_SIM_ARDUPILOT`` (the binary) or ``arducopter-heli`` on
PATH, and ArduPilot's own SITL defaults ``copter-heli.parm`` beside the binary, in the ArduPilot
tree it was built in (``Tools/autotest/default_params``), or named by ``HELI_SIM_ARDUPILOT_DEFAULTS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sim.config import configs_dir, load_flight, load_heli
from sim.log.reader import read_log
from sim.session import flight_session
from tests.test_ardupilot_json import sitl_binary

INSTANCE = 7  # ArduPilot's -I: its ports move by 10 each (JSON 9072, RC 5571, MAVLink 5830), clear of a user's SITL
HELI = "trex450"


def sitl_defaults(binary: str | None) -> str | None:
    """ArduPilot's own SITL helicopter defaults (copter-heli.parm), where a built tree keeps them."""
    named = os.environ.get("HELI_SIM_ARDUPILOT_DEFAULTS")
    if named:
        return named if os.path.isfile(named) else None
    if binary is None:
        return None
    where = Path(binary).resolve()
    for candidate in (where.parent / "copter-heli.parm",
                      *(p / "Tools/autotest/default_params/copter-heli.parm" for p in where.parents)):  # fmt: skip
        if candidate.is_file():
            return str(candidate)
    return None


BINARY = sitl_binary()
DEFAULTS = sitl_defaults(BINARY)
pytestmark = pytest.mark.skipif(
    BINARY is None or DEFAULTS is None,
    reason="ArduPilot SITL not found: set HELI_SIM_ARDUPILOT to an arducopter-heli binary (with copter-heli.parm "
    "beside it or in its ArduPilot tree, or HELI_SIM_ARDUPILOT_DEFAULTS)",
)


def test_arducopter_heli_arms_climbs_hovers_within_a_metre_and_lands(tmp_path):
    config = load_flight(configs_dir() / "ardupilot" / f"{HELI}.toml")
    config = replace(
        config,
        flight=replace(config.flight, pilot="hover:20", duration_s=65.0),
        fc=replace(config.fc, port=9002 + 10 * INSTANCE, rc_udp_port=5501 + 10 * INSTANCE),
        ports=(),
    )
    parms = f"{DEFAULTS},{configs_dir() / 'ardupilot' / f'{HELI}.parm'}"
    log_path = str(tmp_path / "log")
    with flight_session(config, load_heli(HELI), log_path=log_path) as loop:
        firmware = subprocess.Popen(
            [BINARY, "--model", "JSON:127.0.0.1", "--speedup", "5", f"-I{INSTANCE}", "--serial0", "tcp:0", "-w",
             "--defaults", parms],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            loop.run()
        finally:
            os.killpg(firmware.pid, signal.SIGKILL)  # lock-step: without our answers it only waits
            output = firmware.communicate(timeout=10)[0].decode(errors="replace")
        summary = loop.summary()
    fc = summary["fc"]
    assert fc["frames"] >= 60 * 1200 and (fc["lost"], fc["malformed"], fc["restarts"]) == (0, 0, 0), output[-2000:]

    log = read_log(log_path)
    ticks = log.ticks
    t = np.cumsum(ticks["steps"]) * config.flight.physics_dt_s
    altitude = -ticks["down_m"]
    ground = altitude[0]
    assert ticks["ch8"].max() > 1600  # ArduPilot armed and let the rotor run (its set point, SERVO8)
    lifted = np.flatnonzero(altitude > ground + 0.3)
    assert lifted.size, f"never left the ground; ArduPilot said: {output[-1500:]}"
    t_lift = t[lifted[0]]
    hold = (t > t_lift + 10.0) & (t < t_lift + 30.0)  # the climb takes ~10 s, then 20 s held
    assert np.all(np.abs(altitude[hold] - ground - 5.0) < 1.0)  # 5 m, within a metre, for 20 s
    speed = np.hypot(ticks["v_north_m_s"][hold], ticks["v_east_m_s"][hold])
    # hovering, over the take-off point: ArduPilot lifts off level, so the tail rotor's push drifts it a few
    # metres aside until the pilot's position hold (which leans little near the ground) brings it back
    assert speed.max() < 1.5 and np.hypot(ticks["north_m"][hold], ticks["east_m"][hold]).max() < 3.0
    touchdowns = [e for e in summary["events"] if e["kind"] == "touchdown"]
    assert touchdowns and not summary["vehicles"][0]["crashed"]
    assert altitude[-1] < ground + 0.05  # down again
