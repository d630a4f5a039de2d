"""The configuration reference is generated from the config dataclasses: the committed
``docs/config.md`` must be exactly what the code generates now."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from sim.config import FlightConfig
from sim.dataclass_io import build
from sim.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_reference_matches_the_code():
    committed = (ROOT / "docs" / "config.md").read_text()
    assert committed == render(), "docs/config.md is out of date: run `make docs` and commit it"


def test_every_flight_key_in_the_reference_is_accepted_by_the_loader():
    text = render()
    flight = text[text.index("### `[flight]`") : text.index("### `[rc]`")]
    keys = [line.split("`")[1] for line in flight.splitlines() if line.startswith("| `")]
    assert keys == [f.name for f in dataclasses.fields(FlightConfig().flight)]
    defaults = {line.split("`")[1]: line.split("|")[3].strip().strip("`") for line in flight.splitlines()
                if line.startswith("| `")}  # fmt: skip
    table = tomllib.loads("[flight]\n" + "\n".join(f"{key} = {value}" for key, value in defaults.items()))
    assert build(FlightConfig, table, source="reference").flight == FlightConfig().flight
