"""MSP codec: the reference's example frames, frames built by hand from the documented layouts,
payload helpers, round trips, and the stream decoder's resync behaviour on split, corrupt,
truncated and random input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from heli.errors import HeliSimError
from sim.protocols.msp import (
    DEFAULT_MAX_PAYLOAD,
    LINE,
    MSP_ATTITUDE,
    MSP_RC,
    MSP_SET_RAW_RC,
    MSP_STATUS,
    MspAttitude,
    MspDecoder,
    MspMessage,
    MspStatus,
    PayloadError,
    attitude_payload,
    crc8_dvb_s2,
    encode,
    parse_attitude,
    parse_raw_rc,
    parse_status,
    raw_rc_payload,
    rc_channels_from,
    status_payload,
)
from sim.protocols.rc import ChannelFrame
from tests.codec_streams import feed_all, modules_imported_by, mutate, split

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=200, deadline=None, derandomize=True)

# ---------------------------------------------------------------- example frames, typed by hand

HELI8 = (1512, 1476, 1000, 1530, 1650, 2000, 1000, 1500)
HELI16 = (1512, 1476, 1000, 1530, 1650, 2000, 1000, 1500, 1500, 1300, 1700, 1500, 1500, 1500, 1500, 1500)
HELI8_HEX = "E8 05 C4 05 E8 03 FA 05 72 06 D0 07 E8 03 DC 05"
HELI16_HEX = HELI8_HEX + " DC 05 14 05 A4 06 DC 05 DC 05 DC 05 DC 05 DC 05"

V1_RAW_RC_8 = bytes.fromhex("24 4D 3C 10 C8" + HELI8_HEX + "71")
V1_RAW_RC_16 = bytes.fromhex("24 4D 3C 20 C8" + " DC 05" * 16 + " E8")
V2_RAW_RC_16 = bytes.fromhex("24 58 3C 00 C8 00 20 00" + " DC 05" * 16 + " B4")
V2_OVER_V1_RAW_RC_8 = bytes.fromhex("24 4D 3C 16 FF 00 C8 00 10 00" + HELI8_HEX + "DE 46")
V1_RC_REPLY_16 = bytes.fromhex("24 4D 3E 20 69" + HELI16_HEX + " 53")
V1_RAW_RC_ACK = bytes.fromhex("24 4D 3E 00 C8 C8")
V1_RC_REQUEST = bytes.fromhex("24 4D 3C 00 69 69")

EXAMPLES = [
    (V1_RAW_RC_8, MspMessage(1, "<", 200, struct.pack("<8H", *HELI8))),
    (V1_RAW_RC_16, MspMessage(1, "<", 200, struct.pack("<16H", *[1500] * 16))),
    (V2_RAW_RC_16, MspMessage(2, "<", 200, struct.pack("<16H", *[1500] * 16))),
    (V2_OVER_V1_RAW_RC_8, MspMessage(2, "<", 200, struct.pack("<8H", *HELI8), over_v1=True)),
    (V1_RC_REPLY_16, MspMessage(1, ">", 105, struct.pack("<16H", *HELI16))),
    (V1_RAW_RC_ACK, MspMessage(1, ">", 200, b"")),
    (V1_RC_REQUEST, MspMessage(1, "<", 105, b"")),
]
EXAMPLE_IDS = ["v1-8ch", "v1-16ch", "v2-16ch", "v2-over-v1", "rc-reply", "raw-rc-ack", "rc-request"]


# ---------------------------------------------------------------- references independent of sim.protocols


def xor_all(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def crc8_bitwise(data: bytes) -> int:
    """CRC-8/DVB-S2 the textbook way: poly 0xD5, init 0, MSB first, no final xor."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0xD5) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def hand_v1(direction: str, command: int, payload: bytes) -> bytes:
    """A v1 frame from section 5.1 (jumbo from Betaflight's mspSerialEncode: 0xFF, cmd, u16 size)."""
    if len(payload) < 255:
        body = bytes([len(payload), command]) + payload
    else:
        body = bytes([255, command]) + struct.pack("<H", len(payload)) + payload
    return b"$M" + direction.encode() + body + bytes([xor_all(body)])


def hand_v2(direction: str, command: int, payload: bytes, flag: int = 0) -> bytes:
    body = struct.pack("<BHH", flag, command, len(payload)) + payload
    return b"$X" + direction.encode() + body + bytes([crc8_bitwise(body)])


