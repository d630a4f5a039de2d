"""SBUS codec: the tick/microsecond convention, example frames as hand-written hex, round
trips, flags, and the stream decoder on split, corrupt, truncated and random input."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.protocols.rc import ChannelFrame, LineSettings
from sim.protocols.sbus import (
    END_BYTES,
    FRAME_LEN,
    LINE,
    SbusDecoder,
    SbusFrame,
    encode_channels,
    ticks_to_us,
    us_to_ticks,
)
from tests.codec_streams import feed_all, modules_imported_by, mutate, split

PROTOCOLS = Path(__file__).resolve().parent.parent / "sim" / "protocols"

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=150, deadline=None, derandomize=True)


# ---------------------------------------------------------------- references independent of sim.protocols


def ref_pack(ticks: list[int]) -> bytes:
    """The 16 x 11-bit packing bit by bit: channel n is bits 11n..11n+10 of the stream, LSB first."""
    bits = [(tick >> i) & 1 for tick in ticks for i in range(11)]
    return bytes(sum(bits[8 * k + i] << i for i in range(8)) for k in range(22))


def ref_us(tick: int) -> float:
    """Betaflight's SBUS mapping (sbus_channels.c): 5 * t / 8 + 880."""
    return 5 * tick / 8 + 880


def hand_frame(ticks: list[int], flags: int = 0x00, end: int = 0x00) -> bytes:
    """A frame laid out from Futaba's 25-byte format, without the encoder."""
    return b"\x0f" + ref_pack(ticks) + bytes([flags, end])


def decode_all(chunks: list[bytes]) -> tuple[list[SbusFrame], SbusDecoder]:
    decoder = SbusDecoder()
    return feed_all(decoder, chunks), decoder


def plausible_windows(stream: bytes) -> list[int]:
    """Starts of every 25-byte window with a 0x0F header and an SBUS/SBUS2 end byte."""
    ends = (0x00, 0x04, 0x14, 0x24, 0x34)
    return [i for i in range(len(stream) - 24) if stream[i] == 0x0F and stream[i + 24] in ends]


def flags_of(frame: SbusFrame) -> tuple[bool, bool, bool, bool]:
    return frame.failsafe, frame.frame_lost, frame.ch17, frame.ch18


# ---------------------------------------------------------------- example frames, typed by hand

CENTRED_CHANNELS = "0F E0 03 1F F8 C0 07 3E F0 81 0F 7C E0 03 1F F8 C0 07 3E F0 81 0F 7C"
CENTRED = CENTRED_CHANNELS + " 00 00"
LOST_FAILSAFE = CENTRED_CHANNELS + " 0C 00"
CH17_CH18 = CENTRED_CHANNELS + " 03 00"
EXTREMES = "0F AC 98 F8 2F 00 0E BE AF 80 F9 49 70 65 C5 C4 C1 F7 0B 80 83 0F 7C 00 00"
HELI = "0F F3 CB DD 2F 20 08 4D 80 FF 02 7C E0 FB 14 48 C1 07 3E F0 81 0F 7C 00 00"

EXTREMES_TICKS = [172, 1811, 191, 1792, 992, 351, 1632, 591, 1392, 172, 1811, 992, 191, 1792, 992, 992]
HELI_TICKS = [1011, 953, 191, 1040, 1232, 1792, 191, 992, 992, 671, 1312, 992, 992, 992, 992, 992]

EXAMPLES = [
    # text, ticks, (failsafe, frame_lost, ch17, ch18)
    pytest.param(CENTRED, [992] * 16, (False, False, False, False), id="centred"),
    pytest.param(LOST_FAILSAFE, [992] * 16, (True, True, False, False), id="lost+failsafe"),
    pytest.param(CH17_CH18, [992] * 16, (False, False, True, True), id="ch17+ch18"),
    pytest.param(EXTREMES, EXTREMES_TICKS, (False, False, False, False), id="extremes"),
    pytest.param(HELI, HELI_TICKS, (False, False, False, False), id="heli"),
]


@pytest.mark.parametrize(("text", "ticks", "flags"), EXAMPLES)
def test_example_frames_decode_and_re_encode(text, ticks, flags):
    data = bytes.fromhex(text)
    assert data == hand_frame(ticks, data[23])  # the reference's bytes agree with its ticks
    frames, decoder = decode_all([data])
    assert len(frames) == 1 and decoder.decode_errors == 0 and decoder.frames == 1
    (frame,) = frames
    assert list(frame.channels_us) == [ref_us(t) for t in ticks]
    assert flags_of(frame) == flags
    assert encode_channels(frame) == data
    plain = ChannelFrame(frame.channels_us, failsafe=flags[0], frame_lost=flags[1])
    assert encode_channels(plain, ch17=flags[2], ch18=flags[3]) == data


