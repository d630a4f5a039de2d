"""A stand-in for ArduPilot SITL's JSON physics client, written from the published format: it sends
servo frames to heli-sim and checks every reply as ArduPilot would parse it.

    python -P -m sim.fc.standin --port 9002 --frames 2400 [--rate 1200] [--pulses 1500,...]
        [--lose K] [--repeat K] [--restart K] [--malformed K] [--silent-after K] [--silence-s S]

It runs lock-step: send frame ``count``, wait for the answer (re-sending the same frame after
``--resend-s`` without one, as ArduPilot does), check it, send the next.  The options make the
frame at index K go wrong in one way each: ``--lose`` skips a count (a frame lost on the way),
``--repeat`` sends a frame twice, ``--restart`` starts the counter again from 0 (a restarted
firmware), ``--malformed`` first sends a datagram a byte too short and one a byte too long,
``--silent-after`` stops for ``--silence-s`` seconds.  At the end it prints one JSON line: the
frames sent, the replies parsed, any reply that was not one compact JSON line led by a newline
(``bad_replies``), the timestamps' steps, and the last reply.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from typing import Any

__all__ = ["main"]

_MAGIC = 18458
_REQUIRED = ("timestamp", "imu", "position", "velocity")


def _frame(rate: int, count: int, pulses: list[int]) -> bytes:
    return struct.pack("<HHI16H", _MAGIC, rate, count & 0xFFFFFFFF, *pulses)


def _check(data: bytes) -> tuple[dict | None, str]:
    """The reply parsed as ArduPilot parses it, or None and why not."""
    if not data.startswith(b"\n"):
        return None, "not led by a newline"
    lines = [line for line in data.split(b"\n") if line]
    if len(lines) != 1:
        return None, f"{len(lines)} lines"
    if b" " in lines[0]:
        return None, "not compact (ArduPilot's parser fails on spaces)"
    try:
        reply = json.loads(lines[0])
    except ValueError as error:
        return None, f"not JSON: {error}"
    missing = [key for key in _REQUIRED if key not in reply]
    if "quaternion" not in reply and "attitude" not in reply:
        missing.append("quaternion")
    if missing or "gyro" not in reply.get("imu", {}) or "accel_body" not in reply.get("imu", {}):
        return None, f"missing {missing or 'imu.gyro / imu.accel_body'}"
    return reply, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.fc.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--rate", type=int, default=1200)
    parser.add_argument("--pulses", default="", help="16 comma-separated pulses (us); default all 1500")
    parser.add_argument("--lose", type=int, action="append", default=[])
    parser.add_argument("--repeat", type=int, action="append", default=[])
    parser.add_argument("--restart", type=int, action="append", default=[])
    parser.add_argument("--malformed", type=int, action="append", default=[])
    parser.add_argument("--silent-after", type=int, default=-1)
    parser.add_argument("--silence-s", type=float, default=0.0)
    parser.add_argument("--resend-s", type=float, default=1.1)
    parser.add_argument("--give-up-s", type=float, default=20.0, help="no reply for this long: stop")
    args = parser.parse_args(argv)
    pulses = [int(p) for p in args.pulses.split(",")] if args.pulses else [1500] * 16
    pulses = (pulses + [0] * 16)[:16]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    target = (args.host, args.port)
    result: dict[str, Any] = {  # the JSON line it prints at the end
        "sent": 0, "replies": 0, "duplicates": 0, "bad_replies": [], "step_min": 1e9, "step_max": 0.0,
        "last": None, "gave_up": False,
    }  # fmt: skip
    count = 0
    try:
        for index in range(args.frames):
            if index == args.silent_after and args.silence_s > 0:
                time.sleep(args.silence_s)
            if index in args.restart:
                count = 0
            if index in args.lose:
                count += 1
            if index in args.malformed:
                good = _frame(args.rate, count, pulses)
                sock.sendto(good[:-1], target)
                sock.sendto(good + b"\x00", target)
            data = _frame(args.rate, count, pulses)
            sock.sendto(data, target)
            result["sent"] += 1
            if index in args.repeat:
                sock.sendto(data, target)
                result["sent"] += 1
            if not _await_reply(sock, data, target, args, result, restarted=index in args.restart):
                result["gave_up"] = True
                break
            count += 1
    finally:
        sock.close()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _await_reply(
    sock: socket.socket, frame: bytes, target: tuple, args: argparse.Namespace, result: dict, restarted: bool
) -> bool:
    """Wait for one good reply to ``frame`` (re-sending it every ``resend_s``); False on giving up.
    A reply's timestamp must move on from the last one's, except right after a restart."""
    give_up = time.monotonic() + args.give_up_s
    while time.monotonic() < give_up:
        sock.settimeout(args.resend_s)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            sock.sendto(frame, target)
            result["sent"] += 1
            continue
        reply, why = _check(data)
        if reply is None:
            result["bad_replies"].append(why)
            continue
        previous = result["last"]
        if previous is not None and reply["timestamp"] <= previous["timestamp"] and not restarted:
            result["duplicates"] += 1  # a second answer to a repeated frame: not this frame's answer
            continue
        result["replies"] += 1
        if previous is not None and not restarted:
            step = reply["timestamp"] - previous["timestamp"]
            result["step_min"] = min(result["step_min"], step)
            result["step_max"] = max(result["step_max"], step)
        result["last"] = reply
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