def hand_v2_over_v1(direction: str, command: int, payload: bytes, flag: int = 0) -> bytes:
    inner = hand_v2(direction, command, payload, flag)[3:]
    body = bytes([len(inner), 255]) + inner
    return b"$M" + direction.encode() + body + bytes([xor_all(body)])


def hand_frame(message: MspMessage) -> bytes:
    if message.version == 1:
        return hand_v1(message.direction, message.command, message.payload)
    if message.over_v1:
        return hand_v2_over_v1(message.direction, message.command, message.payload, message.flag)
    return hand_v2(message.direction, message.command, message.payload, message.flag)


def decode_all(chunks: list[bytes], max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[list[MspMessage], MspDecoder]:
    decoder = MspDecoder(max_payload)
    return feed_all(decoder, chunks), decoder


# ---------------------------------------------------------------- strategies

directions = st.sampled_from("<>!")
v1_messages = st.builds(MspMessage, st.just(1), directions, st.integers(0, 254), st.binary(max_size=300))
v2_messages = st.builds(
    MspMessage, st.just(2), directions, st.integers(0, 0xFFFF), st.binary(max_size=300), st.integers(0, 255)
)
tunnel_messages = st.builds(
    MspMessage,
    st.just(2),
    directions,
    st.integers(0, 0xFFFF),
    st.binary(max_size=248),
    st.integers(0, 255),
    st.just(True),
)
messages = st.one_of(v1_messages, v2_messages, tunnel_messages)
valid_frames = messages.map(hand_frame)
garbage = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.one_of(
            st.binary(max_size=6),
            st.sampled_from([b"$", b"$M", b"$X", b"$M<", b"$X>", b"$M<\xff", b"$X<\x00\xc8\x00\xff\xff", b"hello"]),
        ),
        max_size=12,
    ).map(b"".join),
    valid_frames.flatmap(lambda frame: st.integers(1, len(frame) - 1).map(lambda kept: frame[:kept])),
)


# ---------------------------------------------------------------- the documented examples


def test_line_settings():
    assert (LINE.baudrate, LINE.parity, LINE.stopbits, LINE.inverted) == (115200, "N", 1, False)


def test_command_ids():
    assert (MSP_STATUS, MSP_RC, MSP_ATTITUDE, MSP_SET_RAW_RC) == (101, 105, 108, 200)


def test_crc8_matches_the_bitwise_definition_and_the_check_value():
    assert crc8_dvb_s2(b"123456789") == crc8_bitwise(b"123456789") == 0xBC  # catalogue check value
    for data in (b"", b"\x00", bytes(range(256)), V2_RAW_RC_16[3:-1]):
        assert crc8_dvb_s2(data) == crc8_bitwise(data)


@pytest.mark.parametrize(("frame", "message"), EXAMPLES, ids=EXAMPLE_IDS)
def test_example_frames_decode_and_re_encode_exactly(frame, message):
    decoded, decoder = decode_all([frame])
    assert decoded == [message]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0
    assert encode(message) == frame == hand_frame(message)


def test_example_channels():
    assert rc_channels_from(decode_all([V1_RAW_RC_8])[0][0]) == ChannelFrame(HELI8)
    assert rc_channels_from(decode_all([V2_OVER_V1_RAW_RC_8])[0][0]) == ChannelFrame(HELI8)
    assert rc_channels_from(decode_all([V2_RAW_RC_16])[0][0]) == ChannelFrame((1500,) * 16)
    assert parse_raw_rc(decode_all([V1_RC_REPLY_16])[0][0].payload) == ChannelFrame(HELI16)


# ---------------------------------------------------------------- encoder: sizes and ranges


def test_v1_jumbo_frame_layout():
    payload = bytes(range(256)) + bytes(44)  # 300 bytes
    frame = encode(MspMessage(1, ">", 100, payload))
    assert frame[:7] == bytes.fromhex("24 4D 3E FF 64 2C 01")  # size 255, cmd 100, u16 300
    assert frame[-1] == xor_all(frame[3:-1]) and len(frame) == 7 + 300 + 1
    assert frame == hand_v1(">", 100, payload)
    assert decode_all([frame])[0] == [MspMessage(1, ">", 100, payload)]


def test_v1_size_boundary_254_plain_255_jumbo():
    assert encode(MspMessage(1, ">", 1, bytes(254)))[3] == 254
    assert encode(MspMessage(1, ">", 1, bytes(255)))[3:7] == bytes([255, 1, 255, 0])


