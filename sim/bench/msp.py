"""``heli-sim bench msp``: how promptly the simulator answers an MSP client, in each I/O mode.

A flight with its rc-in port speaking MSP on a pty; on the other end a client process (its own
interpreter, so that its waiting is not the simulator's GIL) first identifies the flight
controller as a configurator does (API version, variant, version, board, build, name: six
requests, each sent when the last is answered), then flies it as yamspy's examples do:
MSP_SET_RAW_RC at 100 Hz and MSP_ATTITUDE polled at 50 Hz, timing each reply from its request's
last byte written to the reply's last byte read.  Reported per I/O mode: the identification's
duration, the reply times (median, 99th percentile, worst), and the failsafes the flight had.
Then, where yamspy (a third-party MSP client) is installed, how long its ``connect`` takes against
a flying simulator (threaded mode; the median of three, over a bridged pty pair: yamspy opens a
device path), as a configurator user would wait for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace

from sim.bench.common import Result

__all__ = ["bench_msp"]

_MODES = ("threaded", "asyncio", "blocking")

_CLIENT = r"""
import json, os, select, sys, time
from sim.protocols import msp

fd, seconds = int(sys.argv[1]), float(sys.argv[2])
decoder = msp.MspDecoder()
pending = []

def send(command, payload=b""):
    os.write(fd, msp.encode(msp.MspMessage(1, "<", command, payload)))
    return time.perf_counter()

def reply(command, timeout_s=2.0):
    end = time.perf_counter() + timeout_s
    while True:
        while pending:
            message = pending.pop(0)
            if message.command == command and message.direction in ">!":
                return time.perf_counter()
        left = end - time.perf_counter()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        pending.extend(decoder.feed(os.read(fd, 4096)))

start = time.perf_counter()
for command in (1, 2, 3, 4, 5, 10):  # API_VERSION, FC_VARIANT, FC_VERSION, BOARD_INFO, BUILD_INFO, NAME
    send(command)
    if reply(command) is None:
        sys.exit(f"no reply to MSP command {command}")
identified_s = time.perf_counter() - start
sticks = msp.raw_rc_payload([1500.0, 1500.0, 1500.0, 1500.0, 2000.0, 1500.0, 1500.0, 1500.0])
replies, lost, t0, n = [], 0, time.perf_counter(), 0
while time.perf_counter() - t0 < seconds:
    send(msp.MSP_SET_RAW_RC, sticks)  # its empty ack is read, and skipped, with the next reply
    n += 1
    if n % 2 == 0:
        sent = send(msp.MSP_ATTITUDE)
        got = reply(msp.MSP_ATTITUDE)
        if got is None:
            lost += 1
        else:
            replies.append(got - sent)
    time.sleep(max(0.0, t0 + n * 0.01 - time.perf_counter()))
print(json.dumps({"identified_s": identified_s, "replies_s": replies, "lost": lost}))
"""


_YAMSPY_CLIENT = r"""
import json, sys, time
from yamspy import MSPy

start = time.perf_counter()
with MSPy(device=sys.argv[1], logfilename=None, loglevel="WARNING") as board:
    connected_s = time.perf_counter() - start
    ok = board != 1 and board.CONFIG["flightControllerIdentifier"] == "HELI"
print(json.dumps({"connect_s": connected_s, "identified": ok}))
"""


def bench_msp(quick: bool = False) -> list[Result]:
    """MSP identification time and reply times over a pty, per I/O mode (medians of one flight each)."""
    import numpy as np

    seconds = 2.0 if quick else 6.0
    results = []
    for mode in _MODES:
        figures, failsafes = _one_flight(mode, seconds)
        replies_ms = np.array(figures["replies_s"]) * 1e3
        results += [
            Result("msp", f"identify_ms_{mode}", round(figures["identified_s"] * 1e3, 2), "ms"),
            Result("msp", f"reply_ms_p50_{mode}", round(float(np.percentile(replies_ms, 50)), 3), "ms"),
            Result("msp", f"reply_ms_p99_{mode}", round(float(np.percentile(replies_ms, 99)), 3), "ms"),
            Result("msp", f"reply_ms_max_{mode}", round(float(replies_ms.max()), 3), "ms"),
            Result("msp", f"replies_lost_{mode}", figures["lost"], "replies"),
            Result("msp", f"failsafes_{mode}", failsafes, "events"),
        ]
    import importlib.util

    if importlib.util.find_spec("yamspy") is not None:
        connects_ms = sorted(_yamspy_connect_s() * 1e3 for _ in range(3))
        results.append(Result("msp", "yamspy_connect_ms", round(connects_ms[1], 1), "ms"))
    return results


def _yamspy_connect_s() -> float:
    """yamspy's connect (it asks API version, variant, version, board, build, name, status) against a
    hovering flight in threaded mode; raises when it does not identify the simulator."""
    from sim.ports.bridge import PtyBridge

    with PtyBridge(1) as bridge:
        pair = bridge.paths[0]
        runner = threading.Thread(target=bridge.run, name="bench:pty-bridge", daemon=True)
        runner.start()
        try:
            _loop, client, out = _fly_with_client(pair.a, [_YAMSPY_CLIENT, pair.b], "threaded", 60.0)
        finally:
            bridge.stop()
            runner.join(5.0)
    figures = json.loads(out.strip().splitlines()[-1]) if client.returncode == 0 and out.strip() else {}
    if not figures.get("identified"):
        raise RuntimeError("bench msp: yamspy did not identify the simulator")
    return figures["connect_s"]


def _one_flight(mode: str, seconds: float) -> tuple[dict, int]:
    master, slave = os.openpty()
    try:
        loop, client, out = _fly_with_client(
            os.ttyname(slave), [_CLIENT, str(master), repr(seconds)], mode, seconds + 30.0, pass_fds=(master,)
        )
        if client.returncode != 0:
            raise RuntimeError(f"bench msp: the MSP client failed in {mode} mode")
        events = loop.summary()["events"]
        failsafes = sum(1 for e in events if e["kind"] == "failsafe_on" and "since the start" not in e["detail"])
        return json.loads(out.strip().splitlines()[-1]), failsafes
    finally:
        os.close(master)
        os.close(slave)


def _fly_with_client(
    rc_url: str, script_and_args: list[str], mode: str, duration_s: float, pass_fds: tuple[int, ...] = ()
) -> tuple:
    """A hovering trex450 whose rc-in port (``rc_url``) speaks MSP, flown until a client process
    (``python -P -c SCRIPT ARGS...``, started at the first tick) exits; the loop, the client and its
    output."""
    from sim.config import FlightConfig, PortSpec, apply_overrides, load_heli
    from sim.session import flight_session

    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=duration_s, io=mode)
    config = replace(config, ports=(PortSpec(role="rc-in", url=rc_url, protocol="msp"),))
    client: list[subprocess.Popen] = []

    def drive(loop) -> None:
        if not client:
            command = [sys.executable, "-P", "-c", *script_and_args]
            client.append(subprocess.Popen(command, pass_fds=pass_fds, stdout=subprocess.PIPE, text=True))
        elif client[0].poll() is not None:
            loop.request_stop("client done")

    try:
        with flight_session(config, load_heli("trex450"), before_tick=drive) as loop:
            loop.run()
    finally:
        if client and client[0].poll() is None:
            client[0].kill()
    out, _ = client[0].communicate(timeout=30)
    return loop, client[0], out
