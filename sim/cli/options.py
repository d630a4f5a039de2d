"""Command-line options checked by the same schema as the config files' keys.

``schema_type(FlightSettings, "physics_dt_s")`` is an argparse ``type=``: it parses the option's
text as the field's type and checks it against the field's metadata (range, reason, choices,
text length), so ``--physics-dt 1e-6`` and ``physics_dt_s = 1e-6`` in a flight file are refused
by the same rule, with the same words.  argparse turns the refusal into one line naming the
option: ``heli-sim fly: error: argument --physics-dt: 1e-06: out of range, expected ...``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from heli.errors import ConfigError
from sim.config import CHANNEL_FUNCTIONS, ChannelMap, FlightSettings, PortSpec
from sim.dataclass_io import build, parse_text, show

__all__ = ["add_heli_argument", "channel_map_type", "device_pilot_type", "folder_type", "schema_type"]


def schema_type(cls: type, name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for field ``name`` of dataclass ``cls``."""

    def parse(text: str) -> Any:
        try:
            return parse_text(cls, name, text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = name
    return parse


def add_heli_argument(parser: argparse.ArgumentParser) -> None:
    """The required ``--heli NAME`` of a command about one helicopter (``trim``, ``margins``)."""
    parser.add_argument(
        "--heli",
        required=True,
        type=schema_type(FlightSettings, "heli"),
        metavar="NAME",
        help="xcell60, trex450, trex700 or a .toml path",
    )


def channel_map_type(text: str) -> ChannelMap:
    """An argparse ``type=`` for ``--channel-map 1,2,3,4,5,6[,7]``: the ``[rc]`` table's channel schema."""
    numbers = text.split(",")
    if len(numbers) not in (len(CHANNEL_FUNCTIONS) - 1, len(CHANNEL_FUNCTIONS)):
        raise argparse.ArgumentTypeError(
            f"{show(text)}: expected six or seven channel numbers, roll,pitch,collective,yaw,arm,mode[,throttle_hold],"
            " e.g. 1,2,3,4,5,6 or 1,2,3,4,5,6,7"
        )
    table = {}
    for function, number in zip(CHANNEL_FUNCTIONS, numbers, strict=False):
        try:
            table[function] = parse_text(ChannelMap, function, number.strip())
        except ConfigError as error:
            raise argparse.ArgumentTypeError(f"{function} channel {error}") from None
    try:
        return build(ChannelMap, table)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(f"{show(text)}: {error}") from None


def device_pilot_type(text: str) -> str:
    """An argparse ``type=`` for an emulated transmitter's pilot: the ``[flight]`` pilot's schema, or neutral."""
    return text if text == "neutral" else schema_type(FlightSettings, "pilot")(text)


def folder_type(text: str) -> str:
    """An argparse ``type=`` for an existing folder: a path by the port URL's text schema, then ``stat``."""
    path = schema_type(PortSpec, "url")(text)  # the schema of a path: length, no control characters
    try:
        is_folder = os.path.isdir(path)
    except (OSError, ValueError):
        is_folder = False
    if not is_folder:
        raise argparse.ArgumentTypeError(f"{show(text)}: not an existing folder")
    return path