def test_largest_payloads_round_trip_with_a_large_enough_decoder():
    for message in (MspMessage(1, ">", 7, bytes(65535)), MspMessage(2, ">", 0x1234, b"\x5a" * 65535, 3)):
        frame = encode(message)
        assert decode_all([frame], max_payload=65535)[0] == [message]
        decoded, decoder = decode_all([frame])  # default cap: a length error
        assert decoded == [] and decoder.length_errors == 1
    tunnel = MspMessage(2, "<", 0x1001, bytes(248), over_v1=True)
    assert encode(tunnel)[3] == 254 and decode_all([encode(tunnel)])[0] == [tunnel]


@pytest.mark.parametrize(
    "message",
    [
        MspMessage(1, "<", 255, b""),
        MspMessage(1, "<", 256, b""),
        MspMessage(1, "<", -1, b""),
        MspMessage(1, "<", 1, b"", flag=1),
        MspMessage(1, "<", 1, b"", over_v1=True),
        MspMessage(1, "<", 1, bytes(65536)),
        MspMessage(2, "<", 65536, b""),
        MspMessage(2, "<", 1, b"", flag=256),
        MspMessage(2, "<", 1, bytes(65536)),
        MspMessage(2, "<", 1, bytes(249), over_v1=True),
        MspMessage(3, "<", 1, b""),
        MspMessage(1, "?", 1, b""),
        MspMessage(1, "", 1, b""),
        MspMessage(1, "<>", 1, b""),
    ],
)
def test_encoder_rejects_out_of_range_fields(message):
    with pytest.raises(ValueError):
        encode(message)


@ROUND_TRIP
@given(messages)
def test_encode_matches_the_hand_layout_and_decodes_back(message):
    frame = encode(message)
    assert frame == hand_frame(message)
    assert decode_all([frame])[0] == [message]


# ---------------------------------------------------------------- payload helpers


def test_raw_rc_payload_and_parse():
    assert raw_rc_payload(HELI8) == bytes.fromhex(HELI8_HEX)
    assert raw_rc_payload([1500.4, 999.5, 1000.5]) == struct.pack("<3H", 1500, 1000, 1000)  # half to even
    assert parse_raw_rc(bytes.fromhex(HELI8_HEX)) == ChannelFrame(HELI8)


@pytest.mark.parametrize("channels", [[], [1500] * 19, [-1], [65536], [float("nan")]])
def test_raw_rc_payload_rejects(channels):
    with pytest.raises(ValueError):
        raw_rc_payload(channels)


@pytest.mark.parametrize("payload", [b"", b"\xdc", bytes(37), bytes(38)])
def test_parse_raw_rc_rejects(payload):
    with pytest.raises(PayloadError) as caught:
        parse_raw_rc(payload)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, HeliSimError)


@ROUND_TRIP
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=18))
def test_raw_rc_round_trip(channels):
    assert parse_raw_rc(raw_rc_payload(channels)) == ChannelFrame(tuple(channels))
    message = MspMessage(1, "<", MSP_SET_RAW_RC, raw_rc_payload(channels))
    assert rc_channels_from(decode_all([encode(message)])[0][0]) == ChannelFrame(tuple(channels))


def test_rc_channels_only_from_set_raw_rc_requests():
    payload = raw_rc_payload(HELI8)
    assert rc_channels_from(MspMessage(2, "<", MSP_SET_RAW_RC, payload)) == ChannelFrame(HELI8)
    assert rc_channels_from(MspMessage(1, ">", MSP_SET_RAW_RC, payload)) is None
    assert rc_channels_from(MspMessage(1, ">", MSP_RC, payload)) is None
    assert rc_channels_from(MspMessage(1, "<", MSP_ATTITUDE, payload)) is None
    with pytest.raises(PayloadError):
        rc_channels_from(MspMessage(1, "<", MSP_SET_RAW_RC, b"\x01"))


def test_attitude_payload_layout():
    # roll -12.3 deg -> -123 (0xFF85), pitch 4.5 deg -> 45 (0x002D), yaw 271 deg -> 271 (0x010F)
    assert attitude_payload(-12.3, 4.5, 271.0) == bytes.fromhex("85 FF 2D 00 0F 01")
    assert parse_attitude(bytes.fromhex("85 FF 2D 00 0F 01")) == MspAttitude(-12.3, 4.5, 271.0)
    assert attitude_payload(0.0, 0.0, -90.0)[4:] == struct.pack("<h", 270)  # headings wrap to 0..359
    assert attitude_payload(0.0, 0.0, 359.6)[4:] == struct.pack("<h", 0)
    assert attitude_payload(180.0, -90.0, 0.0)[:4] == struct.pack("<hh", 1800, -900)
    assert parse_attitude(bytes.fromhex("85 FF 2D 00 0F 01 00 00")) == MspAttitude(-12.3, 4.5, 271.0)  # MultiWii's 8


