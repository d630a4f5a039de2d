"""iBUS codec: the reference's example frames, frames built by hand from the documented layout,
round trips, and the stream decoder's resync behaviour on split, corrupt, truncated and random input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.protocols.ibus import LINE, IbusDecoder, checksum, encode_channels
from sim.protocols.rc import ChannelFrame
from tests.codec_streams import feed_all, modules_imported_by, mutate, split

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=200, deadline=None, derandomize=True)

# ---------------------------------------------------------------- example frames, typed by hand

CENTRED = bytes.fromhex(
    "20 40 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 DC 05 51 F3"
)
HELI = bytes.fromhex("20 40 E8 05 C4 05 E8 03 FA 05 72 06 D0 07 E8 03 DC 05 DC 05 14 05 A4 06 DC 05 DC 05 DC 05 9D F4")
HELI_US = (1512, 1476, 1000, 1530, 1650, 2000, 1000, 1500, 1500, 1300, 1700, 1500, 1500, 1500)
# Betaflight's rx_ibus_unittest.cc frames have byte 1 = 00; the same frames with byte 1 = 40
# (checksum 0x40 lower: FF84 -> FF44, FD84 -> FD44), typed by hand
BETAFLIGHT_14 = bytes.fromhex(
    "20 00 00 00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 08 00 09 00 0A 00 0B 00 0C 00 0D 00 84 FF"
)
BETAFLIGHT_18 = bytes.fromhex(
    "20 00 00 E0 01 00 02 00 03 F0 04 00 05 00 06 00 07 10 08 00 09 10 0A 10 0B 00 0C 00 0D 00 84 FD"
)
BETAFLIGHT_14_40 = bytes.fromhex(
    "20 40 00 00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 08 00 09 00 0A 00 0B 00 0C 00 0D 00 44 FF"
)
BETAFLIGHT_18_40 = bytes.fromhex(
    "20 40 00 E0 01 00 02 00 03 F0 04 00 05 00 06 00 07 10 08 00 09 10 0A 10 0B 00 0C 00 0D 00 44 FD"
)

# ---------------------------------------------------------------- references independent of sim.protocols


def sum_checksum(body: bytes) -> int:
    """0xFFFF minus the byte sum, the way section 4.2 words it."""
    total = 0
    for byte in body:
        total += byte
    return 0xFFFF - total


def hand_frame(channels: list[int]) -> bytes:
    """A frame laid out from section 4.2: 14 words, channels 15..18 spread over the words' top nibbles."""
    words = list(channels[:14]) + [1500] * (14 - min(len(channels), 14))
    for k, value in enumerate(channels[14:]):
        words[3 * k] += (value % 16) * 4096
        words[3 * k + 1] += (value // 16 % 16) * 4096
        words[3 * k + 2] += (value // 256) * 4096
    body = bytes([0x20, 0x40]) + b"".join(struct.pack("<H", word) for word in words)
    return body + struct.pack("<H", sum_checksum(body))


def decode_all(chunks: list[bytes]) -> tuple[list[ChannelFrame], IbusDecoder]:
    decoder = IbusDecoder()
    return feed_all(decoder, chunks), decoder


# ---------------------------------------------------------------- strategies

us12 = st.integers(0, 0x0FFF)
fourteen = st.lists(us12, min_size=14, max_size=14)
eighteen = st.lists(us12, min_size=18, max_size=18).filter(lambda values: any(values[14:]))
valid_frames = st.one_of(fourteen, eighteen).map(hand_frame)
garbage = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.one_of(st.binary(max_size=6), st.just(b"\x20\x40"), st.just(b"\x20\x40\xdc"), st.just(b"\x20")),
        max_size=12,
    ).map(b"".join),
    valid_frames.flatmap(lambda frame: st.integers(1, 31).map(lambda kept: frame[:kept])),
)


# ---------------------------------------------------------------- the documented examples


def test_line_settings():
    assert (LINE.baudrate, LINE.parity, LINE.stopbits, LINE.inverted) == (115200, "N", 1, False)
    assert 140 <= LINE.frame_rate_hz <= 145  # a frame every ~7 ms


def test_reference_checksums_agree_with_the_independent_sum():
    for frame in (CENTRED, HELI, BETAFLIGHT_14, BETAFLIGHT_18, BETAFLIGHT_14_40, BETAFLIGHT_18_40):
        assert len(frame) == 32
        assert sum_checksum(frame[:30]) == frame[30] | frame[31] << 8 == checksum(frame[:30])


@pytest.mark.parametrize(("frame", "channels"), [(CENTRED, (1500,) * 14), (HELI, HELI_US)], ids=["centred", "heli"])
def test_example_frames_decode_and_re_encode_exactly(frame, channels):
    frames, decoder = decode_all([frame])
    assert frames == [ChannelFrame(channels)]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0
    assert encode_channels(ChannelFrame(channels)) == frame
    assert hand_frame(list(channels)) == frame


