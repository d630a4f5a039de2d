"""CRSF codec: CRC, the tick/microsecond convention, example frames as hand-written hex
(cross-checked against independent encoders: crsf-parser, ExpressLRS' map, Betaflight's
rx_crsf_unittest.cc capture), message round trips, and the stream decoder on split, corrupt,
truncated and random input."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.protocols.crsf import (
    ADDRESSES,
    LINE,
    MAX_FRAME_LEN,
    Attitude,
    BaroAltitude,
    Battery,
    CrsfChannels,
    CrsfDecoder,
    FlightMode,
    LinkStatistics,
    UnknownFrame,
    Vario,
    crc8_dvb_s2,
    encode,
    encode_channels,
    encode_frame,
    ticks_to_us,
    us_to_ticks,
)
from sim.protocols.rc import ChannelFrame, LineSettings
from tests.codec_streams import feed_all, modules_imported_by, mutate, split

PROTOCOLS = Path(__file__).resolve().parent.parent / "sim" / "protocols"

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=150, deadline=None, derandomize=True)

KNOWN_TYPES = {0x02, 0x07, 0x08, 0x09, 0x14, 0x16, 0x1E, 0x21}  # GPS, vario, battery, baro, link, RC, attitude, mode


# ---------------------------------------------------------------- references independent of sim.protocols


def crc8_bitwise(data: bytes) -> int:
    """CRC-8/DVB-S2 the textbook way: poly 0xD5, init 0, MSB first, no final xor."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0xD5) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def hand_frame(address: int, type_id: int, payload: bytes) -> bytes:
    """A frame laid out from the TBS CRSF spec's frame format, without the encoder."""
    body = bytes([type_id]) + payload
    return bytes([address, len(body) + 1]) + body + bytes([crc8_bitwise(body)])


def ref_pack(ticks: list[int]) -> bytes:
    """The 16 x 11-bit packing bit by bit: channel n is bits 11n..11n+10 of the stream, LSB first."""
    bits = [(tick >> i) & 1 for tick in ticks for i in range(11)]
    return bytes(sum(bits[8 * k + i] << i for i in range(8)) for k in range(22))


def ref_us(tick: int) -> int:
    """ExpressLRS CRSF_to_US, ((t-172)*1024*2/1639 + 988*2 + 1)/2, in C integer arithmetic."""
    num = (tick - 172) * 2048
    quotient = abs(num) // 1639 * (1 if num >= 0 else -1)  # C truncates toward zero
    return (quotient + 988 * 2 + 1) // 2


def decode_all(chunks: list[bytes]) -> tuple[list, CrsfDecoder]:
    decoder = CrsfDecoder()
    return feed_all(decoder, chunks), decoder


def good_candidates(stream: bytes) -> list[tuple[int, int]]:
    """(start, end) of every accepted-address, valid-length, good-CRC window, by the reference CRC."""
    found = []
    for start in range(len(stream) - 1):
        length = stream[start + 1]
        end = start + 2 + length
        framed = stream[start] in (0x00, 0xC8, 0xEA, 0xEE) and 2 <= length <= 62 and end <= len(stream)
        if framed and crc8_bitwise(stream[start + 2 : end - 1]) == stream[end - 1]:
            found.append((start, end))
    return found


def only_from_good_windows(stream: bytes, messages: list) -> bool:
    """True if every message is what a window with a good reference CRC decodes to on its own."""
    allowed = {m for s, e in good_candidates(stream) for m in decode_all([stream[s:e]])[0]}
    return all(m in allowed for m in messages)


def channels_of(message) -> tuple:
    assert isinstance(message, ChannelFrame), message
    return message.channels_us


# ---------------------------------------------------------------- example frames, typed by hand