@pytest.mark.parametrize(
    "angles", [(3276.8, 0.0, 0.0), (0.0, -3276.9, 0.0), (float("nan"), 0.0, 0.0), (0.0, 0.0, float("inf"))]
)
def test_attitude_payload_rejects(angles):
    with pytest.raises(ValueError):
        attitude_payload(*angles)


def test_parse_attitude_rejects_short_payload():
    with pytest.raises(PayloadError):
        parse_attitude(bytes(5))


@ROUND_TRIP
@given(st.floats(-3276.7, 3276.7), st.floats(-3276.7, 3276.7), st.floats(-1e6, 1e6))
def test_attitude_round_trips_to_its_resolution(roll, pitch, yaw):
    decoded = parse_attitude(attitude_payload(roll, pitch, yaw))
    assert abs(decoded.roll_deg - roll) <= 0.05 + 1e-9 and abs(decoded.pitch_deg - pitch) <= 0.05 + 1e-9
    assert 0 <= decoded.yaw_deg <= 359 and decoded.yaw_deg == round(yaw) % 360


def test_status_payload_classic_layout():
    hand = struct.pack("<HHHIB", 125, 2, 0b100001, 0x80000001, 1)
    assert len(hand) == 11
    assert status_payload(125, 2, 0b100001, 0x80000001, 1) == hand
    assert parse_status(hand) == MspStatus(125, 2, 0b100001, 0x80000001, 1)
    extended = hand + bytes.fromhex("0F 00 F4 01")  # e.g. Betaflight's system load and gyro cycle time
    assert parse_status(extended) == MspStatus(125, 2, 0b100001, 0x80000001, 1, bytes.fromhex("0F 00 F4 01"))
    assert status_payload(**vars(parse_status(extended))) == extended
    with pytest.raises(PayloadError):
        parse_status(hand[:10])
    for bad in ((70000, 0, 0, 0, 0), (0, 0, 0, 1 << 32, 0), (0, 0, 0, 0, 256), (-1, 0, 0, 0, 0)):
        with pytest.raises(ValueError):
            status_payload(*bad)


# ---------------------------------------------------------------- stream decoder: the parser robustness checklist

SAMPLES = [frame for frame, _ in EXAMPLES] + [encode(MspMessage(1, ">", 100, bytes(range(256)) + b"$M<\x00"))]


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=[*EXAMPLE_IDS, "jumbo"])
def test_split_at_every_offset_gives_the_same_single_message(frame_bytes):
    whole, _ = decode_all([frame_bytes])
    assert len(whole) == 1
    for cut in range(len(frame_bytes) + 1):
        decoded, decoder = decode_all([frame_bytes[:cut], frame_bytes[cut:]])
        assert decoded == whole, cut
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 0
    decoded, _ = decode_all([frame_bytes[i : i + 1] for i in range(len(frame_bytes))])
    assert decoded == whole


def test_back_to_back_frames_of_every_kind_in_one_chunk():
    stream = b"".join(SAMPLES)
    decoded, decoder = decode_all([stream])
    assert (
        decoded == decode_all([SAMPLES[0]])[0] + [message for _, message in EXAMPLES[1:]] + decode_all([SAMPLES[-1]])[0]
    )
    assert decoder.frames == len(SAMPLES) and decoder.decode_errors == 0 and decoder.bytes_skipped == 0


def test_garbage_prefix_dollar_m_and_text_gives_one_message():
    for junk in (b"$M", b"$M<", b"$Mhello world", b"$M<hello world", b"$X>abc$$$M", b"\x00\xff$"):
        decoded, decoder = decode_all([junk + V1_RAW_RC_8])
        assert decoded == [EXAMPLES[0][1]], junk
        assert decoder.bytes_skipped == len(junk) and decoder.pending_bytes == 0


def test_a_fake_header_claiming_a_long_payload_does_not_delay_the_next_frame():
    for fake in (b"$M<\xc8\x01", b"$X<\x00\xc8\x00\x00\x10", b"$M>\xff\x01\x00\x0f"):
        decoded, decoder = decode_all([fake + V1_RAW_RC_ACK])
        assert decoded == [MspMessage(1, ">", 200, b"")], fake
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == len(fake)
        assert (decoder.checksum_errors, decoder.length_errors) == (1, 0)  # cut short by the good frame


