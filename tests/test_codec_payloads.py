"""Every codec against frames that are well framed and well checksummed but carry any payload.

Each protocol's frames are built here from its own framing rules (sync, length, checksum computed
independently of ``sim.protocols`` where the protocol is ours or simple; pymavlink's CRC with the
message's CRC_EXTRA for MAVLink), with payloads of any length and any content.  Fed to a codec's
decoder, on both sides of a port (the simulator's and the emulated device's), such a frame is
either delivered or counted in ``decode_errors``; whatever is delivered, every question a role
asks of the codec (``channels_of``, ``respond`` and encoding the reply, ``link_statistics_of``,
``is_servo_ack``) and the flight log's ``frame_values`` answer without raising.  The device
emulators' loop (``run_device``, on a real pty) takes the same frames and never stops.
"""

from __future__ import annotations

import binascii
import os
import re
import struct
import time
import tty

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pymavlink.dialects.v20 import common as mavlink2

from sim.devices.emulators import GroundStation, Link, ServoBoard, SteadySticks, Transmitter, run_device
from sim.devices.far_end import FdFarEnd
from sim.log.writer import frame_values
from sim.ports.codecs import FlightSnapshot, make_codec
from sim.protocols import crsf, ibus, sbus
from sim.protocols.hsf import Frame, PayloadError, unpack

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
DEVICE_FUZZ = settings(max_examples=40, deadline=None, derandomize=True)  # a pty and a device loop per example

SNAPSHOT = FlightSnapshot(
    attitude_rad=(0.1, -0.2, 3.0), altitude_m=12.0, climb_m_s=-0.5, armed=True, mode="angle",
    channels_us=(1500.0,) * 16, battery_voltage_v=22.2,
)  # fmt: skip

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)


# ---------------------------------------------------------------- framing, from each protocol's rules


def crc8_dvb_s2(data: bytes) -> int:
    """CRC-8/DVB-S2, bit by bit (poly 0xD5, init 0): CRSF's and MSP v2's checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0xD5) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def xor_all(data: bytes) -> int:
    out = 0
    for byte in data:
        out ^= byte
    return out


def hsf_frame(type_id: int, seq: int, payload: bytes) -> bytes:
    body = struct.pack("<BHB", type_id, seq, len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


def crsf_frame(address: int, type_id: int, payload: bytes) -> bytes:
    body = bytes([type_id]) + payload
    return bytes([address, len(body) + 1]) + body + bytes([crc8_dvb_s2(body)])


def sbus_frame(body: bytes, end: int) -> bytes:
    return b"\x0f" + body + bytes([end])  # 22 channel bytes and the flags; SBUS has no checksum


def ibus_frame(words: bytes) -> bytes:
    body = b"\x20\x40" + words
    return body + struct.pack("<H", (0xFFFF - sum(body)) & 0xFFFF)


def msp_v1(direction: str, command: int, payload: bytes) -> bytes:
    if len(payload) < 255:
        body = bytes([len(payload), command]) + payload
    else:  # jumbo
        body = bytes([255, command]) + struct.pack("<H", len(payload)) + payload
    return b"$M" + direction.encode() + body + bytes([xor_all(body)])


def msp_v2(direction: str, flag: int, command: int, payload: bytes) -> bytes:
    body = struct.pack("<BHH", flag, command, len(payload)) + payload
    return b"$X" + direction.encode() + body + bytes([crc8_dvb_s2(body)])


def msp_v2_over_v1(direction: str, flag: int, command: int, payload: bytes) -> bytes:
    inner = struct.pack("<BHH", flag, command, len(payload)) + payload
    inner += bytes([crc8_dvb_s2(inner)])
    body = bytes([len(inner), 255]) + inner
    return b"$M" + direction.encode() + body + bytes([xor_all(body)])


MAVLINK_IDS = sorted(mavlink2.mavlink_map)


def mavlink_frame(msgid: int, seq: int, payload: bytes) -> bytes:
    """A MAVLink v2 frame (no signature) with pymavlink's CRC: X.25 over the header and payload,
    then the message's CRC_EXTRA."""
    header = struct.pack("<BBBBBB", len(payload), 0, 0, seq, 1, 1) + msgid.to_bytes(3, "little")
    crc = mavlink2.x25crc(header + payload)
    crc.accumulate(bytes([mavlink2.mavlink_map[msgid].crc_extra]))
    return b"\xfd" + header + payload + struct.pack("<H", crc.crc)