def test_betaflight_unit_test_frames_with_the_servo_command_byte():
    frames, _ = decode_all([BETAFLIGHT_14_40])
    assert frames == [ChannelFrame(tuple(range(14)))]
    frames, _ = decode_all([BETAFLIGHT_18_40])
    assert frames == [ChannelFrame(tuple(range(18)))]
    assert encode_channels(ChannelFrame(tuple(range(18)))) == BETAFLIGHT_18_40
    assert encode_channels(ChannelFrame(tuple(range(14)))) == BETAFLIGHT_14_40


def test_documented_choice_byte_1_must_be_0x40():
    for frame in (BETAFLIGHT_14, BETAFLIGHT_18):
        frames, decoder = decode_all([frame + HELI])
        assert frames == [ChannelFrame(HELI_US)]
        assert decoder.bytes_skipped == 32 and decoder.checksum_errors == 0


# ---------------------------------------------------------------- encoder


def test_fewer_than_14_channels_are_padded_with_1500():
    assert encode_channels(ChannelFrame(HELI_US[:5])) == hand_frame(list(HELI_US[:5]) + [1500] * 9)
    assert encode_channels(ChannelFrame(())) == CENTRED
    frames, _ = decode_all([encode_channels(ChannelFrame((1000, 2000)))])
    assert frames == [ChannelFrame((1000, 2000) + (1500,) * 12)]


def test_15_to_17_channels_are_padded_to_18():
    frames, _ = decode_all([encode_channels(ChannelFrame((*HELI_US, 1100)))])
    assert frames == [ChannelFrame((*HELI_US, 1100, 1500, 1500, 1500))]


def test_values_round_to_whole_microseconds():
    frames, _ = decode_all([encode_channels(ChannelFrame((1500.4, 1499.6, 1000.5, 1001.5)))])
    assert frames[0].channels_us[:4] == (1500, 1500, 1000, 1002)  # half to even


@pytest.mark.parametrize(
    "frame",
    [
        ChannelFrame((1500,) * 19),
        ChannelFrame((4096,)),
        ChannelFrame((-1,)),
        ChannelFrame((float("nan"),)),
        ChannelFrame((float("inf"),)),
        ChannelFrame((1500,) * 14 + (0, 0, 0, 0)),
        ChannelFrame((1500,) * 14, failsafe=True),
        ChannelFrame((1500,) * 14, frame_lost=True),
    ],
    ids=["19ch", "4096", "negative", "nan", "inf", "ch15-18 zero", "failsafe", "frame_lost"],
)
def test_encoder_rejects_what_ibus_cannot_carry(frame):
    with pytest.raises(ValueError):
        encode_channels(frame)


@ROUND_TRIP
@given(st.one_of(fourteen, eighteen))
def test_encode_then_decode_is_the_identity(channels):
    frame = ChannelFrame(tuple(channels))
    wire = encode_channels(frame)
    assert wire == hand_frame(channels)
    assert decode_all([wire])[0] == [frame]


@ROUND_TRIP
@given(st.lists(st.floats(0, 4095.49), max_size=18))
def test_any_channel_list_decodes_to_its_rounded_padded_self(values):
    expected = [round(v) for v in values]
    expected += [1500] * ((14 if len(values) <= 14 else 18) - len(values))
    if len(expected) == 18 and not any(expected[14:]):
        with pytest.raises(ValueError):
            encode_channels(ChannelFrame(tuple(values)))
    else:
        assert decode_all([encode_channels(ChannelFrame(tuple(values)))])[0] == [ChannelFrame(tuple(expected))]


# ---------------------------------------------------------------- stream decoder: the parser robustness checklist

SAMPLES = [CENTRED, HELI, BETAFLIGHT_18_40, hand_frame([1000, 2000, 1500, 1234] * 4 + [4095, 1])]


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=["centred", "heli", "betaflight18", "mixed"])
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
    frames, decoder = decode_all([HELI + CENTRED])
    assert frames == [ChannelFrame(HELI_US), ChannelFrame((1500,) * 14)]
    assert decoder.frames == 2 and decoder.decode_errors == 0 and decoder.bytes_in == 64


def test_garbage_prefix_gives_one_frame():
    junk = b"\x00\xff\x40\x20\x12$M<hello\x20"
    frames, decoder = decode_all([junk + HELI])
    assert frames == [ChannelFrame(HELI_US)]
    assert decoder.bytes_skipped == len(junk) and decoder.checksum_errors == 0


