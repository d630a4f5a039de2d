"""The firmwares heli-sim can fly, one entry each: how a frame decodes and how a reply encodes.

Adding a firmware's simulation protocol is one module beside ``sim.fc.ardupilot`` and one entry
here (with its name in ``sim.fc.config.FC_PROTOCOLS``): the link, the loop, the view, the log
and the replay are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.fc import ardupilot
from sim.fc.link import FirmwareFrame
from sim.protocols.ardupilot_json import Floats, Sensors, sensor_line

__all__ = ["FIRMWARES", "Firmware"]


@dataclass(frozen=True)
class Firmware:
    """One firmware's simulation protocol."""

    name: str
    title: str  # who it is, in a few words, for the view and the summary
    decode: Callable[[bytes], FirmwareFrame]
    encode_reply: Callable[[Sensors], bytes]
    sends_rc: bool  # the reply carries the pilot's channels
    encode_rc: Callable[[Floats], bytes] | None = None  # the channels as a datagram of their own
    preset_folder: str = ""  # configs/FOLDER/NAME.toml and NAME.parm: the shipped setup per helicopter


FIRMWARES: dict[str, Firmware] = {
    "ardupilot-json": Firmware(
        name="ardupilot-json",
        title="ArduPilot SITL (JSON)",
        decode=ardupilot.decode,
        encode_reply=sensor_line,
        sends_rc=True,
        encode_rc=ardupilot.encode_rc,
        preset_folder="ardupilot",
    ),
}
