"""No code runs from where the user happens to stand: every process heli-sim starts (device
emulators, the view, the CPU helper, multiprocessing's resource tracker) runs in safe-path mode,
so modules named like the ones it imports (json, numpy, serial, selectors, tomllib), left in the
working directory, are never imported.  Real processes, the installed command and ``python -m sim``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHADOWED = ("json", "numpy", "serial", "selectors", "tomllib")
INSTALLED = Path(sys.executable).parent / "heli-sim"

# a module that, imported, leaves a marker naming itself and the process that imported it
_MARKER_MODULE = """\
import os as _os
import sys as _sys
with open(_os.path.join({markers!r}, __name__ + "." + str(_os.getpid())), "w") as _f:
    _f.write(" ".join(_sys.argv))
"""


@pytest.fixture
def trap(tmp_path: Path) -> tuple[Path, Path]:
    """A working directory holding a json.py, numpy.py, ... that leave a marker when imported,
    and the folder the markers go to."""
    cwd, markers = tmp_path / "here", tmp_path / "markers"
    cwd.mkdir()
    markers.mkdir()
    for name in SHADOWED:
        (cwd / f"{name}.py").write_text(_MARKER_MODULE.format(markers=str(markers)))
    return cwd, markers


def imported(markers: Path) -> list[str]:
    """What was imported from the working directory: "module.pid: argv"."""
    return sorted(f"{path.name}: {path.read_text()}" for path in markers.iterdir())


def fly(
    command: list[str], cwd: Path, *args: str, env: dict | None = None, duration_s: float = 1
) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONSAFEPATH"}
    argv = [*command, "fly", "--duration", str(duration_s), *args]
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=120, env={**environment, **(env or {})}
    )


def test_the_trap_springs_where_the_working_directory_is_on_sys_path(trap):
    cwd, markers = trap
    subprocess.run([sys.executable, "-c", "import selectors"], cwd=cwd, check=True, timeout=60)
    assert [line.split(".")[0] for line in imported(markers)] == ["selectors"]


@pytest.mark.parametrize(
    "command", [[str(INSTALLED)], [sys.executable, "-m", "sim"]], ids=["installed command", "python -m sim"]
)
def test_a_headless_flight_with_virtual_ports_imports_nothing_from_the_working_directory(trap, command):
    cwd, markers = trap
    result = fly(command, cwd, "--headless", "--stats-json", str(cwd / "run.json"))
    assert result.returncode == 0, result.stderr
    assert imported(markers) == []
    ports = json.loads((cwd / "run.json").read_text())["ports"]
    # the default virtual ports each had an emulator, which served and reported back
    assert {p["role"] for p in ports} >= {"rc-in", "servo", "telemetry"}
    assert all(p["far_end"] for p in ports)


@pytest.mark.parametrize(
    "command", [[str(INSTALLED)], [sys.executable, "-m", "sim"]], ids=["installed command", "python -m sim"]
)
def test_the_view_its_resource_trackers_and_the_cpu_helper_import_nothing_from_the_working_directory(trap, command):
    cwd, markers = trap
    shot = cwd / "view.png"
    # P starts the CPU helper process, then the window closes, which ends the flight: the view, at
    # the lowest priority, may draw seldom on a busy machine; the flight waits for it (60 s bound)
    env = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "HELI_SIM_VIEW_SCRIPT": "0.1:p,0.2:quit"}
    run_json = cwd / "run.json"
    result = fly(command, cwd, "--screenshot", str(shot), "--stats-json", str(run_json), env=env, duration_s=60)
    assert result.returncode == 0, result.stderr
    assert imported(markers) == []
    events = json.loads(run_json.read_text())["events"]
    assert shot.stat().st_size > 0  # the view ran (and, with it, a resource tracker on each side)
    assert {"kind": "cpu_helper", "detail": "process"}.items() <= next(
        e for e in events if e["kind"] == "cpu_helper"
    ).items()  # the P key started the CPU helper process


def test_a_controller_in_the_working_directory_is_still_found_when_named(trap):
    cwd, markers = trap
    (cwd / "mine.py").write_text("from heli.control import control\n")
    result = fly([str(INSTALLED)], cwd, "--headless", "--quiet", "--controller", "mine:control")
    assert result.returncode == 0, result.stderr
    assert imported(markers) == []