def test_length_errors_are_counted_and_skipped():
    too_big = b"$X<\x00\x01\x00\x01\x10"  # 4097 > 4096
    short_jumbo = b"$M>\xff\x01\x10\x00"  # jumbo claiming 16 bytes
    short_tunnel = b"$M<\x05\xff"  # a v2-in-v1 payload must hold at least 6 bytes
    jumbo_tunnel = b"$M<\xff\xff"  # not supported
    for junk in (too_big, short_jumbo, short_tunnel, jumbo_tunnel):
        decoded, decoder = decode_all([junk + V1_RC_REQUEST])
        assert decoded == [EXAMPLES[-1][1]], junk
        assert (decoder.length_errors, decoder.checksum_errors) == (1, 0), junk


def test_decoder_max_payload_bounds():
    decoded, decoder = decode_all([encode(MspMessage(1, "<", 1, bytes(10)))], max_payload=9)
    assert decoded == [] and decoder.length_errors == 1
    assert decode_all([encode(MspMessage(1, "<", 1, bytes(10)))], max_payload=10)[0] != []
    for bad in (-1, 65536):
        with pytest.raises(ValueError):
            MspDecoder(bad)


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=[*EXAMPLE_IDS, "jumbo"])
def test_truncated_frame_then_good_frame_gives_the_good_one(frame_bytes):
    for kept in range(1, len(frame_bytes)):
        decoded, decoder = decode_all([frame_bytes[:kept] + V1_RAW_RC_8])
        assert decoded == [EXAMPLES[0][1]], kept
        assert decoder.pending_bytes == 0


@pytest.mark.parametrize("frame_bytes", SAMPLES[:5], ids=EXAMPLE_IDS[:5])
def test_any_bit_flip_with_stale_checksum_gives_no_message(frame_bytes):
    size_bytes = (6, 7) if frame_bytes[1:2] == b"X" else (3,)
    for index in range(3, len(frame_bytes)):
        for bit in range(8):
            corrupt = bytearray(frame_bytes)
            corrupt[index] ^= 1 << bit
            decoded, decoder = decode_all([bytes(corrupt)], max_payload=65535)
            if index in size_bytes:  # the frame now ends elsewhere: it waits for bytes or fails its check
                assert decoded == [] and decoder.pending_bytes + decoder.checksum_errors >= 1, (index, bit)
            else:
                assert decoded == [] and decoder.checksum_errors == 1, (index, bit)


def test_bad_checksums_are_counted_and_not_delivered():
    for frame in (V1_RAW_RC_8, V2_RAW_RC_16, V2_OVER_V1_RAW_RC_8):
        bad = frame[:-1] + bytes([frame[-1] ^ 0x55])
        decoded, decoder = decode_all([bad + V1_RC_REQUEST])
        assert decoded == [EXAMPLES[-1][1]] and decoder.checksum_errors == 1
    inner_bad = bytearray(V2_OVER_V1_RAW_RC_8)
    inner_bad[-2] ^= 0x01  # v2 CRC wrong ...
    inner_bad[-1] ^= 0x01  # ... with the v1 XOR made to match
    decoded, decoder = decode_all([bytes(inner_bad)])
    assert decoded == [] and decoder.checksum_errors == 1


def test_incomplete_frame_waits_for_its_last_byte():
    decoder = MspDecoder()
    assert decoder.feed(V1_RC_REPLY_16[:-1]) == [] and decoder.pending_bytes == len(V1_RC_REPLY_16) - 1
    assert decoder.feed(V1_RC_REPLY_16[-1:]) == [EXAMPLES[4][1]] and decoder.decode_errors == 0


def test_buffer_stays_bounded_and_nothing_spins():
    decoder = MspDecoder()
    decoder.feed(b"$X<\x00\x01\x00\x00\x10")  # claims 4096 payload bytes
    for _ in range(5000):
        decoder.feed(b"\x11")
        assert decoder.pending_bytes <= DEFAULT_MAX_PAYLOAD + 11
    assert decoder.feed(b"$" * 20000) == [] and decoder.pending_bytes == 1
    # "$M<M<M<..." happens to hold valid frames (size 'M', command '<', XOR '<'); only bounds matter here
    decoder.feed(b"M<" * 2000 + b"$M<\xc8" * 500)
    assert decoder.pending_bytes <= DEFAULT_MAX_PAYLOAD + 11
    assert decoder.feed(bytes(300) + V1_RAW_RC_8)[-1:] == [EXAMPLES[0][1]] and decoder.pending_bytes == 0


