"""Pololu Maestro compact protocol: commands built by hand from the user's guide, replies, round
trips, and the board-side decoder's resync behaviour on split, corrupt and random input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heli.errors import HeliSimError
from sim.protocols.maestro import (
    ERROR_SERIAL_PROTOCOL,
    REPLY_LENGTHS,
    GetErrors,
    GetMovingState,
    GetPosition,
    GoHome,
    MaestroCommandDecoder,
    ReplyError,
    SetAcceleration,
    SetMultipleTargets,
    SetSpeed,
    SetTarget,
    encode,
    encode_errors_reply,
    encode_get_errors,
    encode_get_moving_state,
    encode_get_position,
    encode_go_home,
    encode_moving_state_reply,
    encode_position_reply,
    encode_set_acceleration,
    encode_set_multiple_targets,
    encode_set_speed,
    encode_set_target,
    parse_errors_reply,
    parse_moving_state_reply,
    parse_position_reply,
)
from tests.codec_streams import feed_all, modules_imported_by, split

# deterministic: the same examples on every run, so a red test is reproducible
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
ROUND_TRIP = settings(max_examples=200, deadline=None, derandomize=True)

# ---------------------------------------------------------------- commands typed from the Maestro user's guide 5.c/5.e

HAND = [
    (bytes.fromhex("84 00 70 2E"), SetTarget(0, 6000)),  # 1500 us on channel 0 (guide 5.c)
    (bytes.fromhex("9F 02 03 00 00 70 2E"), SetMultipleTargets(3, (0, 6000))),  # ch 3 off, ch 4 1500 us (5.e)
    (bytes.fromhex("87 05 0C 01"), SetSpeed(5, 140)),  # speed 140 on channel 5 (5.e)
    (bytes.fromhex("89 02 7F 7F"), SetAcceleration(2, 0x3FFF)),
    (bytes.fromhex("90 05"), GetPosition(5)),
    (bytes.fromhex("93"), GetMovingState()),
    (bytes.fromhex("A1"), GetErrors()),
    (bytes.fromhex("A2"), GoHome()),
]
HAND_IDS = ["set-target", "set-multiple", "set-speed", "set-acceleration", "get-position", "moving", "errors", "home"]


# ---------------------------------------------------------------- references independent of sim.protocols


def hand_bytes(command) -> bytes:
    """A command laid out from the guide: command byte, then 7-bit data bytes, 14-bit values low 7 bits first."""

    def pair(value: int) -> list[int]:
        return [value % 128, value // 128]

    if isinstance(command, SetTarget):
        return bytes([0x84, command.channel, *pair(command.quarter_us)])
    if isinstance(command, SetMultipleTargets):
        data = [0x9F, len(command.quarter_us), command.first_channel]
        for target in command.quarter_us:
            data += pair(target)
        return bytes(data)
    if isinstance(command, SetSpeed):
        return bytes([0x87, command.channel, *pair(command.speed)])
    if isinstance(command, SetAcceleration):
        return bytes([0x89, command.channel, *pair(command.acceleration)])
    if isinstance(command, GetPosition):
        return bytes([0x90, command.channel])
    return bytes([{GetMovingState: 0x93, GetErrors: 0xA1, GoHome: 0xA2}[type(command)]])


def decode_all(chunks: list[bytes]) -> tuple[list, MaestroCommandDecoder]:
    decoder = MaestroCommandDecoder()
    return feed_all(decoder, chunks), decoder


# ---------------------------------------------------------------- strategies

channels = st.integers(0, 127)
values = st.integers(0, 0x3FFF)
commands = st.one_of(
    st.builds(SetTarget, channels, values),
    st.builds(SetMultipleTargets, channels, st.lists(values, min_size=1, max_size=24).map(tuple)),
    st.builds(SetSpeed, channels, values),
    st.builds(SetAcceleration, channels, values),
    st.builds(GetPosition, channels),
    st.just(GetMovingState()),
    st.just(GetErrors()),
    st.just(GoHome()),
)
valid_commands = commands.map(hand_bytes)
junk_pieces = st.one_of(st.binary(max_size=4), st.sampled_from([b"\x84", b"\x9f\x7f", b"\xaa\x0c", b"\xff"]))
cut_commands = valid_commands.filter(lambda data: len(data) > 1).flatmap(
    lambda data: st.integers(1, len(data) - 1).map(lambda kept: data[:kept])
)
garbage = st.one_of(st.binary(max_size=60), st.lists(junk_pieces, max_size=10).map(b"".join), cut_commands)


# ---------------------------------------------------------------- the guide's examples


@pytest.mark.parametrize(("wire", "command"), HAND, ids=HAND_IDS)
def test_hand_built_commands_decode_and_re_encode_exactly(wire, command):
    decoded, decoder = decode_all([wire])
    assert decoded == [command]
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0
    assert encode(command) == wire == hand_bytes(command)


def test_convenience_encoders():
    assert encode_set_target(0, 1500) == bytes.fromhex("84 00 70 2E")
    assert encode_set_multiple_targets(3, [0, 1500]) == bytes.fromhex("9F 02 03 00 00 70 2E")
    assert encode_set_speed(5, 140) == bytes.fromhex("87 05 0C 01")
    assert encode_set_acceleration(2, 0x3FFF) == bytes.fromhex("89 02 7F 7F")
    assert encode_get_position(5) == bytes.fromhex("90 05")
    assert (encode_get_moving_state(), encode_get_errors(), encode_go_home()) == (b"\x93", b"\xa1", b"\xa2")


def test_microseconds_properties():
    assert SetTarget(0, 6001).microseconds == 1500.25
    assert SetMultipleTargets(3, (0, 6000, 4000)).microseconds == (0.0, 1500.0, 1000.0)


def test_targets_round_to_the_nearest_quarter_microsecond():
    assert encode_set_target(1, 1500.1) == encode(SetTarget(1, 6000))  # 6000.4
    assert encode_set_target(1, 1500.2) == encode(SetTarget(1, 6001))  # 6000.8
    assert encode_set_target(1, 1500.125) == encode(SetTarget(1, 6000))  # 6000.5, half to even
    assert encode_set_target(1, 0) == bytes.fromhex("84 01 00 00")  # 0: stop the pulses
    assert encode_set_target(1, 4095.75) == bytes.fromhex("84 01 7F 7F")  # 16383, the largest target


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_set_target(0, -0.25),
        lambda: encode_set_target(0, 4096.0),
        lambda: encode_set_target(0, float("nan")),
        lambda: encode_set_target(128, 1500),
        lambda: encode_set_target(-1, 1500),
        lambda: encode_set_multiple_targets(0, []),
        lambda: encode_set_multiple_targets(0, [1500] * 128),
        lambda: encode_set_multiple_targets(128, [1500]),
        lambda: encode_set_multiple_targets(0, [1500, 5000]),
        lambda: encode_set_speed(0, 16384),
        lambda: encode_set_acceleration(0, -1),
        lambda: encode_get_position(200),
        lambda: encode_position_reply(65536),
        lambda: encode_errors_reply(-1),
    ],
)
def test_encoders_reject_what_the_wire_cannot_carry(call):
    with pytest.raises(ValueError):
        call()


def test_encode_rejects_a_non_command():
    with pytest.raises(TypeError):
        encode("84 00 70 2E")


@ROUND_TRIP
@given(commands)
def test_encode_matches_the_hand_layout_and_decodes_back(command):
    wire = encode(command)
    assert wire == hand_bytes(command)
    assert wire[0] >= 0x80 and all(byte < 0x80 for byte in wire[1:])
    assert decode_all([wire])[0] == [command]


@ROUND_TRIP
@given(channels, st.floats(0, 4095.75))
def test_set_target_is_within_an_eighth_of_a_microsecond(channel, microseconds):
    (command,) = decode_all([encode_set_target(channel, microseconds)])[0]
    assert command.channel == channel and abs(command.microseconds - microseconds) <= 0.125


# ---------------------------------------------------------------- replies (board -> simulator)


def test_replies():
    assert encode_position_reply(6000) == bytes.fromhex("70 17")  # 0x1770, low byte first
    assert parse_position_reply(bytes.fromhex("70 17")) == 6000
    assert encode_errors_reply(ERROR_SERIAL_PROTOCOL) == bytes.fromhex("10 00")
    assert parse_errors_reply(bytes.fromhex("00 01")) == 0x0100
    assert (encode_moving_state_reply(True), encode_moving_state_reply(False)) == (b"\x01", b"\x00")
    assert parse_moving_state_reply(b"\x01") is True and parse_moving_state_reply(b"\x00") is False
    assert REPLY_LENGTHS[GetPosition] == 2 and REPLY_LENGTHS[GetMovingState] == 1 and REPLY_LENGTHS[GetErrors] == 2
    assert len(REPLY_LENGTHS) == 3


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (parse_position_reply, b"\x70"),
        (parse_position_reply, b"\x70\x17\x00"),
        (parse_errors_reply, b""),
        (parse_moving_state_reply, b""),
        (parse_moving_state_reply, b"\x02"),
        (parse_moving_state_reply, b"\x00\x00"),
    ],
)
def test_reply_parsers_reject_wrong_replies(parse, data):
    with pytest.raises(ReplyError) as caught:
        parse(data)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, HeliSimError)


@ROUND_TRIP
@given(st.integers(0, 0xFFFF))
def test_two_byte_replies_round_trip(value):
    assert parse_position_reply(encode_position_reply(value)) == value
    assert parse_errors_reply(encode_errors_reply(value)) == value


# ---------------------------------------------------------------- board-side decoder: protocol errors and resync

STREAM = b"".join(wire for wire, _ in HAND)


def test_split_at_every_offset_gives_the_same_commands():
    whole, _ = decode_all([STREAM])
    assert whole == [command for _, command in HAND]
    for cut in range(len(STREAM) + 1):
        decoded, decoder = decode_all([STREAM[:cut], STREAM[cut:]])
        assert decoded == whole, cut
        assert decoder.pending_bytes == 0 and decoder.bytes_skipped == 0 and decoder.decode_errors == 0
    assert decode_all([STREAM[i : i + 1] for i in range(len(STREAM))])[0] == whole


def test_data_bytes_where_a_command_is_expected_count_once_then_resync():
    decoded, decoder = decode_all([b"\x00\x70\x2e" + HAND[0][0]])
    assert decoded == [SetTarget(0, 6000)]
    assert (decoder.decode_errors, decoder.bytes_skipped) == (1, 3)


def test_a_command_byte_interrupting_a_command_is_an_error_and_starts_afresh():
    decoded, decoder = decode_all([b"\x84\x00\x70" + HAND[0][0]])
    assert decoded == [SetTarget(0, 6000)]
    assert (decoder.decode_errors, decoder.bytes_skipped) == (1, 3)
    decoded, decoder = decode_all([b"\x9f\x02\x03\x00\x00\x70" + b"\xa1"])  # Set Multiple Targets one byte short
    assert decoded == [GetErrors()] and decoder.decode_errors == 1 and decoder.bytes_skipped == 6


@pytest.mark.parametrize("junk", [b"\xaa\x0c\x04\x00\x70\x2e", b"\xff\x00\x7f", b"\x80", b"\xa3\x01\x02"])
def test_unknown_command_bytes_are_errors(junk):
    decoded, decoder = decode_all([junk + HAND[0][0]])
    assert decoded == [SetTarget(0, 6000)]
    assert decoder.decode_errors == 1 and decoder.bytes_skipped == len(junk)


def test_set_multiple_targets_with_no_targets_is_an_error():
    decoded, decoder = decode_all([b"\x9f\x00\x03" + b"\xa1"])
    assert decoded == [GetErrors()] and (decoder.decode_errors, decoder.bytes_skipped) == (1, 3)


def test_unfinished_command_waits_for_its_last_byte():
    decoder = MaestroCommandDecoder()
    assert decoder.feed(b"\x84\x00\x70") == [] and decoder.pending_bytes == 3
    assert decoder.feed(b"\x2e") == [SetTarget(0, 6000)] and decoder.pending_bytes == 0
    assert decoder.feed(b"\x9f\x7f\x00" + bytes(253)) == [] and decoder.pending_bytes == 256
    assert decoder.feed(b"\x00") == [SetMultipleTargets(0, (0,) * 127)] and decoder.decode_errors == 0


def test_the_simulators_batch_then_ack_round():
    batch = b"".join(encode_set_target(channel, 1000 + 100 * channel) for channel in range(4)) + encode_get_errors()
    decoded, decoder = decode_all([batch])
    assert [type(command) for command in decoded] == [SetTarget] * 4 + [GetErrors]
    assert [command.microseconds for command in decoded[:4]] == [1000.0, 1100.0, 1200.0, 1300.0]
    assert decoder.decode_errors == 0  # the emulator would answer the Get Errors with 00 00


# ---------------------------------------------------------------- fuzzing


def _check_accounting(decoded: list, decoder: MaestroCommandDecoder) -> None:
    assert decoder.bytes_in == sum(len(encode(c)) for c in decoded) + decoder.bytes_skipped + decoder.pending_bytes
    assert decoder.frames == len(decoded)


@FUZZ
@given(st.binary(max_size=1000), st.lists(st.integers(0, 1000), max_size=10))
def test_feed_of_arbitrary_bytes_never_raises_and_does_not_depend_on_chunking(data, cuts):
    whole, whole_decoder = decode_all([data])
    chunked, decoder = decode_all(split(data, cuts))
    assert chunked == whole
    for counter in ("decode_errors", "bytes_in", "bytes_skipped", "pending_bytes"):
        assert getattr(decoder, counter) == getattr(whole_decoder, counter), counter
    _check_accounting(chunked, decoder)
    for command in chunked:
        assert encode(command) in data


@FUZZ
@given(garbage, valid_commands, st.lists(st.integers(0, 200), max_size=6))
def test_resyncs_at_the_next_command_after_garbage(junk, wire, cuts):
    decoded, decoder = decode_all(split(junk + wire, cuts))
    assert encode(decoded[-1]) == wire
    assert decoder.pending_bytes == 0
    _check_accounting(decoded, decoder)


@FUZZ
@given(st.lists(commands, min_size=1, max_size=10), st.lists(st.integers(0, 600), max_size=8))
def test_a_clean_stream_of_commands_decodes_completely(sent, cuts):
    stream = b"".join(encode(command) for command in sent)
    decoded, decoder = decode_all(split(stream, cuts))
    assert decoded == sent
    assert decoder.decode_errors == 0 and decoder.bytes_skipped == 0 and decoder.pending_bytes == 0


# ---------------------------------------------------------------- package boundary


def test_importing_the_codec_pulls_in_nothing_else_from_sim():
    expected = "['sim', 'sim.protocols', 'sim.protocols.maestro', 'sim.protocols.rc']"  # rc: the shared field check
    assert modules_imported_by("sim.protocols.maestro") == expected
