"""Every port is drained, whatever its far end does: a radio that never reads the telemetry sent
down its link, a ground station that floods commands.  Real processes on the far ends of real
ptys (a socat pair for the ground station), pymavlink as the ground station."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sim.ports.codecs import make_codec
from sim.ports.events import EventLog
from sim.ports.portset import PortSet
from sim.ports.roles import Downlink, RcInPort
from sim.ports.transport import open_transport
from sim.protocols import crsf
from tests.test_aio import wait_until
from tests.test_ports import needs_socat, socat_pair

ROOT = Path(__file__).resolve().parents[1]
STICK_FRAMES = 300  # the radio's whole stream: 2 s at 150 Hz

# A radio that sends CRSF stick frames at 150 Hz and never reads what comes back down the link.
_DEAF_RADIO = """\
import os, sys, time
from sim.protocols.crsf import encode_channels
from sim.protocols.rc import ChannelFrame
fd, count = int(sys.argv[1]), int(sys.argv[2])
frame = encode_channels(ChannelFrame((1500.0,) * 16))
next_t = time.monotonic()
for _ in range(count):
    os.write(fd, frame)
    next_t += 1 / 150
    time.sleep(max(0.0, next_t - time.monotonic()))
"""


@pytest.mark.parametrize("mode", ["threaded", "blocking", "asyncio"])
def test_a_radio_that_never_reads_its_telemetry_keeps_flying_the_helicopter(mode):
    master, slave = os.openpty()
    events = EventLog()
    rc = RcInPort("rc-in", lambda: open_transport(os.ttyname(slave)), events, url=os.ttyname(slave),
                  codec=make_codec("crsf", "host"), read_deadline_s=0.02)  # fmt: skip
    portset = PortSet([rc], events, mode)
    radio = None
    try:
        portset.open()
        radio = subprocess.Popen([sys.executable, "-P", "-c", _DEAF_RADIO, str(master), str(STICK_FRAMES)],
                                 pass_fds=(master,), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        # far more telemetry than the pty and the port's own buffer hold: 500 frames a letter
        telemetry = Downlink([crsf.Attitude(0.1, 0.2, 0.3)] * 500)
        sticks = portset.inboxes[rc.name]
        while radio.poll() is None:
            portset.push_outputs({rc.name: telemetry})
            seen = sticks.latest().seq if sticks.latest() is not None else 0
            portset.read_inputs()
            sticks.wait_newer(seen, 0.005)  # paced by the radio's sticks; its own clock sets the test's length
        assert wait_until(lambda: (portset.read_inputs(), rc.stick_frames)[1] >= STICK_FRAMES)
    finally:
        if radio is not None and radio.poll() is None:
            radio.kill()
            radio.wait(5)
        portset.close()
        os.close(master)
        os.close(slave)
    # every stick frame arrived, none broken, while telemetry was dropped whole without a wait
    assert rc.stick_frames == STICK_FRAMES and rc.decode_errors == 0
    assert rc.stats.frames_dropped > 0 and rc.stats.write_timeouts == 0
    assert not portset.stuck_threads


# A ground station (pymavlink) flooding RC_CHANNELS_OVERRIDE while it counts the telemetry that
# comes in, per half second; its writes give up after 0.5 s (a stalled link would show as failures).
_FLOODING_GCS = """\
import json, sys, time
from pymavlink import mavutil
path, rate_hz, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
gcs = mavutil.mavlink_connection(path, baud=57600, source_system=255)
gcs.port.write_timeout = 0.5
gcs.wait_heartbeat(timeout=30)
sent = failed = 0
attitude_ms = []  # the flight's time stamps (time_boot_ms) of the ATTITUDE messages that came
last_seq, seq_gaps, received = None, 0, 0  # MAVLink sequence numbers: a message lost in between is a gap
start = time.monotonic()
next_t = start
while (now := time.monotonic()) < start + seconds:
    if now >= next_t:
        try:
            gcs.mav.rc_channels_override_send(1, 1, 1500, 1500, 1800, 1500, 0, 0, 0, 0)
            sent += 1
        except Exception:
            failed += 1
        next_t += 1 / rate_hz
    message = gcs.recv_match(blocking=False)
    if message is None:
        time.sleep(0.0005)
        continue
    if message.get_srcSystem() == 1 and message.get_type() != "BAD_DATA":
        received += 1
        if last_seq is not None:
            seq_gaps += (message.get_seq() - last_seq - 1) % 256
        last_seq = message.get_seq()
    if message.get_type() == "ATTITUDE":
        attitude_ms.append(message.time_boot_ms)
print(json.dumps({"sent": sent, "failed": failed, "attitude_ms": attitude_ms, "seq_gaps": seq_gaps,
                  "received": received}))
"""


@needs_socat
def test_a_ground_station_flooding_commands_over_socat_keeps_its_telemetry(tmp_path):
    stats = tmp_path / "run.json"
    with socat_pair(tmp_path) as (ours, theirs, _socat):
        flight = subprocess.Popen([sys.executable, "-m", "sim", "fly", "--headless", "--quiet", "--no-ports",
                                   "--telemetry", ours, "--stats-json", str(stats)],
                                  cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            # 500 Hz, ten times what a ground station sends, for 4 s: 20x a pty's buffer
            gcs = subprocess.run([sys.executable, "-P", "-c", _FLOODING_GCS, theirs, "500", "4"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        finally:
            flight.send_signal(signal.SIGINT)  # the flight flew all along; Ctrl-C ends it
            _, stderr = flight.communicate(timeout=60)
    assert gcs.returncode == 0, gcs.stderr
    assert flight.returncode == 130, stderr
    seen = json.loads(gcs.stdout.strip().splitlines()[-1])  # after what pymavlink prints itself
    (telemetry,) = json.loads(stats.read_text())["ports"]
    # the ground station's every command was read (and, unused, counted), none of its writes failed
    assert seen["failed"] == 0 and seen["sent"] > 1000
    assert seen["sent"] - 50 <= telemetry["frames_discarded"] <= seen["sent"]
    # telemetry flowed at its rate all along: ATTITUDE is 25 Hz, 12.5 a half second
    # telemetry flowed all along: every message the flight sent while the station flooded came, in
    # order (no MAVLink sequence gap), ATTITUDE among them; nothing was held back or dropped on the
    # way out (a busy machine may hold either process up: judged by what came, not when)
    stamps = seen["attitude_ms"]
    assert seen["seq_gaps"] == 0 and seen["received"] > 100, seen["seq_gaps"]
    assert len(stamps) > 50 and stamps == sorted(stamps), stamps[:20]
    assert telemetry["write_timeouts"] == telemetry["frames_dropped"] == 0 and telemetry["state"] == "ok"
