"""HSF codec: CRC, message round trips, frames built by hand from the documented layout, and the
stream decoder's resync behaviour on split, corrupt, truncated and random input."""

from __future__ import annotations

import ast
import binascii
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heli.errors import HeliSimError
from sim.protocols.hsf import (
    MAX_FRAME_LEN,
    MAX_PAYLOAD,
    SYNC,
    Frame,
    HsfDecoder,
    LinkReply,
    LinkRequest,
    PayloadError,
    RcChannels,
    ServoAck,
    ServoCommand,
    VehicleStateMsg,
    encode,
    encode_frame,
    pack,
    unpack,
)
from tests.codec_streams import feed_all, modules_imported_by, mutate, split

PROTOCOLS = Path(__file__).resolve().parent.parent / "sim" / "protocols"

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=150, deadline=None, derandomize=True)


# ---------------------------------------------------------------- references independent of sim.protocols


def crc16_ccitt_false_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE the textbook way: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def hand_frame(type_id: int, seq: int, payload: bytes) -> bytes:
    """A frame laid out from the module docstring's table, without the encoder."""
    body = struct.pack("<BHB", type_id, seq, len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


def decode_all(chunks: list[bytes]) -> tuple[list[Frame], HsfDecoder]:
    decoder = HsfDecoder()
    return feed_all(decoder, chunks), decoder


def frame_of(message, seq: int) -> Frame:
    type_id, payload = pack(message)
    return Frame(type_id, seq, payload)


def f32(value: float) -> float:
    return float(np.float32(value))


# ---------------------------------------------------------------- strategies

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
f64s = st.floats(allow_nan=False)
f32_range = st.floats(min_value=-1e38, max_value=1e38, allow_nan=False)

rc_channels = st.builds(RcChannels, u16, st.lists(u16, min_size=1, max_size=16).map(tuple))
servo_commands = st.builds(
    ServoCommand,
    u16,
    st.tuples(*[st.floats(-4.0, 4.0)] * 4),
    st.floats(-0.5, 1.5),
)
servo_acks = st.builds(ServoAck, u16, u16)
vehicle_states = st.builds(
    VehicleStateMsg,
    vehicle=u16,
    sim_time_s=f64s,
    position_ned_m=st.tuples(*[f32_range] * 3),
    velocity_ned_m_s=st.tuples(*[f32_range] * 3),
    attitude_quat=st.tuples(*[f32_range] * 4),
    body_rates_rad_s=st.tuples(*[f32_range] * 3),
    rotor_speed_rad_s=f32_range,
    crashed=st.booleans(),
    armed=st.booleans(),
)
link_requests = st.builds(LinkRequest, u16, f64s, st.binary(max_size=200))
link_replies = st.builds(LinkReply, u16, u16, f64s)
messages = st.one_of(rc_channels, servo_commands, servo_acks, vehicle_states, link_requests, link_replies)

valid_frames = st.builds(hand_frame, u8, u16, st.binary(max_size=MAX_PAYLOAD))
garbage_pieces = st.one_of(
    st.binary(max_size=40),
    st.just(SYNC),
    st.just(b"\xa5"),
    # a fake header with any type, seq and length byte (including > 240)
    st.builds(lambda t, s, n: SYNC + struct.pack("<BHB", t, s, n), u8, u16, u8),
    # the front of a valid frame, cut short
    st.builds(lambda f, k: f[: max(1, k % len(f))], valid_frames, st.integers(0, 1000)),
    valid_frames,
)
garbage = st.lists(garbage_pieces, max_size=8).map(b"".join)


# ---------------------------------------------------------------- CRC and layout


def test_crc_check_value():
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1
    assert crc16_ccitt_false_bitwise(b"123456789") == 0x29B1


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_crc_hqx_is_ccitt_false(data):
    assert binascii.crc_hqx(data, 0xFFFF) == crc16_ccitt_false_bitwise(data)


def test_frame_bytes_follow_the_documented_layout():
    payload = b"\x01\x02\x03"
    crc = crc16_ccitt_false_bitwise(bytes([0x03, 0x34, 0x12, 0x03]) + payload)
    expected = bytes([0xA5, 0x5A, 0x03, 0x34, 0x12, 0x03]) + payload + bytes([crc & 0xFF, crc >> 8])
    assert encode_frame(0x03, 0x1234, payload) == expected
    assert encode_frame(0x00, 0, b"") == hand_frame(0, 0, b"")
    assert len(encode_frame(0xFF, 0xFFFF, bytes(MAX_PAYLOAD))) == MAX_FRAME_LEN == 248


@pytest.mark.parametrize(
    ("type_id", "seq", "payload"),
    [(0, 0, bytes(241)), (256, 0, b""), (-1, 0, b""), (1, 65536, b""), (1, -1, b"")],
)
def test_encode_frame_rejects_out_of_range(type_id, seq, payload):
    with pytest.raises(ValueError):
        encode_frame(type_id, seq, payload)


# ---------------------------------------------------------------- frames built by hand decode to the right values


def _decode_one(frame_bytes: bytes):
    frames, decoder = decode_all([frame_bytes])
    assert len(frames) == 1 and decoder.decode_errors == 0
    return frames[0], unpack(frames[0])


def test_hand_built_rc_channels():
    channels = [1000 + 50 * i for i in range(16)]
    frame, message = _decode_one(hand_frame(0x01, 513, struct.pack("<HB16H", 2, 16, *channels)))
    assert (frame.type, frame.seq) == (0x01, 513)
    assert message == RcChannels(vehicle=2, channels_us=tuple(channels))
    _, short = _decode_one(hand_frame(0x01, 0, struct.pack("<HBH", 0, 1, 1500)))
    assert short == RcChannels(0, (1500,))


def test_hand_built_servo_command_decodes_to_value_over_10000():
    payload = struct.pack("<H4hH", 1, 12345, -32767, 0, 7, 10000)
    _, message = _decode_one(hand_frame(0x02, 9, payload))
    assert message == ServoCommand(vehicle=1, servo=(12345 / 10000, -32767 / 10000, 0.0, 7 / 10000), throttle=1.0)
    assert message.servo[0] == 1.2345


def test_hand_built_servo_ack():
    _, message = _decode_one(hand_frame(0x03, 1, struct.pack("<HH", 3, 65535)))
    assert message == ServoAck(vehicle=3, acked_seq=65535)


def test_hand_built_vehicle_state():
    values = (4, 12.5, 1.0, -2.0, -30.25, 0.5, 0.0, -1.5, 1.0, 0.0, 0.0, 0.0, 0.1, -0.2, 0.3, 150.0, 0b11)
    _, message = _decode_one(hand_frame(0x04, 2, struct.pack("<Hd3f3f4f3ffB", *values)))
    assert message == VehicleStateMsg(
        vehicle=4,
        sim_time_s=12.5,
        position_ned_m=(1.0, -2.0, -30.25),
        velocity_ned_m_s=(0.5, 0.0, -1.5),
        attitude_quat=(1.0, 0.0, 0.0, 0.0),
        body_rates_rad_s=(f32(0.1), f32(-0.2), f32(0.3)),
        rotor_speed_rad_s=150.0,
        crashed=True,
        armed=True,
    )
    for flags, crashed, armed in [(0, False, False), (1, True, False), (2, False, True), (0xFC, False, False)]:
        payload = struct.pack("<Hd3f3f4f3ffB", *values[:-1], flags)
        _, message = _decode_one(hand_frame(0x04, 2, payload))
        assert (message.crashed, message.armed) == (crashed, armed)


def test_hand_built_link_request_and_reply():
    _, request = _decode_one(hand_frame(0x05, 77, struct.pack("<Hd", 0, 3.25) + b"ping\xa5\x5a"))
    assert request == LinkRequest(vehicle=0, t_sent_s=3.25, data=b"ping\xa5\x5a")
    _, empty = _decode_one(hand_frame(0x05, 77, struct.pack("<Hd", 0, 3.25)))
    assert empty == LinkRequest(0, 3.25, b"")
    _, reply = _decode_one(hand_frame(0x06, 78, struct.pack("<HHd", 0, 77, 3.25)))
    assert reply == LinkReply(vehicle=0, request_seq=77, t_sent_s=3.25)


def test_encoder_matches_hand_built_frames():
    message = ServoCommand(1, (1.2345, -5.0, 0.0, 0.00004), 1.7)
    assert encode(message, 9) == hand_frame(0x02, 9, struct.pack("<H4hH", 1, 12345, -32767, 0, 0, 10000))
    assert pack(ServoAck(3, 513)) == (0x03, b"\x03\x00\x01\x02")
    assert pack(ServoAck(65535, 0)) == (0x03, b"\xff\xff\x00\x00")  # the vehicle is a u16


# ---------------------------------------------------------------- round trips through encode -> decoder -> unpack


def _round_trip(message, seq):
    frames, decoder = decode_all([encode(message, seq)])
    assert [frame.seq for frame in frames] == [seq] and decoder.decode_errors == 0
    return unpack(frames[0])


@ROUND_TRIP
@given(st.one_of(rc_channels, servo_acks, link_requests, link_replies), u16)
def test_exact_messages_round_trip(message, seq):
    assert _round_trip(message, seq) == message


@ROUND_TRIP
@given(servo_commands, u16)
def test_servo_command_round_trips_to_rounded_clipped_units(message, seq):
    decoded = _round_trip(message, seq)
    expected = [min(max(round(x * 10000), -32767), 32767) / 10000 for x in message.servo]
    assert decoded.servo == tuple(expected)
    assert decoded.throttle == min(max(round(message.throttle * 10000), 0), 10000) / 10000
    for sent, got in zip(message.servo, decoded.servo, strict=True):
        if abs(sent) <= 3.2767:
            assert abs(sent - got) <= 0.5e-4 + 1e-12


@ROUND_TRIP
@given(vehicle_states, u16)
def test_vehicle_state_round_trips_through_f32(message, seq):
    decoded = _round_trip(message, seq)
    assert decoded.vehicle == message.vehicle and decoded.sim_time_s == message.sim_time_s
    for name in ("position_ned_m", "velocity_ned_m_s", "attitude_quat", "body_rates_rad_s"):
        assert getattr(decoded, name) == tuple(f32(x) for x in getattr(message, name)), name
    assert decoded.rotor_speed_rad_s == f32(message.rotor_speed_rad_s)
    assert (decoded.crashed, decoded.armed) == (message.crashed, message.armed)


@pytest.mark.parametrize(
    "message",
    [
        RcChannels(0, ()),
        RcChannels(0, (1500,) * 17),
        RcChannels(0, (70000,)),
        RcChannels(65536, (1500,)),
        ServoCommand(0, (float("nan"), 0.0, 0.0, 0.0), 0.5),
        ServoCommand(0, (0.0, 0.0, 0.0), 0.5),
        ServoAck(0, 65536),
        VehicleStateMsg(0, 0.0, (1e39, 0.0, 0.0), (0.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 0.0, False, False),
        VehicleStateMsg(0, 0.0, (0.0, 0.0), (0.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 0.0, False, False),
        LinkRequest(0, 0.0, bytes(201)),
        LinkReply(0, -1, 0.0),
    ],
)
def test_pack_rejects_out_of_range_fields(message):
    with pytest.raises(ValueError):
        pack(message)


def test_servo_command_clips_infinities():
    decoded = unpack(frame_of(ServoCommand(0, (float("inf"), float("-inf"), 0.0, 0.0), float("inf")), 0))
    assert decoded == ServoCommand(0, (3.2767, -3.2767, 0.0, 0.0), 1.0)


# ---------------------------------------------------------------- unpack rejects payloads that do not fit their type


@pytest.mark.parametrize(
    ("type_id", "payload"),
    [
        (0x00, b""),
        (0x07, b"\x00"),
        (0xFF, bytes(11)),
        (0x01, b""),
        (0x01, struct.pack("<HB", 0, 0)),
        (0x01, struct.pack("<HB17H", 0, 17, *[1500] * 17)),
        (0x01, struct.pack("<HB2H", 0, 3, 1500, 1500)),
        (0x01, struct.pack("<HB2H", 0, 1, 1500, 1500)),
        (0x02, bytes(11)),
        (0x02, bytes(13)),
        (0x03, bytes(3)),
        (0x03, bytes(5)),
        (0x04, bytes(66)),
        (0x04, bytes(68)),
        (0x05, bytes(9)),
        (0x05, bytes(211)),
        (0x06, bytes(11)),
        (0x06, bytes(13)),
    ],
)
def test_unpack_rejects_payload_that_does_not_fit(type_id, payload):
    with pytest.raises(PayloadError) as caught:
        unpack(Frame(type_id, 0, payload))
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, HeliSimError)


# ---------------------------------------------------------------- stream decoder: the parser robustness checklist

SAMPLES = [
    encode(RcChannels(1, tuple(range(1000, 2600, 100))), 1),
    encode(ServoCommand(0, (0.1, -0.2, 0.3, -0.4), 0.75), 65535),
    encode(ServoAck(0, 7), 0),
    encode(VehicleStateMsg(0, 1.5, (1.0,) * 3, (2.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 120.0, False, True), 3),
    encode(LinkRequest(2, 0.25, bytes(range(200))), 4),
    encode(LinkReply(2, 4, 0.25), 5),
]


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=lambda f: f"type{f[2]}")
def test_split_at_every_offset_gives_the_same_single_frame(frame_bytes):
    whole, _ = decode_all([frame_bytes])
    assert len(whole) == 1
    for cut in range(len(frame_bytes) + 1):
        frames, decoder = decode_all([frame_bytes[:cut], frame_bytes[cut:]])
        assert frames == whole, cut
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 0
    frames, _ = decode_all([frame_bytes[i : i + 1] for i in range(len(frame_bytes))])
    assert frames == whole


def test_two_frames_back_to_back_in_one_chunk():
    frames, decoder = decode_all([SAMPLES[0] + SAMPLES[2]])
    assert [frame.type for frame in frames] == [0x01, 0x03]
    assert decoder.frames == 2 and decoder.decode_errors == 0


def test_garbage_prefix_gives_one_frame():
    junk = b"\x00\xff\x5a\xa5\x12$M<hello"
    frames, decoder = decode_all([junk + SAMPLES[1]])
    assert [unpack(frame) for frame in frames] == [unpack(Frame(0x02, 65535, SAMPLES[1][6:-2]))]
    assert decoder.bytes_skipped == len(junk) and decoder.bytes_in == len(junk) + len(SAMPLES[1])


def test_fake_syncs_and_bad_length_before_a_good_frame():
    junk = (
        SYNC + b"\x01\x02\x03\xfa"  # length 250
        + b"\x00" * 3
        + SYNC + b"\x01\x00\x00\xf1"  # length 241
        + SYNC + b"\x07\x00\x00\x02xy\x00\x00"  # a complete 2-byte-payload frame with a wrong CRC
        + SYNC  # its header runs into the good frame's first bytes
    )  # fmt: skip
    frames, decoder = decode_all([junk + SAMPLES[2]])
    assert frames == [Frame(0x03, 0, b"\x00\x00\x07\x00")]
    assert decoder.length_errors == 2 and decoder.crc_errors == 2
    assert decoder.bytes_skipped == len(junk)


def test_length_limit_is_240_bytes():
    longest = hand_frame(0x05, 1, bytes(240))
    frames, decoder = decode_all([longest])
    assert frames == [Frame(0x05, 1, bytes(240))] and decoder.decode_errors == 0
    frames, decoder = decode_all([hand_frame(0x05, 1, bytes(241))])  # good CRC, length byte 241
    assert frames == [] and (decoder.length_errors, decoder.crc_errors) == (1, 0)
    frames, decoder = decode_all([SYNC + b"\x05\x01\x00\xf0" + SAMPLES[2]])  # 240 is a legal length
    assert len(frames) == 1 and (decoder.length_errors, decoder.crc_errors) == (0, 1)


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=lambda f: f"type{f[2]}")
def test_truncated_frame_then_good_frame_gives_the_good_one(frame_bytes):
    for kept in range(1, len(frame_bytes)):
        frames, decoder = decode_all([frame_bytes[:kept] + frame_bytes])
        assert frames == decode_all([frame_bytes])[0], kept
        assert decoder.pending_bytes == 0


def test_a_fake_header_claiming_more_bytes_does_not_delay_the_next_frame():
    # a long frame cut after its header claims 67 payload bytes; the short frame inside that
    # window is delivered as soon as it is complete, and the cut frame counts as a CRC error
    cut = SAMPLES[3][:6]
    frames, decoder = decode_all([cut + SAMPLES[2]])
    assert frames == [Frame(0x03, 0, b"\x00\x00\x07\x00")]
    assert decoder.pending_bytes == 0 and decoder.bytes_skipped == len(cut)
    assert (decoder.crc_errors, decoder.length_errors) == (1, 0)
    frames, decoder = decode_all([cut[:3], cut[3:] + SAMPLES[2][:-1], SAMPLES[2][-1:]])
    assert frames == [Frame(0x03, 0, b"\x00\x00\x07\x00")] and decoder.crc_errors == 1


def test_incomplete_frame_waits_for_its_last_byte():
    decoder = HsfDecoder()
    assert decoder.feed(SAMPLES[0][:-1]) == []
    assert decoder.pending_bytes == len(SAMPLES[0]) - 1 and decoder.decode_errors == 0
    assert decoder.feed(SAMPLES[0][-1:]) == decode_all([SAMPLES[0]])[0]


def test_documented_limit_a_payload_holding_a_whole_frame_loses_to_it():
    inner = encode(ServoAck(0, 1), 2)
    outer = encode(LinkRequest(0, 1.0, b"tunnel" + inner + b"end"), 3)
    frames, decoder = decode_all([outer])
    assert frames == [Frame(0x03, 2, b"\x00\x00\x01\x00")]
    assert decoder.crc_errors == 1  # the outer frame, cut short by the inner one


@pytest.mark.parametrize("frame_bytes", SAMPLES[:4], ids=lambda f: f"type{f[2]}")
def test_payload_bit_flip_with_stale_crc_gives_no_frame(frame_bytes):
    for index in range(6, len(frame_bytes) - 2):
        for bit in range(8):
            corrupt = bytearray(frame_bytes)
            corrupt[index] ^= 1 << bit
            frames, decoder = decode_all([bytes(corrupt)])
            assert frames == [], (index, bit)
            assert decoder.crc_errors >= 1 and decoder.frames == 0


def test_buffer_stays_bounded_and_nothing_spins():
    decoder = HsfDecoder()
    decoder.feed(SYNC + b"\x01\x00\x00\xf0")  # claims 240 payload bytes
    for _ in range(3 * MAX_FRAME_LEN):
        decoder.feed(b"\x11")
        assert decoder.pending_bytes <= MAX_FRAME_LEN - 1
    assert decoder.feed(b"\xa5" * 100_000) == [] and decoder.pending_bytes == 1
    assert decoder.feed(SYNC * 3000) == []
    assert decoder.pending_bytes <= MAX_FRAME_LEN - 1
    assert decoder.feed(bytes(MAX_FRAME_LEN) + SAMPLES[0]) == decode_all([SAMPLES[0]])[0]


# ---------------------------------------------------------------- fuzzing


def _check_accounting(frames: list[Frame], decoder: HsfDecoder) -> None:
    framed = sum(8 + len(frame.payload) for frame in frames)
    assert decoder.bytes_in == framed + decoder.bytes_skipped + decoder.pending_bytes
    assert decoder.frames == len(frames)
    assert 0 <= decoder.pending_bytes <= MAX_FRAME_LEN - 1


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("crc_errors", "length_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)


@FUZZ
@given(garbage, valid_frames, st.lists(st.integers(0, 3000), max_size=6))
def test_resyncs_within_one_frame_after_garbage(junk, frame_bytes, cuts):
    frames, decoder = decode_all(split(junk + frame_bytes, cuts))
    last = frames[-1]
    assert hand_frame(last.type, last.seq, last.payload) == frame_bytes
    assert decoder.pending_bytes == 0
    _check_accounting(frames, decoder)


@FUZZ
@given(
    st.lists(valid_frames, min_size=1, max_size=6).map(b"".join),
    st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "cut", "repeat"]), u16, u8), max_size=6),
    st.lists(st.integers(0, 3000), max_size=6),
)
def test_mutated_streams_never_raise_nor_deliver_a_bad_crc(stream, mutations, cuts):
    mutated = mutate(stream, mutations, delete_len=lambda v: 1 + v % 8, repeat_len=lambda v: v)
    frames, decoder = decode_all(split(mutated, cuts))
    for frame in frames:
        assert hand_frame(frame.type, frame.seq, frame.payload) in mutated
    assert decode_all([mutated])[0] == frames
    _check_accounting(frames, decoder)


@FUZZ
@given(st.lists(st.tuples(messages, u16), min_size=1, max_size=5), st.lists(st.integers(0, 1500), max_size=8))
def test_a_clean_stream_of_messages_decodes_completely(sent, cuts):
    stream = b"".join(encode(message, seq) for message, seq in sent)
    frames, decoder = decode_all(split(stream, cuts))
    assert [(frame.type, frame.seq) for frame in frames] == [(pack(m)[0], seq) for m, seq in sent]
    assert [unpack(frame) for frame in frames] == [unpack(frame_of(m, seq)) for m, seq in sent]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_protocols_import_nothing_else_from_sim():
    for path in sorted(PROTOCOLS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 or node.module in (None, "hsf"), f"{path.name}: relative import"
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "sim" or name.startswith("sim.protocols"), f"{path.name} imports {name}"
    expected = "['sim', 'sim.protocols', 'sim.protocols.hsf', 'sim.protocols.rc']"
    assert modules_imported_by("sim.protocols.hsf") == expected