CENTRED = "C8 18 16 E0 03 1F F8 C0 07 3E F0 81 0F 7C E0 03 1F F8 C0 07 3E F0 81 0F 7C AD"
EXTREMES = "C8 18 16 AC 98 F8 2F 00 0E BE AF 80 F9 49 70 65 C5 C4 C1 F7 0B 80 83 0F 7C D0"
HELI = "C8 18 16 F3 CB DD 2F 20 08 4D 80 FF 02 7C E0 FB 14 48 C1 07 3E F0 81 0F 7C 69"
BETAFLIGHT_1 = "00 18 16 BD 08 9F F4 AE F7 BD EF 7D EF FB AD FD 45 2B 5A 01 00 00 00 00 00 6C"
BETAFLIGHT_2 = "00 18 16 BD 08 9F F4 AA F7 BD EF 7D EF FB AD FD 45 2B 5A 01 00 00 00 00 00 94"
LINK_STATS = "C8 0C 14 3C 3D 64 09 00 07 03 37 62 08 C3"
BIND_COMMAND = "C8 07 32 EC C8 10 01 9E E8"
BATTERY = "C8 0A 08 00 A8 00 7B 00 04 D2 38 09"
ATTITUDE = "C8 08 1E 03 69 F9 2F 3D 5C 69"
FLIGHT_MODE = "C8 07 21 41 43 52 4F 00 80"

EXTREMES_US = [988, 2012, 1000, 2000, 1500, 1100, 1900, 1250, 1750, 988, 2012, 1500, 1000, 2000, 1500, 1500]
EXTREMES_TICKS = [172, 1811, 191, 1792, 992, 351, 1632, 591, 1392, 172, 1811, 992, 191, 1792, 992, 992]
HELI_US = [1512, 1476, 1000, 1530, 1650, 2000, 1000, 1500, 1500, 1300, 1700, 1500, 1500, 1500, 1500, 1500]
HELI_TICKS = [1011, 953, 191, 1040, 1232, 1792, 191, 992, 992, 671, 1312, 992, 992, 992, 992, 992]

RC_EXAMPLES = [
    pytest.param(CENTRED, [992] * 16, [1500] * 16, id="centred"),
    pytest.param(EXTREMES, EXTREMES_TICKS, EXTREMES_US, id="extremes"),
    pytest.param(HELI, HELI_TICKS, HELI_US, id="heli"),
]


@pytest.mark.parametrize(("text", "ticks", "us"), RC_EXAMPLES)
def test_rc_example_frames_decode_and_re_encode(text, ticks, us):
    data = bytes.fromhex(text)
    messages, decoder = decode_all([data])
    assert len(messages) == 1 and decoder.decode_errors == 0 and decoder.frames == 1
    (frame,) = messages
    assert isinstance(frame, CrsfChannels)
    assert list(frame.channels_us) == us == [ref_us(t) for t in ticks]
    assert list(frame.ticks) == ticks
    assert (frame.failsafe, frame.frame_lost) == (False, False)
    assert encode_channels(frame) == data
    assert encode_channels(ChannelFrame(tuple(us))) == data  # from plain microseconds, too


@pytest.mark.parametrize(
    ("text", "ch4_tick"),
    [pytest.param(BETAFLIGHT_1, 983, id="capture1"), pytest.param(BETAFLIGHT_2, 981, id="capture2")],
)
def test_betaflight_captures_with_broadcast_address(text, ch4_tick):
    data = bytes.fromhex(text)
    (frame,), decoder = decode_all([data])
    assert decoder.decode_errors == 0
    assert frame.ticks[:4] == (189, 993, 978, ch4_tick)
    assert list(frame.channels_us) == [ref_us(t) for t in frame.ticks]
    if ch4_tick == 983:
        assert frame.channels_us[:4] == (999, 1501, 1492, 1495)  # what Betaflight's unit test expects
    assert encode_channels(frame, address=0x00) == data
    assert encode(frame, address=0x00) == data


def test_link_statistics_example():
    data = bytes.fromhex(LINK_STATS)
    messages, decoder = decode_all([data])
    assert messages == [LinkStatistics(-60, -61, 100, 9, 0, 7, 3, -55, 98, 8)]
    assert decoder.decode_errors == 0
    assert encode(messages[0]) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(BATTERY, Battery(16.8, 12.3, 1234, 56), id="battery"),
        pytest.param(ATTITUDE, Attitude(0.0873, -0.1745, 1.5708), id="attitude"),
        pytest.param(FLIGHT_MODE, FlightMode("ACRO"), id="flight-mode"),
    ],
)
def test_telemetry_examples(text, message):
    data = bytes.fromhex(text)
    messages, decoder = decode_all([data])
    assert messages == [message] and decoder.decode_errors == 0
    assert encode(message) == data