MAESTRO_DATA = {0x84: 3, 0x87: 3, 0x89: 3, 0x90: 1, 0x93: 0, 0xA1: 0, 0xA2: 0}


def maestro_command(command: int, data: bytes) -> bytes:
    return bytes([command]) + bytes(b & 0x7F for b in data)  # data bytes have the high bit clear


# ---------------------------------------------------------------- strategies: any payload, good framing

payloads = st.binary(max_size=80) | st.binary(min_size=200, max_size=300)
msp_commands = st.sampled_from([200, 105, 108, 101, 1, 254]) | u8
msp_directions = st.sampled_from("<>!")

hsf_frames = st.builds(hsf_frame, st.integers(0, 8) | u8, u16, st.binary(max_size=240))
crsf_frames = st.builds(
    crsf_frame,
    st.sampled_from(sorted(crsf.ADDRESSES)),
    st.sampled_from([0x16, 0x14, 0x1E, 0x08, 0x21, 0x09, 0x07]) | u8,
    st.binary(max_size=60),
)
sbus_frames = st.builds(sbus_frame, st.binary(min_size=23, max_size=23), st.sampled_from(sorted(sbus.END_BYTES)))
ibus_frames = st.builds(ibus_frame, st.binary(min_size=28, max_size=28))
msp_frames = st.one_of(
    st.builds(msp_v1, msp_directions, st.integers(0, 254), payloads),
    st.builds(msp_v2, msp_directions, u8, msp_commands, payloads),
    st.builds(msp_v2_over_v1, msp_directions, u8, msp_commands, st.binary(max_size=248)),
    # MSP_SET_RAW_RC requests with any payload: the issue's 40-byte v2 frame is one of them
    st.builds(msp_v2, st.just("<"), st.just(0), st.just(200), st.binary(max_size=60)),
    st.builds(msp_v1, st.just("<"), st.just(200), st.binary(max_size=60)),
)
mavlink_frames = st.builds(mavlink_frame, st.sampled_from(MAVLINK_IDS), u8, st.binary(max_size=255))
maestro_frames = st.builds(
    lambda command, data, extra: maestro_command(command, data[: MAESTRO_DATA[command]]) if command != 0x9F
    else maestro_command(0x9F, bytes([extra, 0]) + data[: 2 * extra]),
    st.sampled_from([*MAESTRO_DATA, 0x9F]), st.binary(min_size=8, max_size=8), st.integers(1, 4),
)  # fmt: skip
maestro_replies = st.binary(min_size=2, max_size=2)

FRAMES = {
    "hsf": hsf_frames,
    "crsf": crsf_frames,
    "sbus": sbus_frames,
    "ibus": ibus_frames,
    "msp": msp_frames,
    "mavlink": mavlink_frames,
    "maestro": maestro_frames | maestro_replies,
}
SIDES = [(protocol, side) for protocol in FRAMES for side in ("host", "device")]


def ask_everything(codec, seq: int | None, message) -> None:
    """Every question a role (and the flight log) asks about a decoded message; none may raise."""
    sticks = codec.channels_of(message)
    if sticks is not None:
        assert isinstance(sticks.vehicle, int) and all(isinstance(c, float) for c in sticks.channels_us)
    for snapshot in (SNAPSHOT, None):
        for reply in codec.respond(message, snapshot):
            assert isinstance(codec.encode(reply, 0), bytes)  # what the port sends back encodes
    codec.link_statistics_of(message)
    codec.is_servo_ack(message, 0 if seq is None else seq)
    frame_values(message)


# ---------------------------------------------------------------- streams of such frames, both sides


@pytest.mark.parametrize(("protocol", "side"), SIDES, ids=[f"{p}-{s}" for p, s in SIDES])
def test_any_payload_in_good_frames_never_raises_and_nothing_vanishes(protocol, side):
    @FUZZ
    @given(st.lists(FRAMES[protocol], min_size=1, max_size=6), st.lists(st.integers(0, 2000), max_size=4))
    def check(frames, cuts):
        codec = make_codec(protocol, side)
        decoder = codec.new_decoder()
        stream = b"".join(frames)
        points = sorted({min(c, len(stream)) for c in cuts})
        delivered = []
        for a, b in zip([0, *points], [*points, len(stream)], strict=True):
            delivered += decoder.feed(stream[a:b])
        for seq, message in delivered:
            ask_everything(codec, seq, message)
        # each frame comes out, or is counted (an inner frame may come out instead of its outer one)
        assert len(delivered) + decoder.decode_errors + (1 if protocol in ("maestro", "mavlink") else 0) >= 1

    check()


