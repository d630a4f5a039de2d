"""The flight controller's side of a MAVLink conversation: what heli-sim answers a ground station.

``GroundStationLink.on_message`` takes each message a ground station sends (in the telemetry
port's I/O thread) and answers at once what needs no flight: the parameter list and values,
REQUEST_MESSAGE and SET_MESSAGE_INTERVAL, AUTOPILOT_VERSION, a mission protocol with no mission
(MISSION_COUNT 0; uploads refused), MAVLink FTP with a NAK (no files: a ground station falls
back to the parameter protocol), and COMMAND_ACK ``UNSUPPORTED`` for any other command.  What
changes the flight (arm, disarm, a flight mode, a parameter set) is queued for the loop
(``take_requests``), which applies it at its next tick under the transmitter's rules and answers
(``answer``); the answers go out with the port's next exchange (``take_outgoing``).

Everything is built with pymavlink's message classes; ``sim.protocols.mavlink.TelemetryEncoder``
packs it with the telemetry's own sequence numbers.  Replies go to the system and component that
asked.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink2

from heli.control import ControllerParams
from sim.protocols.mavlink import COMPONENT_ID, CUSTOM_MODES, SYSTEM_ID, TelemetryEncoder
from sim.protocols.mavlink_params import ParamInfo, ParamTable

__all__ = ["FLIGHT_MODE_OF_CUSTOM", "GroundStationLink", "Request"]

# a ground station's custom_mode -> heli-sim's flight mode (the three a pilot can choose)
FLIGHT_MODE_OF_CUSTOM = {CUSTOM_MODES[name]: name for name in ("rate", "angle", "rescue")}
_FTP_NAK = 129  # MAVLink FTP opcode: NAK
_FTP_UNKNOWN_COMMAND = 7  # MAVLink FTP error: this end does not implement the request
_VERSION = (0, 1, 0)  # heli-sim's version, as AUTOPILOT_VERSION's flight_sw_version
_CAPABILITIES = (
    mavlink2.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
    | mavlink2.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
    | mavlink2.MAV_PROTOCOL_CAPABILITY_MAVLINK2
)
_ONE_SHOT = {  # message id -> name, for REQUEST_MESSAGE and SET_MESSAGE_INTERVAL
    mavlink2.MAVLINK_MSG_ID_HEARTBEAT: "HEARTBEAT",
    mavlink2.MAVLINK_MSG_ID_SYS_STATUS: "SYS_STATUS",
    mavlink2.MAVLINK_MSG_ID_SYSTEM_TIME: "SYSTEM_TIME",
    mavlink2.MAVLINK_MSG_ID_ATTITUDE: "ATTITUDE",
    mavlink2.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: "ATTITUDE_QUATERNION",
    mavlink2.MAVLINK_MSG_ID_LOCAL_POSITION_NED: "LOCAL_POSITION_NED",
    mavlink2.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: "GLOBAL_POSITION_INT",
    mavlink2.MAVLINK_MSG_ID_GPS_RAW_INT: "GPS_RAW_INT",
    mavlink2.MAVLINK_MSG_ID_VFR_HUD: "VFR_HUD",
    mavlink2.MAVLINK_MSG_ID_RC_CHANNELS: "RC_CHANNELS",
    mavlink2.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: "SERVO_OUTPUT_RAW",
    mavlink2.MAVLINK_MSG_ID_HOME_POSITION: "HOME_POSITION",
    mavlink2.MAVLINK_MSG_ID_BATTERY_STATUS: "BATTERY_STATUS",
}


@dataclass(frozen=True)
class Request:
    """Something only the loop can do: ``kind`` "arm" (value 1 or 0), "mode" (a flight mode name)
    or "param" (``param``: which, ``value``: to what); ``command`` is the MAVLink command (or
    message) id to acknowledge, 0 for a parameter; the sender to answer."""

    kind: str
    value: Any
    command: int
    system: int
    component: int
    param: ParamInfo | None = None


class GroundStationLink:
    """One MAVLink system's conversation with the ground stations on its telemetry port."""

    def __init__(
        self,
        params: ControllerParams,
        encoder: TelemetryEncoder,
        rc_override: bool = False,
        *,
        max_rate_hz: float = 50.0,
        has_battery: bool = True,
    ):
        """``rc_override``: RC_CHANNELS_OVERRIDE is taken as pilot input (else it is ignored);
        ``max_rate_hz``: how often the flight hands the port a sample (the fastest any message
        can go); ``has_battery``: False for an engine (no BATTERY_STATUS to send)."""
        self.params = params  # the controller's parameters now; the loop replaces it when one is set
        self.rc_override = rc_override
        self.max_rate_hz = max_rate_hz
        self._messages = {k: v for k, v in _ONE_SHOT.items() if has_battery or v != "BATTERY_STATUS"}
        self.rejected = 0  # messages whose fields made no sense (NaN, out of range): answered, not acted on
        # the newest RC_CHANNELS_OVERRIDE: (monotonic s when read, 18 channel values); one
        # assignment, read by the loop whole
        self.override: tuple[float, tuple[int, ...]] | None = None
        self.table = ParamTable()
        self._encoder = encoder
        self._requests: collections.deque[Request] = collections.deque()
        self._outgoing: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()  # the loop's answers and the I/O thread's replies, in order
        self.handled = 0  # messages answered or acted on
        self.ignored = 0  # messages with nothing to answer (another station's heartbeat, telemetry)

    # --- the I/O thread
    def on_message(self, message: Any) -> bool:
        """Answer or queue ``message`` from a ground station; False if it needs nothing from us."""
        kind = message.get_type()
        handler = getattr(self, f"_on_{kind.lower()}", None)
        if handler is None or not self._for_us(message):
            self.ignored += 1
            return False
        try:
            taken = handler(message)
        except (ValueError, OverflowError, TypeError, IndexError) as error:  # fields no sender should send
            self.rejected += 1
            self._refuse_malformed(message, error)
            return True
        if taken is False:  # a message it takes only when allowed
            self.ignored += 1
            return False
        self.handled += 1
        return True

    def _refuse_malformed(self, message: Any, error: Exception) -> None:
        """A command whose fields cannot be taken (NaN, infinite, out of range) is DENIED, said why."""
        command = getattr(message, "command", None)
        if command is not None:
            self._ack(command, mavlink2.MAV_RESULT_DENIED, message.get_srcSystem(), message.get_srcComponent())
        self._reply(_status(f"{message.get_type()}: {error}"))

    def take_outgoing(self) -> list[Any]:
        """The replies waiting to be sent, oldest first."""
        with self._lock:
            out = list(self._outgoing)
            self._outgoing.clear()
        return out

    # --- the loop
    def take_requests(self) -> list[Request]:
        out = []
        while self._requests:
            out.append(self._requests.popleft())
        return out

    def answer(self, request: Request, result: int, text: str = "") -> None:
        """The loop's verdict on ``request`` (a ``MAV_RESULT``), and why in a STATUSTEXT if refused."""
        if request.param is not None:  # a parameter set (kind "param")
            index = self.table.infos.index(request.param)
            self._reply(self._param_value(index, request.param))
        else:
            self._reply(mavlink2.MAVLink_command_ack_message(request.command, result, 0, 0, request.system,
                                                             request.component))  # fmt: skip
        if text:
            self._reply(_status(text))

    # --- answers
    def _reply(self, message: Any) -> None:
        with self._lock:
            self._outgoing.append(message)

    @staticmethod
    def _for_us(message: Any) -> bool:
        """A message addressed to this system and its autopilot component (or to every one of them)."""
        system = getattr(message, "target_system", 0)
        component = getattr(message, "target_component", 0)
        return system in (0, SYSTEM_ID) and component in (0, COMPONENT_ID)

    def _param_value(self, index: int, info: ParamInfo) -> Any:
        return mavlink2.MAVLink_param_value_message(
            info.id.encode(), self.table.value(self.params, info), mavlink2.MAV_PARAM_TYPE_REAL32, len(self.table),
            index,
        )  # fmt: skip

    def _on_param_request_list(self, message: Any) -> None:
        for index, info in enumerate(self.table.infos):
            self._reply(self._param_value(index, info))

    def _on_param_request_read(self, message: Any) -> None:
        found = self.table.find(_text(message.param_id), message.param_index)
        if found is not None:
            self._reply(self._param_value(*found))

    def _on_param_set(self, message: Any) -> None:
        found = self.table.find(_text(message.param_id), -1)
        if found is None:
            self._reply(_status(f"no parameter {_text(message.param_id)!r}"))
            return
        index, info = found
        refusal = info.refusal(float(message.param_value))
        if refusal is not None:  # the value it has: the ground station sees the set did not take
            self._reply(self._param_value(index, info))
            self._reply(_status(refusal))
            return
        self._requests.append(Request("param", float(message.param_value), 0, message.get_srcSystem(),
                                      message.get_srcComponent(), info))  # fmt: skip

    def _on_command_long(self, message: Any) -> None:
        self._command(message, message.command, message.param1, message.param2)

    def _on_command_int(self, message: Any) -> None:
        self._command(message, message.command, message.param1, message.param2)

    def _on_set_mode(self, message: Any) -> None:
        self._mode(message, mavlink2.MAVLINK_MSG_ID_SET_MODE, message.base_mode, message.custom_mode)

    def _command(self, message: Any, command: int, param1: float, param2: float) -> None:
        sender = (message.get_srcSystem(), message.get_srcComponent())
        if not (math.isfinite(param1) and math.isfinite(param2)):
            raise ValueError(f"command {command}: parameters 1 and 2 must be finite, got {param1!r}, {param2!r}")
        if command == mavlink2.MAV_CMD_COMPONENT_ARM_DISARM:
            if param1 not in (0.0, 1.0):
                self._ack(command, mavlink2.MAV_RESULT_DENIED, *sender)
                return
            self._requests.append(Request("arm", int(param1), command, *sender))
        elif command == mavlink2.MAV_CMD_DO_SET_MODE:
            self._mode(message, command, int(param1), int(param2))
        elif command == mavlink2.MAV_CMD_REQUEST_MESSAGE:
            self._request_message(command, int(param1), sender)
        elif command == mavlink2.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self._ack(command, mavlink2.MAV_RESULT_ACCEPTED, *sender)
            self._reply(_autopilot_version())
        elif command == mavlink2.MAV_CMD_SET_MESSAGE_INTERVAL:
            self._message_interval(command, int(param1), param2, sender)
        else:
            self._ack(command, mavlink2.MAV_RESULT_UNSUPPORTED, *sender)

    def _mode(self, message: Any, command: int, base_mode: int, custom_mode: int) -> None:
        sender = (message.get_srcSystem(), message.get_srcComponent())
        mode = FLIGHT_MODE_OF_CUSTOM.get(custom_mode)
        if not base_mode & mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED or mode is None:
            self._ack(command, mavlink2.MAV_RESULT_DENIED, *sender)
            self._reply(_status(f"mode {custom_mode}: a helicopter here flies ACRO (1), STABILIZE (0), BRAKE (17)"))
            return
        self._requests.append(Request("mode", mode, command, *sender))

    def _request_message(self, command: int, message_id: int, sender: tuple[int, int]) -> None:
        if message_id == mavlink2.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            self._ack(command, mavlink2.MAV_RESULT_ACCEPTED, *sender)
            self._reply(_autopilot_version())
        elif message_id in self._messages:
            self._ack(command, mavlink2.MAV_RESULT_ACCEPTED, *sender)
            self._encoder.send_once(self._messages[message_id])
        else:
            self._ack(command, mavlink2.MAV_RESULT_UNSUPPORTED, *sender)

    def _message_interval(self, command: int, message_id: int, interval_us: float, sender: tuple[int, int]) -> None:
        name = self._messages.get(message_id)
        if name is None:
            self._ack(command, mavlink2.MAV_RESULT_UNSUPPORTED, *sender)
            return
        if 0 < interval_us < 1e6 / self.max_rate_hz:  # the flight hands the port a sample this often at most
            self._ack(command, mavlink2.MAV_RESULT_DENIED, *sender)
            self._reply(_status(f"{name}: at most {self.max_rate_hz:g} Hz"))
            return
        rate_hz = None if interval_us == 0 else 0.0 if interval_us < 0 else 1e6 / interval_us
        self._encoder.set_rate(name, rate_hz)
        self._ack(command, mavlink2.MAV_RESULT_ACCEPTED, *sender)

    def _ack(self, command: int, result: int, system: int, component: int) -> None:
        self._reply(mavlink2.MAVLink_command_ack_message(command, result, 0, 0, system, component))

    def _on_rc_channels_override(self, message: Any) -> bool:
        if not self.rc_override:
            return False
        values = tuple(int(getattr(message, f"chan{i}_raw", 0)) for i in range(1, 19))
        self.override = (time.monotonic(), values)
        return True

    def _on_mission_request_list(self, message: Any) -> None:
        self._reply(mavlink2.MAVLink_mission_count_message(message.get_srcSystem(), message.get_srcComponent(), 0,
                                                           getattr(message, "mission_type", 0)))  # fmt: skip

    def _on_mission_count(self, message: Any) -> None:  # an upload: there is nothing to fly it
        self._mission_ack(message, mavlink2.MAV_MISSION_UNSUPPORTED)

    def _on_mission_clear_all(self, message: Any) -> None:
        self._mission_ack(message, mavlink2.MAV_MISSION_ACCEPTED)

    def _on_mission_request_int(self, message: Any) -> None:
        self._mission_ack(message, mavlink2.MAV_MISSION_INVALID_SEQUENCE)

    _on_mission_request = _on_mission_request_int

    def _mission_ack(self, message: Any, result: int) -> None:
        self._reply(mavlink2.MAVLink_mission_ack_message(message.get_srcSystem(), message.get_srcComponent(), result,
                                                         getattr(message, "mission_type", 0)))  # fmt: skip

    def _on_file_transfer_protocol(self, message: Any) -> None:
        payload = bytes(message.payload)
        seq = int.from_bytes(payload[0:2], "little")
        session, opcode = payload[2], payload[3]
        # header: seq, session, opcode, size, req_opcode, burst_complete, padding, offset; data: the error
        nak = ((seq + 1) & 0xFFFF).to_bytes(2, "little") + bytes((session, _FTP_NAK, 1, opcode, 0, 0))
        nak += bytes(4) + bytes((_FTP_UNKNOWN_COMMAND,))
        self._reply(mavlink2.MAVLink_file_transfer_protocol_message(0, message.get_srcSystem(),
                                                                    message.get_srcComponent(),
                                                                    list(nak.ljust(251, b"\0"))))  # fmt: skip


def _text(value: Any) -> str:
    """A MAVLink char array as text (pymavlink gives str or bytes, NUL-padded)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.split("\0", 1)[0]


def _status(text: str) -> Any:
    return mavlink2.MAVLink_statustext_message(mavlink2.MAV_SEVERITY_WARNING, text[:50].encode(), 0, 0)


def _autopilot_version() -> Any:
    major, minor, patch = _VERSION
    version = major << 24 | minor << 16 | patch << 8 | 0xFF  # FIRMWARE_VERSION_TYPE_OFFICIAL in the low byte
    return mavlink2.MAVLink_autopilot_version_message(_CAPABILITIES, version, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0,
                                                      SYSTEM_ID)  # fmt: skip