def test_command_frame_is_an_unknown_frame():
    data = bytes.fromhex(BIND_COMMAND)
    messages, decoder = decode_all([data])
    assert messages == [UnknownFrame(0x32, bytes.fromhex("EC C8 10 01 9E"))]
    assert decoder.frames == 1 and decoder.decode_errors == 0 and decoder.bytes_skipped == 0
    assert encode(messages[0]) == data


# ---------------------------------------------------------------- CRC, line, ticks <-> microseconds


def test_crc_check_value():
    assert crc8_dvb_s2(b"123456789") == 0xBC == crc8_bitwise(b"123456789")
    assert crc8_dvb_s2(b"") == 0


@ROUND_TRIP
@given(st.binary(max_size=64))
def test_crc_matches_the_bitwise_reference(data):
    assert crc8_dvb_s2(data) == crc8_bitwise(data)


def test_line_settings():
    expected = LineSettings(baudrate=420000, parity="N", stopbits=1, inverted=False, frame_rate_hz=150.0)
    assert expected == LINE


@pytest.mark.parametrize(("tick", "us"), [(172, 988), (191, 1000), (992, 1500), (1792, 2000), (1811, 2012)])
def test_table_points_are_exact_both_ways(tick, us):
    assert ticks_to_us(tick) == us
    assert us_to_ticks(us) == tick


def test_ticks_to_us_is_the_elrs_integer_formula_for_every_tick():
    assert [ticks_to_us(t) for t in range(2048)] == [ref_us(t) for t in range(2048)]


def test_every_whole_microsecond_988_to_2012_round_trips_exactly():
    assert [ticks_to_us(us_to_ticks(us)) for us in range(988, 2013)] == list(range(988, 2013))


@ROUND_TRIP
@given(st.floats(988.0, 2012.0))
def test_fractional_microseconds_come_back_within_one(us):
    assert abs(ticks_to_us(us_to_ticks(us)) - us) < 1.0


@pytest.mark.parametrize(("us", "tick"), [(0.0, 0), (-1e9, 0), (5000.0, 2047), (math.inf, 2047), (-math.inf, 0)])
def test_us_to_ticks_clamps(us, tick):
    assert us_to_ticks(us) == tick


# ---------------------------------------------------------------- encoders: round trips and range checks

u8 = st.integers(0, 0xFF)
rssi = st.integers(-255, 0)
snr = st.integers(-128, 127)
link_statistics = st.builds(LinkStatistics, rssi, rssi, u8, snr, u8, u8, u8, rssi, u8, snr)
radians = st.integers(-32768, 32767).map(lambda units: units / 10000)
attitudes = st.builds(Attitude, radians, radians, radians)
batteries = st.builds(
    Battery,
    st.integers(0, 0xFFFF).map(lambda units: units / 10),
    st.integers(0, 0xFFFF).map(lambda units: units / 10),
    st.integers(0, 0xFFFFFF),
    u8,
)
flight_modes = st.builds(
    FlightMode, st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=14)
)
centi = st.integers(-32768, 32767).map(lambda units: units / 100)
altitudes = st.one_of(
    st.integers(-10000, 22767).map(lambda dm: dm / 10), st.integers(2277, 32767).map(lambda m: float(m))
)
baro_altitudes = st.builds(BaroAltitude, altitudes, st.none() | centi)
varios = st.builds(Vario, centi)
unknown_frames = st.builds(UnknownFrame, u8.filter(lambda t: t not in KNOWN_TYPES), st.binary(max_size=60))
telemetry = st.one_of(link_statistics, attitudes, batteries, flight_modes, baro_altitudes, varios, unknown_frames)
addresses = st.sampled_from(sorted(ADDRESSES))


@ROUND_TRIP
@given(telemetry, addresses)
def test_telemetry_round_trips_exactly(message, address):
    data = encode(message, address)
    assert data[0] == address and data[-1] == crc8_bitwise(data[2:-1]) and data[1] == len(data) - 2
    assume(good_candidates(data) == [(0, len(data))])  # no inner CRC-valid window: the documented limit
    messages, decoder = decode_all([data])
    assert messages == [message] and decoder.decode_errors == 0


