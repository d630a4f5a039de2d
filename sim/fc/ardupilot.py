"""ArduPilot SITL through its JSON interface (``--model JSON:HOST``), as a firmware link.

The format itself (servo frames, the sensor line) is ``sim.protocols.ardupilot_json``; this adapts
it to the shared lock-step link (``sim.fc.link``).
"""

from __future__ import annotations

from sim.fc.link import FirmwareFrame
from sim.protocols.ardupilot_json import Sensors, decode_servo_frame, sensor_line

__all__ = ["decode", "encode_reply"]


def decode(data: bytes) -> FirmwareFrame:
    """One servo frame; ``FrameError`` (a ``ValueError``) saying what is wrong otherwise."""
    frame = decode_servo_frame(data)
    return FirmwareFrame(frame.frame_count, frame.step_s, frame.pwm_us)


def encode_reply(sensors: Sensors) -> bytes:
    """The JSON sensor line ArduPilot waits for."""
    return sensor_line(sensors)