def test_centred_is_1500_us():
    (frame,), _ = decode_all([bytes.fromhex(CENTRED)])
    assert frame == SbusFrame((1500.0,) * 16)


# ---------------------------------------------------------------- line, ticks <-> microseconds


def test_line_settings():
    expected = LineSettings(baudrate=100000, parity="E", stopbits=2, inverted=True, frame_rate_hz=111.0)
    assert expected == LINE


@pytest.mark.parametrize(
    ("tick", "us"), [(0, 880.0), (172, 987.5), (192, 1000.0), (992, 1500.0), (1792, 2000.0), (1811, 2011.875)]
)
def test_betaflight_mapping_points(tick, us):
    assert ticks_to_us(tick) == us
    assert us_to_ticks(us) == tick


def test_every_tick_round_trips_exactly():
    assert [us_to_ticks(ticks_to_us(t)) for t in range(2048)] == list(range(2048))
    assert [ticks_to_us(t) for t in range(2048)] == [ref_us(t) for t in range(2048)]


@ROUND_TRIP
@given(st.floats(880.0, 2159.375))
def test_microseconds_come_back_within_half_a_tick(us):
    assert abs(ticks_to_us(us_to_ticks(us)) - us) <= 0.3125


@pytest.mark.parametrize(("us", "tick"), [(0.0, 0), (-1e9, 0), (3000.0, 2047), (math.inf, 2047), (-math.inf, 0)])
def test_us_to_ticks_clamps(us, tick):
    assert us_to_ticks(us) == tick


# ---------------------------------------------------------------- encoder

ticks16 = st.lists(st.integers(0, 2047), min_size=16, max_size=16)


@ROUND_TRIP
@given(ticks16, st.integers(0, 0x0F), st.sampled_from(sorted(END_BYTES)))
def test_any_frame_decodes_to_its_ticks_and_flags(ticks, flags, end):
    data = hand_frame(ticks, flags, end)
    (frame,), decoder = decode_all([data])
    assert decoder.decode_errors == 0
    assert list(frame.channels_us) == [ref_us(t) for t in ticks]
    assert flags_of(frame) == (bool(flags & 8), bool(flags & 4), bool(flags & 1), bool(flags & 2))
    assert encode_channels(frame) == hand_frame(ticks, flags, 0x00)  # the SBUS2 slot id is not kept


@ROUND_TRIP
@given(st.lists(st.floats(880.0, 2159.375), max_size=16), st.booleans(), st.booleans())
def test_channels_round_trip_within_half_a_tick(channels, failsafe, frame_lost):
    data = encode_channels(ChannelFrame(tuple(channels), failsafe, frame_lost))
    assert len(data) == FRAME_LEN and data[0] == 0x0F and data[24] == 0x00
    (frame,), _ = decode_all([data])
    padded = [*channels, *[1500.0] * (16 - len(channels))]
    assert all(abs(got - sent) <= 0.3125 for got, sent in zip(frame.channels_us, padded, strict=True))
    assert (frame.failsafe, frame.frame_lost) == (failsafe, frame_lost)
    assert encode_channels(frame) == data


def test_digital_channels_come_from_the_arguments_or_the_frame():
    frame = SbusFrame((1500.0,) * 16, ch17=True)
    assert encode_channels(frame)[23] == 0x01
    assert encode_channels(frame, ch17=False, ch18=True)[23] == 0x02
    assert encode_channels(ChannelFrame((1500.0,) * 16))[23] == 0x00
    assert encode_channels(ChannelFrame(()), ch17=True, ch18=True) == bytes.fromhex(CH17_CH18)  # padded with 1500


def test_encode_rejects_what_sbus_cannot_carry():
    with pytest.raises(ValueError):
        encode_channels(ChannelFrame((1500.0,) * 17))
    with pytest.raises(ValueError):
        encode_channels(ChannelFrame((float("nan"),)))


# ---------------------------------------------------------------- stream decoder: noise, split and corrupt frames