# ---------------------------------------------------------------- one frame: delivered exactly when its payload fits


@FUZZ
@given(st.integers(0, 8) | u8, u16, st.binary(max_size=240))
def test_hsf_payloads_that_do_not_fit_are_counted_not_delivered(type_id, seq, payload):
    frame = hsf_frame(type_id, seq, payload)
    assume(frame.count(b"\xa5\x5a") == 1)  # no frame hidden inside this one
    try:
        unpack(Frame(type_id, seq, payload))
        fits = True
    except PayloadError:
        fits = False
    for side in ("host", "device"):
        decoder = make_codec("hsf", side).new_decoder()
        delivered = decoder.feed(frame)
        assert (len(delivered), decoder.decode_errors) == ((1, 0) if fits else (0, 1))


@FUZZ
@given(st.sampled_from([1, 2, "over"]), st.binary(max_size=60))
def test_msp_set_raw_rc_with_any_payload_is_taken_or_counted(version, payload):
    framings = {1: msp_v1, 2: lambda d, c, p: msp_v2(d, 0, c, p), "over": lambda d, c, p: msp_v2_over_v1(d, 0, c, p)}
    frame = framings[version]("<", 200, payload)
    assume(frame.count(b"$") == 1)  # no frame hidden inside this one
    fits = len(payload) % 2 == 0 and 2 <= len(payload) <= 36  # 1..18 u16 channels
    codec = make_codec("msp", "host")
    decoder = codec.new_decoder()
    delivered = decoder.feed(frame)
    assert (len(delivered), decoder.decode_errors) == ((1, 0) if fits else (0, 1))
    if fits:
        ((_, message),) = delivered
        assert codec.channels_of(message).channels_us == struct.unpack(f"<{len(payload) // 2}H", payload)
        assert [reply.payload for reply in codec.respond(message, None)] == [b""]  # the flight controller's ack


def test_the_40_byte_msp_v2_set_raw_rc_frame_of_the_issue_is_one_decode_error():
    codec = make_codec("msp", "host")
    decoder = codec.new_decoder()
    good = msp_v2("<", 0, 200, struct.pack("<8H", *[1500] * 8))
    delivered = decoder.feed(good + msp_v2("<", 0, 200, bytes(range(40))) + good)
    assert [codec.channels_of(m).channels_us[0] for _, m in delivered] == [1500, 1500]
    assert decoder.decode_errors == 1


CRSF_MIN = {0x14: 10, 0x1E: 6, 0x08: 8, 0x21: 0, 0x09: 2, 0x07: 2}  # the layouts in sim/protocols/crsf.py


@FUZZ
@given(st.sampled_from(sorted(crsf.ADDRESSES)), st.sampled_from([0x16, *CRSF_MIN]) | u8, st.binary(max_size=60))
def test_crsf_payloads_that_do_not_fit_are_counted_not_delivered(address, type_id, payload):
    frame = crsf_frame(address, type_id, payload)
    assume(re.search(rb"[\x00\xc8\xea\xee][\x02-\x3e]", frame[1:]) is None)  # no other candidate frame inside
    fits = len(payload) == 22 if type_id == 0x16 else len(payload) >= CRSF_MIN.get(type_id, 0)
    codec = make_codec("crsf")
    decoder = codec.new_decoder()
    delivered = decoder.feed(frame)
    assert (len(delivered), decoder.decode_errors) == ((1, 0) if fits else (0, 1))
    for seq, message in delivered:
        ask_everything(codec, seq, message)


@FUZZ
@given(st.one_of(sbus_frames.map(lambda f: ("sbus", f)), ibus_frames.map(lambda f: ("ibus", f))))
def test_every_well_framed_sbus_and_ibus_frame_carries_channels(protocol_and_frame):
    protocol, frame = protocol_and_frame
    codec = make_codec(protocol)
    ((_, message),) = codec.new_decoder().feed(frame)
    sticks = codec.channels_of(message)
    highest_us = sbus.ticks_to_us(sbus.TICK_MAX) if protocol == "sbus" else ibus.MAX_VALUE_US
    assert len(sticks.channels_us) in ((16,) if protocol == "sbus" else (14, 18))
    assert all(0 <= c <= highest_us for c in sticks.channels_us)