@ROUND_TRIP
@given(st.lists(st.floats(988.0, 2012.0), max_size=16), addresses)
def test_channels_round_trip_within_one_microsecond(channels, address):
    data = encode_channels(ChannelFrame(tuple(channels)), address)
    assert len(data) == 26 and data[0] == address
    (frame,), decoder = decode_all([data])
    assert decoder.decode_errors == 0
    padded = [*channels, *[1500] * (16 - len(channels))]
    assert all(abs(got - sent) < 1.0 for got, sent in zip(frame.channels_us, padded, strict=True))
    assert encode_channels(frame, address) == data


@ROUND_TRIP
@given(st.lists(st.integers(0, 2047), min_size=16, max_size=16))
def test_any_ticks_decode_and_re_encode_bit_exactly(ticks):
    data = hand_frame(0xC8, 0x16, ref_pack(ticks))
    (frame,), _ = decode_all([data])
    assert list(frame.ticks) == ticks and list(frame.channels_us) == [ref_us(t) for t in ticks]
    assert encode_channels(frame) == data


def test_edited_channels_are_encoded_from_their_microseconds():
    (frame,), _ = decode_all([bytes.fromhex(BETAFLIGHT_1)])
    edited = CrsfChannels((1000, *frame.channels_us[1:]), payload=frame.payload)  # ticks stale for channel 1
    (again,), _ = decode_all([encode_channels(edited, address=0x00)])
    assert again.ticks == (191, *frame.ticks[1:])


def test_baro_altitude_forms():
    assert decode_all([hand_frame(0xC8, 0x09, bytes.fromhex("2710"))])[0] == [BaroAltitude(0.0)]
    assert decode_all([hand_frame(0xC8, 0x09, bytes.fromhex("0000"))])[0] == [BaroAltitude(-1000.0)]
    assert decode_all([hand_frame(0xC8, 0x09, bytes.fromhex("80 64"))])[0] == [BaroAltitude(100.0)]  # metres flag
    (tbs,), _ = decode_all([hand_frame(0xC8, 0x09, bytes.fromhex("2774 CE"))])  # 10.0 m, packed vario -50
    assert tbs.altitude_m == 10.0
    assert tbs.vertical_speed_m_s == pytest.approx(-(math.exp(50 * 0.026) - 1))  # TBS: (e^(|p| Kr) - 1) * 100 cm/s
    elrs = hand_frame(0xC8, 0x09, bytes.fromhex("2774 FF38"))  # 10.0 m, -200 cm/s
    assert decode_all([elrs])[0] == [BaroAltitude(10.0, -2.0)]
    assert encode(BaroAltitude(10.0, -2.0)) == elrs
    assert encode(BaroAltitude(2276.7)) == hand_frame(0xC8, 0x09, bytes.fromhex("7FFF"))
    assert encode(BaroAltitude(2276.8)) == hand_frame(0xC8, 0x09, bytes.fromhex("88E5"))  # 2277 m, metres from here


def test_vario_layout():
    data = hand_frame(0xC8, 0x07, bytes.fromhex("FF9C"))  # i16 BE cm/s
    assert decode_all([data])[0] == [Vario(-1.0)]
    assert encode(Vario(-1.0)) == data


def test_telemetry_payload_longer_than_its_fields_is_read_shorter_is_rejected():
    longer = hand_frame(0xC8, 0x14, bytes.fromhex(LINK_STATS)[3:-1] + b"\x2a")
    assert decode_all([longer])[0] == decode_all([bytes.fromhex(LINK_STATS)])[0]
    for type_id, size in [(0x14, 10), (0x1E, 6), (0x08, 8), (0x09, 2), (0x07, 2)]:
        messages, decoder = decode_all([hand_frame(0xC8, type_id, bytes(size - 1))])
        assert messages == [] and (decoder.length_errors, decoder.crc_errors) == (1, 0), type_id
        assert decoder.bytes_skipped == size + 3


def test_flight_mode_text_ends_at_the_first_nul_and_survives_bad_utf8():
    assert decode_all([hand_frame(0xC8, 0x21, b"ANGLE\x00junk")])[0] == [FlightMode("ANGLE")]
    assert decode_all([hand_frame(0xC8, 0x21, b"NO NUL")])[0] == [FlightMode("NO NUL")]
    assert decode_all([hand_frame(0xC8, 0x21, b"\xff\x00")])[0] == [FlightMode("\ufffd")]