SAMPLES = [bytes.fromhex(text) for text in (CENTRED, LOST_FAILSAFE, CH17_CH18, EXTREMES, HELI)]
IDS = ["centred", "lost+failsafe", "ch17+ch18", "extremes", "heli"]


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=IDS)
def test_split_at_every_offset_and_byte_by_byte_gives_the_same_frame(frame_bytes):
    whole, _ = decode_all([frame_bytes])
    assert len(whole) == 1
    for cut in range(len(frame_bytes) + 1):
        frames, decoder = decode_all([frame_bytes[:cut], frame_bytes[cut:]])
        assert frames == whole, cut
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 0 and decoder.decode_errors == 0
    frames, _ = decode_all([frame_bytes[i : i + 1] for i in range(len(frame_bytes))])
    assert frames == whole


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=IDS)
def test_garbage_prefix_gives_one_frame(frame_bytes):
    frames, decoder = decode_all([b"\x0f\x00\x33" + frame_bytes])
    assert frames == decode_all([frame_bytes])[0]
    assert decoder.bytes_skipped == 3 and decoder.end_byte_errors == 1 and decoder.bytes_in == 28


@pytest.mark.parametrize("end", [0x01, 0x0F, 0x44, 0x55, 0xFF])
def test_wrong_end_byte_gives_no_frame(end):
    frames, decoder = decode_all([bytes.fromhex(CENTRED)[:24] + bytes([end])])
    assert frames == [] and decoder.end_byte_errors >= 1 and decoder.frames == 0


@pytest.mark.parametrize("end", sorted(END_BYTES))
def test_sbus2_end_bytes_are_accepted(end):
    frames, _ = decode_all([bytes.fromhex(CENTRED)[:24] + bytes([end])])
    assert frames == [SbusFrame((1500.0,) * 16)]


def test_failsafe_and_frame_lost_flags():
    lost, failsafe = bytearray(SAMPLES[0]), bytearray(SAMPLES[0])
    lost[23], failsafe[23] = 0x04, 0x08
    assert flags_of(decode_all([bytes(lost)])[0][0]) == (False, True, False, False)
    assert flags_of(decode_all([bytes(failsafe)])[0][0]) == (True, False, False, False)


def test_flag_bits_4_to_7_are_ignored():
    frame = bytearray(SAMPLES[0])
    frame[23] = 0xF0
    assert decode_all([bytes(frame)])[0] == [SbusFrame((1500.0,) * 16)]


def test_two_frames_back_to_back_in_one_chunk():
    frames, decoder = decode_all([SAMPLES[3] + SAMPLES[4]])
    assert [list(f.channels_us) for f in frames] == [
        [ref_us(t) for t in EXTREMES_TICKS],
        [ref_us(t) for t in HELI_TICKS],
    ]
    assert decoder.frames == 2 and decoder.decode_errors == 0


def test_truncated_frame_then_good_frame():
    good = SAMPLES[4]
    checked = 0
    for kept in range(1, FRAME_LEN):
        stream = SAMPLES[3][:kept] + good
        frames, decoder = decode_all([stream])
        if any(start < kept for start in plausible_windows(stream)):
            continue  # a header in the cut frame pairs with a valid end byte in the good one: see the next test
        checked += 1
        assert frames == decode_all([good])[0], kept
        assert decoder.bytes_skipped == kept and decoder.pending_bytes == 0
    assert checked >= 20


def test_documented_limit_a_stray_header_just_before_a_frame():
    # a lone 0x0F before a frame: its byte 24 is the frame's flags byte, usually 0x00, so SBUS (no
    # checksum) takes a shifted frame and loses the real one; the next frame is read normally
    stream = b"\x0f" + SAMPLES[4] + SAMPLES[3]
    frames, decoder = decode_all([stream])
    assert len(frames) == 2 and frames[0] != decode_all([SAMPLES[4]])[0][0]
    assert frames[1] == decode_all([SAMPLES[3]])[0][0]
    assert decoder.bytes_skipped == 1 and decoder.pending_bytes == 0


def test_incomplete_frame_waits_for_its_last_byte():
    decoder = SbusDecoder()
    assert decoder.feed(SAMPLES[0][:-1]) == []
    assert decoder.pending_bytes == 24 and decoder.decode_errors == 0
    assert decoder.feed(SAMPLES[0][-1:]) == decode_all([SAMPLES[0]])[0]


def test_buffer_stays_bounded_and_nothing_spins():
    decoder = SbusDecoder()
    decoder.feed(b"\x0f")
    for _ in range(3 * FRAME_LEN):
        decoder.feed(b"\x11")
        assert decoder.pending_bytes <= FRAME_LEN - 1
    assert decoder.feed(b"\x0f" * 100_000) == [] and decoder.pending_bytes == FRAME_LEN - 1
    assert decoder.feed(b"\x11" * FRAME_LEN + SAMPLES[3]) == decode_all([SAMPLES[3]])[0]