# ---------------------------------------------------------------- the device emulators' loop, on a real pty


def serve_once(device, codec, data: bytes) -> str:
    """``run_device`` on a pty's master with ``data`` written into the slave, which then hangs up."""
    master, slave = os.openpty()
    tty.setraw(slave)
    end = FdFarEnd(master)
    try:
        os.write(slave, data)
        os.close(slave)
        slave = -1
        deadline = time.monotonic() + 10.0
        return run_device(end, device, lambda: time.monotonic() > deadline, codec)
    finally:
        if slave >= 0:
            os.close(slave)
        end.close()


def devices():
    """Every device kind an emulator plays, with the codecs it can speak."""
    hsf, maestro = make_codec("hsf", "device"), make_codec("maestro", "device")
    neutral = SteadySticks(np.full((2, 16), 1500.0))
    return [
        (ServoBoard(0.0, hsf), hsf, hsf_frames),
        (ServoBoard(0.0, maestro), maestro, maestro_frames),
        (Link(0.0), hsf, hsf_frames),
        (GroundStation(), hsf, hsf_frames),
        (GroundStation(), make_codec("mavlink", "device"), mavlink_frames),
        (Transmitter(100.0, 2, None, neutral, codec=hsf), hsf, hsf_frames),
        (Transmitter(100.0, 1, None, SteadySticks(neutral.frames[:1]), codec=make_codec("msp", "device")),
         make_codec("msp", "device"), msp_frames),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(7), ids=["servo-hsf", "servo-maestro", "link", "gcs-hsf", "gcs-mavlink",
                                                  "transmitter-hsf", "transmitter-msp"])  # fmt: skip
def test_device_emulators_take_any_well_framed_frame_and_go_on(index):
    @DEVICE_FUZZ
    @given(st.data())
    def check(data):
        device, codec, frames = devices()[index]
        sent = data.draw(st.lists(frames, min_size=1, max_size=6))
        ended = serve_once(device, codec, b"".join(sent))
        assert ended.startswith("hangup"), ended  # it read everything, then saw the hang-up: it never stopped
        summary = device.summary()
        assert summary["errors"] == 0, summary.get("first_error")
        assert summary["frames_in"] + summary["decode_errors"] >= 1 or index in (1, 4)

    check()


def test_a_transmitter_skips_states_it_cannot_fly_by():
    """Vehicle states with a NaN, or for a vehicle not in its fleet, are decode errors to it."""
    from sim.protocols.hsf import VehicleStateMsg, encode

    def state(vehicle: int, x: float) -> VehicleStateMsg:
        return VehicleStateMsg(vehicle, 1.0, (x, 0.0, -5.0), (0.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 100.0, False,
                               True)  # fmt: skip

    built: list = []
    codec = make_codec("hsf", "device")
    transmitter = Transmitter(100.0, 2, lambda states: built.append(states) or SteadySticks(states), codec=codec)
    frames = [state(0, float("nan")), state(7, 0.0), state(300, 0.0), state(0, 1.0), state(1, float("inf"))]
    serve_once(transmitter, codec, b"".join(encode(m, i) for i, m in enumerate(frames)))
    assert transmitter.summary()["decode_errors"] == 4 and sorted(transmitter.states) == [0]
    assert not built  # the pilot waits for a usable state of every vehicle


def test_hsf_reaches_vehicle_ids_above_255_both_ways():
    from sim.protocols.hsf import RcChannels, ServoAck, VehicleStateMsg, encode

    host, device = make_codec("hsf"), make_codec("hsf", "device")
    state = VehicleStateMsg(65535, 0.0, (0.0,) * 3, (0.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 0.0, False, False)
    ((_, down),) = device.new_decoder().feed(encode(state, 1))
    assert down.vehicle == 65535
    up = host.new_decoder().feed(encode(RcChannels(300, (1500,) * 8), 2) + encode(ServoAck(256, 2), 3))
    assert [host.channels_of(m).vehicle for _, m in up[:1]] == [300] and up[1][1].vehicle == 256
