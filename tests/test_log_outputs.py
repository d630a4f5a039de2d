"""Output files named on the command line (issue 11, section 5): checked at the start (a missing or
read-only folder, a folder where a file is expected, a dangling symlink: one line, exit 2, nothing
done), and a failure to write them at the end (a full device, a folder removed mid-flight) still
prints the summary table first, then one line and exit status 2."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import check_output_path as reexported
from sim.cli.output import OutputError, check_output_path, write_output
from sim.errors import ConfigError
from tests.helpers import StderrLines, running

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 120
ENOSPC = os.strerror(28)
ENOENT = os.strerror(2)


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(heli_sim(*args), cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def assert_table_then_one_line(result: subprocess.CompletedProcess, command: str, line: str) -> None:
    """Exit 2, no traceback, the summary table on stdout, and ``line`` the last line on stderr."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == f"heli-sim {command}: error: {line}"


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("log") / "flight.hslog"
    flown = run("fly", "--headless", "--quiet", "--no-ports", "--duration", "0.3", "--log", str(path))
    assert flown.returncode == 0, flown.stderr
    return path


# --- at the end: the table first, then one line


def test_stats_json_on_a_full_device_keeps_the_table(tmp_path):
    result = run("fly", "--headless", "--no-ports", "--duration", "0.3", "--stats-json", "/dev/full")
    assert_table_then_one_line(result, "fly", f"--stats-json /dev/full: cannot write it: {ENOSPC}")
    assert "heli-sim: 0.30 s flown" in result.stdout and "vehicle " in result.stdout


def test_stats_json_whose_folder_is_removed_mid_flight_keeps_the_table(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    stats = folder / "run.json"
    with running(heli_sim("fly", "--headless", "--no-ports", "--duration", "2", "--stats-json", str(stats)),
                 cwd=ROOT) as proc:  # fmt: skip
        lines = StderrLines(proc)
        lines.wait_for("heli-sim: flying")  # checked at the start: the folder was there
        shutil.rmtree(folder)
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, out.decode(), lines.pending.decode() + err.decode()
    )
    assert_table_then_one_line(result, "fly", f"--stats-json {stats}: cannot write it: {ENOENT}")
    assert "heli-sim: 2.00 s flown" in result.stdout and not folder.exists()


def test_replay_and_bench_outputs_on_a_full_device_keep_their_figures(small_log):
    result = run("replay", "--headless", str(small_log), "--stats-json", "/dev/full")
    assert_table_then_one_line(result, "replay", f"--stats-json /dev/full: cannot write it: {ENOSPC}")
    assert "identical to the log" in result.stdout
    result = run("bench", "protocols", "--quick", "--json", "/dev/full")
    assert_table_then_one_line(result, "bench", f"--json /dev/full: cannot write it: {ENOSPC}")
    assert "decode_frames_per_s" in result.stdout


def test_a_device_or_an_existing_file_is_still_an_output(tmp_path, small_log):
    result = run("replay", "--headless", "--quiet", str(small_log), "--stats-json", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replay"]["identical"] is True
    existing = tmp_path / "replay.json"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    result = run("replay", "--headless", "--quiet", str(small_log), "--stats-json", str(existing))
    assert result.returncode == 0, result.stderr
    assert json.loads(existing.read_text())["replay"]["identical"] is True
    assert existing.stat().st_mode & 0o777 == 0o640  # replaced, keeping its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.json"]  # no temporary file left behind


# --- at the start: refused before any work


@pytest.mark.parametrize(
    "command",
    [
        ["fly", "--headless", "--no-ports", "--duration", "0.3", "--stats-json"],
        ["fly", "--no-ports", "--duration", "0.3", "--screenshot"],
        ["fly", "--headless", "--no-ports", "--duration", "0.3", "--log"],
        ["replay", "--headless", "LOG", "--stats-json"],
        ["bench", "protocols", "--quick", "--json"],
        ["bench", "step", "--quick", "--plot"],
    ],
    ids=lambda command: " ".join(c for c in command if c.startswith("--") or c in ("fly", "replay", "bench")),
)
def test_a_dangling_symlink_is_refused_at_the_start_never_written_through(tmp_path, small_log, command):
    if command[-1] == "--plot" and importlib.util.find_spec("matplotlib") is None:
        pytest.skip("--plot needs matplotlib, which is not installed here")
    target = tmp_path / "elsewhere" / "target"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "out"
    link.symlink_to(target)  # dangling: target does not exist
    args = [str(small_log) if part == "LOG" else part for part in command]
    result = run(*args, str(link))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        f"heli-sim {command[0]}: error: {command[-1]} {link}: a symlink to {target}, which does not exist; "
        "name a real file or folder"
    ]
    assert result.stdout == "" and not target.exists()  # refused before anything ran or was written


def test_output_paths_checked_at_the_start(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder, expected a file name"):
        check_output_path(str(folder), "--stats-json")
    with pytest.raises(ConfigError, match=r"folder .*/missing does not exist"):
        check_output_path(str(tmp_path / "missing" / "run.json"), "--stats-json")
    with pytest.raises(ConfigError, match="already exists; choose a new name"):
        check_output_path(str(folder), "--log", new_directory=True)
    with pytest.raises(ConfigError, match=r"no such directory .*/missing; expected a new name in an existing one"):
        check_output_path(str(tmp_path / "missing" / "f.hslog"), "--log", new_directory=True)
    check_output_path(str(tmp_path / "new.json"), "--stats-json")  # fine: a new file in a folder that exists
    check_output_path("/dev/stdout", "--stats-json")
    check_output_path(None, "--stats-json")
    assert reexported is check_output_path  # the subcommands import it from sim.cli


@pytest.mark.parametrize("option", ["--stats-json", "--log"])
def test_names_the_system_cannot_take_are_refused_at_the_start_in_one_line(tmp_path, option):
    new_directory = option == "--log"
    long_name = "a" * 300
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    cases = [
        ("", "an empty name; expected a file name"),
        (str(tmp_path / long_name), "longer than the 255 bytes the folder allows"),
        (str(tmp_path / long_name / "x"), "cannot be written: File name too long"),
        (str(tmp_path / "loop1" / "x"), "cannot be written: Symlink loop"),
        (str(tmp_path / "nul\x00byte"), "cannot be written: embedded null byte"),
    ]
    for path, reason in cases:
        with pytest.raises(ConfigError, match=re.escape(reason)):
            check_output_path(path, option, new_directory=new_directory)


def test_write_output_leaves_no_half_file(tmp_path):
    with pytest.raises(OutputError, match=f"--json {tmp_path}/gone/out.json: cannot write it: {ENOENT}"):
        write_output(str(tmp_path / "gone" / "out.json"), "{}", "--json")
    with pytest.raises(OutputError, match=f"--json /dev/full: cannot write it: {ENOSPC}"):
        write_output("/dev/full", "x" * 100_000, "--json")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=f"--json {fifo}: cannot write it: "):  # nobody reads it: no wait
        write_output(str(fifo), "{}", "--json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def test_a_flight_that_cannot_open_its_ports_leaves_no_log_behind(tmp_path):
    """The log is opened before the ports; a port that cannot be opened ends the start, and the log of
    a flight that never flew is discarded (no empty log folder to trip over)."""
    log = tmp_path / "flight-log"
    result = run("fly", "--headless", "--duration", "1", "--rc", str(tmp_path / "no-such-radio"), "--log", str(log))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no such port" in result.stderr
    assert not log.exists()