@pytest.mark.parametrize(
    "message",
    [
        LinkStatistics(1, -60, 100, 9, 0, 7, 3, -55, 98, 8),
        LinkStatistics(-256, -60, 100, 9, 0, 7, 3, -55, 98, 8),
        LinkStatistics(-60, -60, 256, 9, 0, 7, 3, -55, 98, 8),
        LinkStatistics(-60, -60, 100, 128, 0, 7, 3, -55, 98, 8),
        Attitude(3.3, 0.0, 0.0),
        Attitude(float("nan"), 0.0, 0.0),
        Battery(-0.1, 0.0, 0, 0),
        Battery(6553.6, 0.0, 0, 0),
        Battery(1.0, 1.0, 1 << 24, 0),
        Battery(1.0, 1.0, 0, 256),
        FlightMode("A\x00B"),
        FlightMode("x" * 60),
        BaroAltitude(-1000.1),
        BaroAltitude(32767.6),
        BaroAltitude(0.0, 327.68),
        Vario(float("inf")),
        UnknownFrame(0x100, b""),
        UnknownFrame(0x32, bytes(61)),
    ],
)
def test_encode_rejects_out_of_range_fields(message):
    with pytest.raises(ValueError):
        encode(message)


def test_encode_channels_rejects_what_crsf_cannot_carry():
    with pytest.raises(ValueError):
        encode_channels(ChannelFrame((1500.0,) * 17))
    with pytest.raises(ValueError):
        encode_channels(ChannelFrame((float("nan"),)))
    with pytest.raises(ValueError):
        encode_channels(ChannelFrame((1500.0,)), address=0xEC)  # a receiver's address is not a sync here
    with pytest.raises(TypeError):
        encode("ACRO")
    assert encode_channels(ChannelFrame(())) == bytes.fromhex(CENTRED)  # no channels: all centred


def test_encode_frame_limits():
    assert encode_frame(0x7F, bytes(60)) == hand_frame(0xC8, 0x7F, bytes(60))
    with pytest.raises(ValueError):
        encode_frame(0x7F, bytes(61))


# ---------------------------------------------------------------- stream decoder: noise, split and corrupt frames

SAMPLES = [
    bytes.fromhex(CENTRED),
    bytes.fromhex(HELI),
    bytes.fromhex(BETAFLIGHT_1),
    bytes.fromhex(LINK_STATS),
    bytes.fromhex(BIND_COMMAND),
    bytes.fromhex(BATTERY),
    bytes.fromhex(ATTITUDE),
    bytes.fromhex(FLIGHT_MODE),
]
IDS = ["centred", "heli", "betaflight", "link", "command", "battery", "attitude", "mode"]


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=IDS)
def test_split_at_every_offset_and_byte_by_byte_gives_the_same_message(frame_bytes):
    whole, _ = decode_all([frame_bytes])
    assert len(whole) == 1
    for cut in range(len(frame_bytes) + 1):
        messages, decoder = decode_all([frame_bytes[:cut], frame_bytes[cut:]])
        assert messages == whole, cut
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 0 and decoder.decode_errors == 0
    messages, _ = decode_all([frame_bytes[i : i + 1] for i in range(len(frame_bytes))])
    assert messages == whole


@pytest.mark.parametrize("frame_bytes", SAMPLES[:4], ids=IDS[:4])
def test_bad_crc_gives_no_message(frame_bytes):
    corrupt = frame_bytes[:-1] + bytes([frame_bytes[-1] ^ 0x01])
    messages, decoder = decode_all([corrupt])
    assert messages == [] and decoder.crc_errors == 1 and decoder.frames == 0


@pytest.mark.parametrize("frame_bytes", SAMPLES[:4], ids=IDS[:4])
def test_payload_bit_flip_with_stale_crc_gives_no_message(frame_bytes):
    for index in range(2, len(frame_bytes) - 1):
        for bit in range(8):
            corrupt = bytearray(frame_bytes)
            corrupt[index] ^= 1 << bit
            messages, decoder = decode_all([bytes(corrupt)])
            assert (0, len(corrupt)) not in good_candidates(bytes(corrupt))  # CRC-8 catches every 1-bit error
            assert decoder.crc_errors >= 1
            # nothing, or a short good-CRC window inside (00 02 00 00 after a 00 -> 02 flip): the documented limit
            assert only_from_good_windows(bytes(corrupt), messages), (index, bit)


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=IDS)
def test_truncated_frame_then_good_frame_gives_the_good_one(frame_bytes):
    good = SAMPLES[0]
    for kept in range(1, len(frame_bytes)):
        messages, decoder = decode_all([frame_bytes[:kept] + good])
        assert messages == decode_all([good])[0], kept
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == kept
    messages, _ = decode_all([SAMPLES[2][:13] + SAMPLES[1]])  # the checklist's "truncated after 13 bytes"
    assert messages == decode_all([SAMPLES[1]])[0]


