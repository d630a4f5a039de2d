"""``heli`` stays pure: numpy and the standard library's maths, nothing with time, I/O or pixels."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HELI = Path(__file__).resolve().parent.parent / "heli"
FORBIDDEN = {"serial", "pygame", "threading", "sim", "socket", "time", "random", "logging", "tomllib", "os", "asyncio"}


def test_importing_heli_pulls_in_no_io():
    code = (
        "import sys\n"
        "import heli, heli.control, heli.dynamics, heli.ground, heli.initial, heli.mixer, heli.trim\n"
        "print(' '.join(m for m in ('serial', 'pygame', 'threading', 'sim', 'socket', 'asyncio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_heli_sources_import_only_pure_modules():
    for path in sorted(HELI.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
