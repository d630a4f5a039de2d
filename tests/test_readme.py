"""The README stays true: its two commands, its TOML examples and its contract keys."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from heli.trim import TrimResult
from sim.config import FlightConfig
from sim.dataclass_io import build
from sim.pilots import ScriptPilot
from sim.rc import CHANNEL_COUNT
from sim.sweep.plan import read_sweep
from tests.conftest import heli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```\w*\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make fly", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^fly:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_flight_file_example_is_valid():
    (example,) = [block for block in code_blocks("toml") if "[flight]" in block and "[[faults]]" not in block
                  and "[sweep]" not in block]  # fmt: skip
    config = build(FlightConfig, tomllib.loads(example), source="README")
    assert config.flight.heli == "trex450"


def test_readme_sweep_example_is_a_sweep_of_the_flights_it_says(tmp_path):
    (example,) = [block for block in code_blocks("toml") if "[sweep]" in block]
    (tmp_path / "base.toml").write_text("")
    (tmp_path / "sweep.toml").write_text(example)
    plan = read_sweep(tmp_path / "sweep.toml")
    assert plan.flights == 90 and plan.parameters[-1] == "environment.wind_north_m_s"


def test_readme_ports_example_is_valid():
    (example,) = [block for block in code_blocks("toml") if "[[ports]]" in block]
    config = build(FlightConfig, tomllib.loads(example), source="README")
    (port,) = config.ports
    assert port.role == "link" and port.device_latency_ms == 100.0


def test_readme_faults_example_is_valid():
    blocks = [block for block in code_blocks("toml") if "[[faults]]" in block]
    (air,) = [block for block in blocks if "[environment]" in block]
    (faults,) = [block for block in blocks if "[environment]" not in block]
    config = build(FlightConfig, tomllib.loads(faults), source="README")
    assert [f.kind for f in config.faults] == ["byte_loss", "rc_silence", "unplug"]
    config = build(FlightConfig, tomllib.loads(air), source="README")
    assert [f.kind for f in config.faults] == ["gust"] and config.environment.turbulence == "moderate"


def test_readme_describes_every_fault_kind():
    from sim.config import FAULT_KINDS

    section = README[README.index("## Faults") : README.index("## Configuration")]
    for kind in FAULT_KINDS:
        assert f"| `{kind}` |" in section, kind


def test_readme_pilot_script_example_is_valid(tmp_path):
    (example,) = [block for block in code_blocks("toml") if "[[at]]" in block]
    script = tmp_path / "script.toml"
    script.write_text(example)
    frames = ScriptPilot(script, FlightConfig().rc, 1).channels(8.0, None)
    assert frames.shape == (1, CHANNEL_COUNT) and frames[0, 2] == 1740.0


def test_readme_lists_the_trim_contract_keys():
    keys = heli("xcell60").trim.contract().keys()
    for key in keys:
        assert f"`{key}`" in README
    assert set(keys) < {f.name for f in TrimResult.__dataclass_fields__.values()}


def test_readme_joystick_example_is_valid():
    (example,) = [block for block in code_blocks("toml") if "[joystick]" in block]
    config = build(FlightConfig, tomllib.loads(example), source="README")
    assert config.joystick.collective_range == (-0.8, 0.1, 0.9)
    layout = config.joystick.layout("any joystick")
    assert (layout.preset, layout.mode_axis, layout.arm_axis) == ("edgetx", 6, 4)


def test_readme_lists_every_key_of_the_view():
    from sim.view.render import HELP_KEYS

    table = README[README.index("## The view") : README.index("## The lesson")]
    for key, _does in HELP_KEYS:
        for part in key.replace("/", " ").split():
            assert part.lower() in table.lower(), f"key {key!r} missing from the README's view section"


def test_readme_links_to_files_that_exist():
    for path in re.findall(r"\]\(((?:docs|configs)/[^)#]+)\)", README):
        assert (ROOT / path).is_file(), path
    for doc in (ROOT / "docs").glob("*.md"):  # and the docs' own links to the code
        for target in re.findall(r"`((?:sim|heli)/[\w/]+\.py)`", doc.read_text()):
            assert (ROOT / target).is_file(), f"{doc.name}: {target}"


def test_readme_images_exist():
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / path).is_file(), path


def test_nothing_shipped_points_outside_the_project():
    """Users have only this repository: no code, config or doc cites a file beside it."""
    # spelled in parts so that this file does not find itself: the folder beside the project, and the
    # reference notes kept there (cite the public specifications and sources themselves)
    beside = ("../" + "shared", "protocols" + ".md", "xcell60" + ".md", "DESIGN" + ".md", "STYLE" + ".md")
    outside = []
    for folder in ("heli", "sim", "configs", "docs", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".toml", ".md"} and any(b in path.read_text(errors="replace") for b in beside):
                outside.append(str(path.relative_to(ROOT)))
    for path in (ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "Makefile"):
        if any(b in path.read_text() for b in beside):
            outside.append(path.name)
    assert outside == []