def test_garbage_prefix_gives_one_frame():
    junk = b"\x11\x22\x33\x44\x55"
    messages, decoder = decode_all([junk + SAMPLES[1]])
    assert messages == decode_all([SAMPLES[1]])[0]
    assert decoder.bytes_skipped == 5 and decoder.decode_errors == 0 and decoder.bytes_in == 5 + 26


def test_fake_syncs_before_a_good_frame():
    junk = bytes.fromhex("C8 FF  C8 02 16 55  C8 02")  # bad length; a 4-byte frame with a bad CRC; a cut header
    assert crc8_bitwise(b"\x16") != 0x55 and crc8_bitwise(b"\xc8") != 0x18
    messages, decoder = decode_all([junk + SAMPLES[0]])
    assert messages == decode_all([SAMPLES[0]])[0]
    assert decoder.length_errors == 1 and decoder.crc_errors == 2 and decoder.bytes_skipped == len(junk)


@pytest.mark.parametrize("length", [1, 63, 100, 255])
def test_length_byte_outside_2_to_62_before_a_good_frame(length):
    messages, decoder = decode_all([bytes([0xC8, length]) + SAMPLES[1]])
    assert messages == decode_all([SAMPLES[1]])[0]
    assert (decoder.length_errors, decoder.crc_errors, decoder.bytes_skipped) == (1, 0, 2)


def test_longest_frame_is_64_bytes():
    longest = hand_frame(0xC8, 0x7F, bytes(60))
    assert len(longest) == MAX_FRAME_LEN == 64
    assert decode_all([longest])[0] == [UnknownFrame(0x7F, bytes(60))]


def test_two_frames_back_to_back_in_one_chunk():
    messages, decoder = decode_all([SAMPLES[0] + SAMPLES[3]])
    assert [type(m) for m in messages] == [CrsfChannels, LinkStatistics]
    assert decoder.frames == 2 and decoder.decode_errors == 0


@pytest.mark.parametrize("payload_len", [0, 21, 23, 60])
def test_rc_type_with_another_payload_length_is_not_channels(payload_len):
    odd = hand_frame(0xC8, 0x16, bytes(range(payload_len)))  # a good CRC
    messages, decoder = decode_all([odd])
    assert messages == [] and (decoder.length_errors, decoder.crc_errors, decoder.frames) == (1, 0, 0)
    assert decoder.bytes_skipped == len(odd) and decoder.pending_bytes == 0
    messages, decoder = decode_all([odd + SAMPLES[0]])
    assert messages == decode_all([SAMPLES[0]])[0] and decoder.decode_errors == 1


@pytest.mark.parametrize("address", [0x00, 0xC8, 0xEA, 0xEE])
def test_accepted_addresses(address):
    assert decode_all([bytes([address]) + SAMPLES[0][1:]])[0] == decode_all([SAMPLES[0]])[0]


@pytest.mark.parametrize("address", [0xEC, 0x10, 0xC7, 0xFF])
def test_other_addresses_are_not_syncs(address):
    messages, decoder = decode_all([bytes([address]) + SAMPLES[0][1:]])
    assert messages == [] and decoder.bytes_skipped == 26 and decoder.decode_errors == 0


def test_unknown_types_are_skipped_without_losing_sync():
    vtx = hand_frame(0xC8, 0x0F, bytes(6))  # video transmitter: decoded nowhere here
    ping = hand_frame(0xEE, 0x28, b"\x00\xea")  # extended header: destination, origin
    messages, decoder = decode_all([vtx + SAMPLES[0] + ping + SAMPLES[1]])
    assert messages[0] == UnknownFrame(0x0F, bytes(6)) and messages[2] == UnknownFrame(0x28, b"\x00\xea")
    assert [channels_of(m) for m in messages[1::2]] == [(1500,) * 16, tuple(HELI_US)]
    assert decoder.frames == 4 and decoder.decode_errors == 0