# ---------------------------------------------------------------- fuzzing

valid_frames = st.builds(hand_frame, ticks16, st.integers(0, 0x0F), st.sampled_from(sorted(END_BYTES)))
garbage_pieces = st.one_of(
    st.binary(max_size=40),
    st.just(b"\x0f"),
    st.just(b"\x0f\x00\x33"),
    st.builds(lambda f, k: f[: max(1, k % FRAME_LEN)], valid_frames, st.integers(0, 1000)),  # cut short
    valid_frames,
)
garbage = st.lists(garbage_pieces, max_size=8).map(b"".join)


def _check_accounting(frames: list[SbusFrame], decoder: SbusDecoder) -> None:
    assert decoder.frames == len(frames)
    assert decoder.bytes_in == FRAME_LEN * len(frames) + decoder.bytes_skipped + decoder.pending_bytes
    assert 0 <= decoder.pending_bytes <= FRAME_LEN - 1


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("frames", "end_byte_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)


@FUZZ
@given(garbage, ticks16, st.integers(0, 0x0F), st.lists(st.integers(0, 3000), max_size=6))
def test_resyncs_after_garbage_and_delivers_the_frame_last(junk, ticks, flags, cuts):
    stream = junk + hand_frame(ticks, flags)
    frames, decoder = decode_all(split(stream, cuts))
    _check_accounting(frames, decoder)
    # garbage may hold plausible frames (no checksum), and a header up to 24 bytes before the frame
    # may pair with one of its bytes; only then can the frame be lost
    if any(len(junk) - FRAME_LEN < start < len(junk) for start in plausible_windows(stream)):
        return
    assert frames and list(frames[-1].channels_us) == [ref_us(t) for t in ticks]
    assert flags_of(frames[-1]) == (bool(flags & 8), bool(flags & 4), bool(flags & 1), bool(flags & 2))
    assert decoder.pending_bytes == 0


@FUZZ
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\x0f", b"")), ticks16, st.lists(st.integers(0, 300)))
def test_garbage_without_a_header_byte_costs_nothing(junk, ticks, cuts):
    frames, decoder = decode_all(split(junk + hand_frame(ticks), cuts))
    assert [list(f.channels_us) for f in frames] == [[ref_us(t) for t in ticks]]
    assert decoder.bytes_skipped == len(junk) and decoder.decode_errors == 0


@FUZZ
@given(
    st.lists(valid_frames, min_size=1, max_size=6).map(b"".join),
    st.lists(
        st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]), st.integers(0, 200), st.integers(0, 255)),
        max_size=6,
    ),
    st.lists(st.integers(0, 3000), max_size=6),
)
def test_mutated_streams_deliver_only_plausible_windows(stream, mutations, cuts):
    mutated = mutate(stream, mutations, delete_len=lambda v: 1 + v % 8, repeat_len=lambda v: v)  # no "repeat" here
    frames, decoder = decode_all(split(mutated, cuts))
    allowed = {f for start in plausible_windows(mutated) for f in decode_all([mutated[start : start + 25]])[0]}
    assert all(f in allowed for f in frames)
    assert decode_all([mutated])[0] == frames
    _check_accounting(frames, decoder)


@FUZZ
@given(st.lists(st.tuples(ticks16, st.integers(0, 0x0F)), min_size=1, max_size=8), st.lists(st.integers(0, 300)))
def test_a_clean_stream_decodes_completely(sent, cuts):
    stream = b"".join(hand_frame(ticks, flags) for ticks, flags in sent)
    frames, decoder = decode_all(split(stream, cuts))
    assert [encode_channels(f) for f in frames] == [hand_frame(ticks, flags) for ticks, flags in sent]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_sbus_imports_only_the_standard_library_rc_and_the_crsf_packing():
    for node in ast.walk(ast.parse((PROTOCOLS / "sbus.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            assert top not in ("sim", "heli", "serial", "numpy") or module in (
                "sim.protocols.rc",
                "sim.protocols.crsf",
                "sim.protocols.crc",
            )
    modules = (
        "['sim', 'sim.protocols', 'sim.protocols.crc', 'sim.protocols.crsf', 'sim.protocols.rc', 'sim.protocols.sbus']"
    )
    assert modules_imported_by("sim.protocols.sbus") == modules