def test_of_two_good_frames_ending_on_the_same_byte_the_outer_one_wins():
    inner = V1_RC_REQUEST  # its last byte, 0x69, is also the outer frame's XOR
    body = bytes([1 + len(inner) - 1, 7, 0x00]) + inner[:-1]
    fixed = bytes([body[0], body[1], xor_all(body) ^ inner[-1]]) + body[3:]  # choose the pad byte so the XOR fits
    outer = b"$M>" + fixed + inner[-1:]
    assert hand_v1(">", 7, fixed[2:]) == outer
    decoded, decoder = decode_all([outer])
    assert decoded == [MspMessage(1, ">", 7, fixed[2:])] and decoder.decode_errors == 0


def test_documented_limit_a_payload_holding_a_whole_frame_loses_to_it():
    outer = encode(MspMessage(1, ">", 1, b"tunnel" + V1_RC_REQUEST + b"end"))
    decoded, decoder = decode_all([outer])
    assert decoded == [EXAMPLES[-1][1]] and decoder.checksum_errors == 1


# ---------------------------------------------------------------- fuzzing


def _check_accounting(decoded: list[MspMessage], decoder: MspDecoder) -> None:
    framed = sum(len(encode(message)) for message in decoded)
    assert decoder.bytes_in == framed + decoder.bytes_skipped + decoder.pending_bytes
    assert decoder.frames == len(decoded)
    assert 0 <= decoder.pending_bytes <= decoder.max_payload + 11


@FUZZ
@given(st.binary(max_size=1000), st.lists(st.integers(0, 1000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("checksum_errors", "length_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)


@FUZZ
@given(st.lists(st.sampled_from([b"$", b"M", b"X", b"<", b">", b"!", b"\x00", b"\xff", b"\x01"]), max_size=300))
def test_header_soup_never_raises_and_does_not_depend_on_chunking(pieces):
    data = b"".join(pieces)
    for max_payload in (0, 8, DEFAULT_MAX_PAYLOAD):
        whole, _ = decode_all([data], max_payload)
        byte_by_byte, decoder = decode_all([data[i : i + 1] for i in range(len(data))], max_payload)
        assert byte_by_byte == whole
        _check_accounting(byte_by_byte, decoder)


@FUZZ
@given(garbage, valid_frames, st.lists(st.integers(0, 800), max_size=6))
def test_resyncs_within_one_frame_after_garbage(junk, frame_bytes, cuts):
    stream = junk + frame_bytes
    decoded, decoder = decode_all(split(stream, cuts))
    # garbage that, with the frame's first bytes, forms a valid frame of its own (it ends first and
    # wins, as it would on a wire) is not what this test is about
    straddling = (stream.find(encode(m)) for m in decoded)
    assume(not any(0 <= at < len(junk) < at + len(encode(m)) for at, m in zip(straddling, decoded, strict=True)))
    assert encode(decoded[-1]) == frame_bytes
    assert decoder.pending_bytes == 0
    _check_accounting(decoded, decoder)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "repeat"]), st.integers(0, 2000), st.integers(0, 255)),
    max_size=6,
)


@FUZZ
@given(
    st.lists(valid_frames, min_size=1, max_size=5).map(b"".join), MUTATIONS, st.lists(st.integers(0, 2000), max_size=6)
)
def test_mutated_streams_never_raise_nor_deliver_a_bad_checksum(stream, mutations, cuts):
    mutated = mutate(stream, mutations, delete_len=lambda v: 1 + v % 40, repeat_len=lambda v: v % 40)
    decoded, decoder = decode_all(split(mutated, cuts))
    for message in decoded:
        assert hand_frame(message) in mutated
    assert decode_all([mutated])[0] == decoded
    _check_accounting(decoded, decoder)


@FUZZ
@given(st.lists(messages, min_size=1, max_size=5), st.lists(st.integers(0, 1500), max_size=8))
def test_a_clean_stream_of_messages_decodes_completely(sent, cuts):
    stream = b"".join(encode(message) for message in sent)
    decoded, decoder = decode_all(split(stream, cuts))
    assert decoded == sent
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_importing_the_codec_pulls_in_nothing_else_from_sim():
    expected = "['sim', 'sim.protocols', 'sim.protocols.crc', 'sim.protocols.msp', 'sim.protocols.rc']"
    assert modules_imported_by("sim.protocols.msp") == expected