def test_incomplete_frame_waits_for_its_last_byte():
    decoder = CrsfDecoder()
    assert decoder.feed(SAMPLES[0][:-1]) == []
    assert decoder.pending_bytes == 25 and decoder.decode_errors == 0
    assert decoder.feed(SAMPLES[0][-1:]) == decode_all([SAMPLES[0]])[0]
    assert decoder.feed(b"\xc8") == [] and decoder.pending_bytes == 1  # a lone address waits for its length


def test_a_fake_header_claiming_more_bytes_does_not_delay_the_next_frame():
    # "C8 3E" claims 62 more bytes; the good frame inside that window comes out as soon as it is complete
    fake = b"\xc8\x3e\x16"
    messages, decoder = decode_all([fake + SAMPLES[3]])
    assert messages == decode_all([SAMPLES[3]])[0]
    assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 3 and decoder.crc_errors == 1
    messages, decoder = decode_all([fake[:2], fake[2:] + SAMPLES[3][:-1], SAMPLES[3][-1:]])
    assert messages == decode_all([SAMPLES[3]])[0] and decoder.crc_errors == 1


def test_documented_limit_a_payload_holding_a_whole_frame_loses_to_it():
    inner = hand_frame(0x00, 0x41, b"")  # 00 02 41 crc: 4 bytes
    outer = hand_frame(0xC8, 0x7F, b"xy" + inner + b"z")
    messages, decoder = decode_all([outer])
    assert messages == [UnknownFrame(0x41, b"")]
    assert decoder.crc_errors == 1  # the outer frame, cut short by the inner one
    # "00 L" and L zero bytes is always a good frame (the CRC of zeros is 0): a payload holding
    # 00 02 00 00 (pitch 0.0002 rad, roll 0) loses to it
    (zeros,), _ = decode_all([encode(Attitude(0.0002, 0.0, 1.0))])
    assert zeros == UnknownFrame(0x00, b"")


def test_two_good_frames_ending_on_the_same_byte_the_earlier_start_wins():
    # an inner frame 00 02 41 c, and an outer frame whose CRC is that same byte c (a filler byte makes it so)
    c = crc8_bitwise(b"\x41")
    filler = next(f for f in range(256) if crc8_bitwise(bytes([0x7F, f, 0x00, 0x02, 0x41])) == c)
    outer = bytes([0xC8, 6, 0x7F, filler, 0x00, 0x02, 0x41, c])
    assert (4, 8) in good_candidates(outer) and (0, 8) in good_candidates(outer)
    messages, decoder = decode_all([outer])
    assert messages == [UnknownFrame(0x7F, bytes([filler, 0x00, 0x02, 0x41]))]
    assert decoder.decode_errors == 0 and decoder.pending_bytes == 0


def test_buffer_stays_bounded_and_nothing_spins():
    decoder = CrsfDecoder()
    decoder.feed(b"\xc8\x3e")  # claims 62 more bytes
    for _ in range(3 * MAX_FRAME_LEN):
        decoder.feed(b"\x11")
        assert decoder.pending_bytes <= MAX_FRAME_LEN - 1
    assert decoder.feed(b"\xc8" * 100_000) == [] and decoder.pending_bytes == 1
    assert decoder.feed(b"\x00\x02" * 50_000) == []
    assert decoder.pending_bytes <= MAX_FRAME_LEN - 1
    assert decoder.feed(b"\x11" * MAX_FRAME_LEN + SAMPLES[0]) == decode_all([SAMPLES[0]])[0]


# ---------------------------------------------------------------- fuzzing

rc_ticks = st.lists(st.integers(0, 2047), min_size=16, max_size=16)
rc_frames = st.builds(lambda a, t: hand_frame(a, 0x16, ref_pack(t)), addresses, rc_ticks)
any_frames = st.builds(hand_frame, addresses, u8, st.binary(max_size=60))
garbage_pieces = st.one_of(
    st.binary(max_size=40),
    addresses.map(lambda a: bytes([a])),
    # a fake header with any length byte, and maybe a type
    st.builds(lambda a, n, t: bytes([a, n]) + t, addresses, u8, st.binary(max_size=1)),
    # the front of a valid frame, cut short
    st.builds(lambda f, k: f[: max(1, k % len(f))], st.one_of(rc_frames, any_frames), st.integers(0, 1000)),
    any_frames,
    rc_frames,
)
garbage = st.lists(garbage_pieces, max_size=8).map(b"".join)


