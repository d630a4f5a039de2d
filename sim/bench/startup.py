"""``heli-sim bench startup``: how long heli-sim takes from a command to its first tick, against the
time the same interpreter takes to import numpy and pyserial, measured side by side in one run.

Each round starts, one after another: ``python -c "import numpy, serial"`` (timed from the spawn to
its exit), the default headless flight (its own ports, each with an emulator process on the far
end) and the same flight with ``--no-ports``; the flights report ``startup_s``, from their process's
start to their first tick (``--stats-json``).  Medians of the rounds; the ratio is the median of each
round's own ratio, as the machine's speed moves between rounds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.bench.common import Result

__all__ = ["bench_startup"]

_TIMEOUT_S = 60.0
_FLIGHT_S = "0.05"


def _import_s() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", "import numpy, serial"], check=True, timeout=_TIMEOUT_S)
    return time.perf_counter() - start


def _first_tick_s(folder: Path, *extra: str) -> float:
    stats = folder / "startup.json"
    command = [sys.executable, "-P", "-m", "sim", "fly", "--headless", "--duration", _FLIGHT_S, *extra,
               "--stats-json", str(stats)]  # fmt: skip
    subprocess.run(command, check=True, timeout=_TIMEOUT_S, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    startup = json.loads(stats.read_text())["startup_s"]
    if startup is None:
        raise RuntimeError("this system does not say when a process started (startup_s is null)")
    return float(startup)


def bench_startup(quick: bool = False) -> list[Result]:
    """Medians of the rounds: the import baseline, the first tick with the default ports and without."""
    rounds = 3 if quick else 7
    imports, flights, bare = [], [], []
    with tempfile.TemporaryDirectory(prefix="heli-sim-startup-") as folder:
        _first_tick_s(Path(folder), "--no-ports")  # once untimed: the first run reads every file from disk
        for _ in range(rounds):
            imports.append(_import_s())
            flights.append(_first_tick_s(Path(folder)))
            bare.append(_first_tick_s(Path(folder), "--no-ports"))
    ratio = statistics.median(f / i for f, i in zip(flights, imports, strict=True))
    return [
        Result("startup", "import_numpy_serial_s", round(statistics.median(imports), 3), "s"),
        Result("startup", "first_tick_s", round(statistics.median(flights), 3), "s"),
        Result("startup", "first_tick_no_ports_s", round(statistics.median(bare), 3), "s"),
        Result("startup", "first_tick_vs_import", round(ratio, 2), "x"),
    ]