def test_fake_header_prefix_gives_one_frame():
    for junk in (b"\x20\x40\xdc", b"\x20\x40", b"\x20\x40\xdc\x05\x20\x40\xdc", b"\x20\x20\x40\x20"):
        frames, decoder = decode_all([junk + HELI])
        assert frames == [ChannelFrame(HELI_US)], junk
        assert decoder.checksum_errors == junk.count(b"\x20\x40") and decoder.bytes_skipped == len(junk)
        assert decoder.pending_bytes == 0


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=["centred", "heli", "betaflight18", "mixed"])
def test_truncated_frame_then_good_frame_gives_the_good_one(frame_bytes):
    for kept in range(1, len(frame_bytes)):
        frames, decoder = decode_all([frame_bytes[:kept] + HELI])
        assert frames == [ChannelFrame(HELI_US)], kept
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == kept


def test_bad_checksum_is_counted_and_not_delivered():
    bad = HELI[:-2] + bytes([HELI[-2] ^ 1, HELI[-1]])
    frames, decoder = decode_all([bad])
    assert frames == [] and decoder.checksum_errors == 1 and decoder.frames == 0
    frames, decoder = decode_all([bad + CENTRED])
    assert frames == [ChannelFrame((1500,) * 14)] and decoder.checksum_errors == 1


@pytest.mark.parametrize("frame_bytes", SAMPLES, ids=["centred", "heli", "betaflight18", "mixed"])
def test_any_single_bit_flip_after_the_header_gives_no_frame(frame_bytes):
    for index in range(2, 32):
        for bit in range(8):
            corrupt = bytearray(frame_bytes)
            corrupt[index] ^= 1 << bit
            frames, decoder = decode_all([bytes(corrupt)])
            assert frames == [], (index, bit)
            assert decoder.checksum_errors >= 1


def test_incomplete_frame_waits_for_its_last_byte():
    decoder = IbusDecoder()
    assert decoder.feed(HELI[:-1]) == [] and decoder.pending_bytes == 31 and decoder.decode_errors == 0
    assert decoder.feed(HELI[-1:]) == [ChannelFrame(HELI_US)]


def test_buffer_stays_bounded_and_nothing_spins():
    decoder = IbusDecoder()
    assert decoder.feed(b"\x20" * 100_000) == [] and decoder.pending_bytes == 1
    assert decoder.feed(b"\x20\x40" * 50_000) == [] and decoder.pending_bytes <= 31
    assert decoder.checksum_errors > 0
    assert decoder.feed(bytes(40) + HELI) == [ChannelFrame(HELI_US)] and decoder.pending_bytes == 0


# ---------------------------------------------------------------- fuzzing


def _check_accounting(frames: list[ChannelFrame], decoder: IbusDecoder) -> None:
    assert decoder.bytes_in == 32 * len(frames) + decoder.bytes_skipped + decoder.pending_bytes
    assert decoder.frames == len(frames)
    assert 0 <= decoder.pending_bytes <= 31


@FUZZ
@given(st.binary(max_size=1000), st.lists(st.integers(0, 1000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("checksum_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)


@FUZZ
@given(garbage, valid_frames, st.lists(st.integers(0, 200), max_size=6))
def test_resyncs_within_one_frame_after_garbage(junk, frame_bytes, cuts):
    frames, decoder = decode_all(split(junk + frame_bytes, cuts))
    assert hand_frame(list(frames[-1].channels_us)) == frame_bytes
    assert decoder.pending_bytes == 0
    _check_accounting(frames, decoder)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "repeat"]), st.integers(0, 500), st.integers(0, 255)),
    max_size=6,
)


@FUZZ
@given(
    st.lists(valid_frames, min_size=1, max_size=6).map(b"".join), MUTATIONS, st.lists(st.integers(0, 500), max_size=6)
)
def test_mutated_streams_never_raise_nor_deliver_a_bad_checksum(stream, mutations, cuts):
    mutated = mutate(stream, mutations, delete_len=lambda v: 1 + v % 40, repeat_len=lambda v: v % 40)
    frames, decoder = decode_all(split(mutated, cuts))
    for frame in frames:
        assert hand_frame(list(frame.channels_us)) in mutated
    assert decode_all([mutated])[0] == frames
    _check_accounting(frames, decoder)


@FUZZ
@given(st.lists(st.one_of(fourteen, eighteen), min_size=1, max_size=8), st.lists(st.integers(0, 300), max_size=8))
def test_a_clean_stream_decodes_completely(sent, cuts):
    stream = b"".join(encode_channels(ChannelFrame(tuple(channels))) for channels in sent)
    frames, decoder = decode_all(split(stream, cuts))
    assert frames == [ChannelFrame(tuple(channels)) for channels in sent]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_importing_the_codec_pulls_in_nothing_else_from_sim():
    expected = "['sim', 'sim.protocols', 'sim.protocols.ibus', 'sim.protocols.rc']"
    assert modules_imported_by("sim.protocols.ibus") == expected
