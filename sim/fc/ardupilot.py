"""ArduPilot SITL through its JSON interface (``--model JSON:HOST``), as a firmware link.

The format itself (servo frames, the sensor line) is ``sim.protocols.ardupilot_json``; this adapts
it to the shared lock-step link (``sim.fc.link``), and adds SITL's UDP RC input: ArduPilot builds
that do not read the JSON ``rc`` field (those before late 2025) take the pilot's channels there.
"""

from __future__ import annotations

import struct

from sim.fc.link import FirmwareFrame
from sim.protocols.ardupilot_json import Floats, decode_servo_frame
from sim.protocols.rc import CENTRE_US

__all__ = ["decode", "encode_rc"]

_RC_INPUT_CHANNELS = 16


def decode(data: bytes) -> FirmwareFrame:
    """One servo frame; ``FrameError`` (a ``ValueError``) saying what is wrong otherwise."""
    frame = decode_servo_frame(data)
    return FirmwareFrame(frame.frame_count, frame.step_s, frame.pwm_us)


def encode_rc(channels_us: Floats) -> bytes:
    """SITL's UDP RC input (port 5501 + 10 x instance): 16 little-endian uint16 pulses in us
    (channels past the given ones centred)."""
    pulses = [round(float(us)) for us in channels_us[:_RC_INPUT_CHANNELS]]
    pulses += [CENTRE_US] * (_RC_INPUT_CHANNELS - len(pulses))
    return struct.pack(f"<{_RC_INPUT_CHANNELS}H", *(min(max(p, 0), 65535) for p in pulses))
