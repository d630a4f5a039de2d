"""Shipped configuration files by name, from any folder: ``--config seed-demo``, ``configs/seed-demo.toml``
as the README writes it, ``heli-sim configs``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from heli.errors import ConfigError
from sim.config import load_flight, load_heli
from sim.shipped import KINDS, configs_dir, shipped_files, shipped_path


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "sim", *args]  # -P: the installed package, not the working folder's


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder with no configs/ in it, as after a plain pip install."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_flight_file_by_its_short_name_or_its_readme_path_from_any_folder(elsewhere):
    by_name, by_path = load_flight("seed-demo"), load_flight("configs/seed-demo.toml")
    assert by_name == by_path
    assert by_name.flight.fleet == 5 and by_name.flight.heli == "trex450"
    assert load_flight("ardupilot/xcell60").fc.enabled


def test_a_helicopter_by_its_readme_path_from_any_folder(elsewhere):
    assert load_heli("configs/trex700.toml").params == load_heli("trex700").params


def test_a_file_of_your_own_comes_first(elsewhere):
    own = elsewhere / "configs"
    own.mkdir()
    (own / "seed-demo.toml").write_text("[flight]\nfleet = 2\n")
    assert load_flight("configs/seed-demo.toml").flight.fleet == 2
    assert load_flight("seed-demo").flight.fleet == 5  # the bare name is the shipped file


def test_a_missing_file_says_where_to_find_the_shipped_ones(elsewhere):
    with pytest.raises(ConfigError, match=r"nope: no such file, nor a shipped flight file .*heli-sim configs"):
        load_flight("nope")


@pytest.mark.parametrize("given", ["../configs/seed-demo", "/no/such/seed-demo.toml", "configs/../../etc/passwd"])
def test_nothing_outside_the_shipped_folder_is_found_by_name(elsewhere, given):
    assert shipped_path(given) == given


def test_every_shipped_file_has_a_kind_and_a_summary():
    files = shipped_files()
    assert {f.kind for f in files} == set(KINDS)
    assert all(f.summary for f in files)
    names = {f.name: f.kind for f in files}
    assert names["xcell60"] == "helicopter" and names["seed-demo"] == "flight file"
    assert names["autorotation/xcell60"] == "pilot script" and names["sweeps/roll-gain"] == "sweep"
    assert len(files) == len(list(configs_dir().rglob("*.toml")))


def test_configs_command_lists_them_as_json(elsewhere):
    result = subprocess.run(heli_sim("configs", "--json"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row["kind"] for row in json.loads(result.stdout)}
    assert listed == {f.name: f.kind for f in shipped_files()}