def _check_accounting(messages: list, decoder: CrsfDecoder) -> None:
    assert decoder.frames == len(messages)
    assert 0 <= decoder.pending_bytes <= MAX_FRAME_LEN - 1
    assert decoder.bytes_skipped + decoder.pending_bytes <= decoder.bytes_in


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("frames", "crc_errors", "length_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)


def _overlapped(stream: bytes, start: int, end: int) -> bool:
    """True if a good-CRC window other than [start, end) would complete first and cover part of it."""
    return any(
        (s, e) != (start, end) and start < e <= end and not (s > start and e == end) for s, e in good_candidates(stream)
    )


@FUZZ
@given(garbage, rc_ticks, addresses, st.lists(st.integers(0, 3000), max_size=6))
def test_resyncs_after_garbage_and_delivers_the_rc_frame_last(junk, ticks, address, cuts):
    frame_bytes = hand_frame(address, 0x16, ref_pack(ticks))
    stream = junk + frame_bytes
    messages, decoder = decode_all(split(stream, cuts))
    _check_accounting(messages, decoder)
    if _overlapped(stream, len(junk), len(stream)):
        return  # a CRC-8 coincidence in the garbage (1 in 256 per window) ends inside the frame and wins
    assert messages and list(channels_of(messages[-1])) == [ref_us(t) for t in ticks]
    assert messages[-1].ticks == tuple(ticks)
    assert decoder.pending_bytes == 0


@FUZZ
@given(
    st.lists(st.one_of(rc_frames, any_frames), min_size=1, max_size=6).map(b"".join),
    st.lists(
        st.tuples(st.sampled_from(["flip", "insert", "delete", "cut", "repeat"]), st.integers(0, 400), u8), max_size=6
    ),
    st.lists(st.integers(0, 3000), max_size=6),
)
def test_mutated_streams_never_raise_nor_deliver_a_bad_crc(stream, mutations, cuts):
    mutated = mutate(stream, mutations, delete_len=lambda v: 1 + v % 8, repeat_len=lambda v: v)
    messages, decoder = decode_all(split(mutated, cuts))
    assert only_from_good_windows(mutated, messages)  # each from a window whose CRC the reference checked
    assert decode_all([mutated])[0] == messages
    _check_accounting(messages, decoder)


whole_us_frames = st.lists(st.integers(988, 2012), max_size=16).map(lambda us: ChannelFrame(tuple(us)))


def _comparable(message):
    """Channel frames by their 16 microsecond values (padded with 1500), other messages as they are."""
    if isinstance(message, ChannelFrame):
        return (*message.channels_us, *[1500] * (16 - len(message.channels_us)))
    return message


@FUZZ
@given(
    st.lists(st.tuples(st.one_of(telemetry, whole_us_frames), addresses), min_size=1, max_size=6),
    st.lists(st.integers(0, 1500), max_size=8),
)
def test_a_clean_stream_of_messages_decodes_completely(sent, cuts):
    encoded = [encode(message, address) for message, address in sent]
    stream = b"".join(encoded)
    ends = [sum(len(e) for e in encoded[: i + 1]) for i in range(len(encoded))]
    # a window that starts inside one frame and passes the CRC by chance (1 in 256) wins: the documented limit
    assume(set(good_candidates(stream)) == set(zip([0, *ends[:-1]], ends, strict=True)))
    messages, decoder = decode_all(split(stream, cuts))
    assert [_comparable(m) for m in messages] == [_comparable(m) for m, _ in sent]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_crsf_imports_only_the_standard_library_and_rc():
    for node in ast.walk(ast.parse((PROTOCOLS / "crsf.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] not in ("sim", "heli", "serial", "numpy") or module in (
                "sim.protocols.rc",
                "sim.protocols.crc",
            ), module
    expected = "['sim', 'sim.protocols', 'sim.protocols.crc', 'sim.protocols.crsf', 'sim.protocols.rc']"
    assert modules_imported_by("sim.protocols.crsf") == expected
