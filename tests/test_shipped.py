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


def test_a_link_you_name_is_yours_even_broken(elsewhere):
    (elsewhere / "configs").mkdir()
    (elsewhere / "configs" / "seed-demo.toml").symlink_to(elsewhere / "nowhere.toml")
    with pytest.raises(ConfigError, match="no such file"):
        load_flight("configs/seed-demo.toml")  # not the shipped seed-demo in its place


def test_your_own_copy_comes_before_the_shipped_file_of_that_name(elsewhere):
    (elsewhere / "seed-demo.toml").write_text("[flight]\nfleet = 3\n")
    assert load_flight("seed-demo").flight.fleet == 3
    (elsewhere / "my-flight.toml").write_text("[flight]\nfleet = 2\n")
    assert load_flight("my-flight").flight.fleet == 2  # .toml added for your own files too


@pytest.mark.parametrize("name", ["a" * 252, "configs/" + "b" * 300, "ardupilot/" + "c" * 252])
def test_names_too_long_for_the_file_system_are_one_line_errors(elsewhere, name):
    with pytest.raises(ConfigError, match=r"name too long|no such file|not a valid"):
        load_flight(name)


def test_only_this_projects_own_tree_is_taken_for_the_source_checkout(tmp_path):
    from sim.shipped import _is_this_project

    assert _is_this_project(configs_dir().parent) or configs_dir().name == "_configs"
    assert not _is_this_project(tmp_path)  # e.g. site-packages, where another package left a configs/
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert not _is_this_project(tmp_path)


def test_a_stray_unreadable_file_is_listed_as_such_not_a_crash(tmp_path, monkeypatch):
    import sim.shipped

    (tmp_path / "good.toml").write_text("# a flight\n[flight]\nfleet = 2\n")
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\n[flight]\n")
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "nowhere")
    monkeypatch.setattr(sim.shipped, "configs_dir", lambda: tmp_path)
    listed = {f.name: f.summary for f in shipped_files()}
    assert listed["good"] == "a flight"
    assert listed["latin1"].startswith("(unreadable") and listed["dangling"].startswith("(unreadable")


@pytest.mark.parametrize(
    ("name", "says"),
    [("xcell60", "a helicopter file ([main_rotor] table), not a flight file: give it to --heli"),
     ("sweeps/roll-gain", "a sweep file ([sweep] table), not a flight file: run it with heli-sim sweep"),
     ("autorotation/xcell60", "a pilot script ([[at]] tables), not a flight file")],
)  # fmt: skip
def test_another_kind_of_file_given_as_a_flight_file_names_the_right_option(elsewhere, name, says):
    with pytest.raises(ConfigError) as refused:
        load_flight(name)
    assert says in str(refused.value)


@pytest.mark.parametrize("name", ["seed-demo", "xcell60", "autorotation/xcell60"])
def test_another_kind_of_file_given_as_a_sweep_says_so(elsewhere, name):
    from sim.sweep.plan import read_sweep

    with pytest.raises(ConfigError, match="not a sweep file"):
        read_sweep(name)
