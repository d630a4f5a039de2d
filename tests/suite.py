"""``make test``'s pytest run: the whole suite, in two streams side by side.

Most tests fly in real time or drive real processes and wait on them; the rest only compute
(codecs, physics, configuration schemas, bad input refused in a forked process) and never judge
time.  Those (``compute``: the modules in ``COMPUTE_MODULES``, except any test marked
``realtime``) run in a second pytest at a lower priority (nice 10, as heli-sim's device emulators),
on the CPU the first leaves idle while it waits; the real-time tests then see a busy machine,
which they are written to hold on.  Not nice 19: beside other work at nice 10 (a loaded CI
machine) a stream at 19 gets a few percent of a core and takes an hour.  Plain ``pytest`` still
runs everything in one stream.

Exit status: 0 when both streams pass; otherwise the first failing one's.  Ctrl-C ends both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPUTE_NICENESS = 10

# modules whose tests only compute: no real-time flight, nothing judged against the clock
COMPUTE_MODULES = (
    "test_autorotation.py",
    "test_bench_limits.py",
    "test_bench_startup.py",
    "test_cli_input.py",
    "test_codec_payloads.py",
    "test_compiled.py",
    "test_config.py",
    "test_config_limits.py",
    "test_config_schema.py",
    "test_control.py",
    "test_layouts.py",
    "test_crsf.py",
    "test_export.py",
    "test_shards.py",
    "test_shipped.py",
    "test_takeover.py",
    "test_fc_wiring.py",
    "test_hsf.py",
    "test_ibus.py",
    "test_joystick.py",
    "test_log_validation.py",
    "test_loop.py",
    "test_maestro.py",
    "test_msp.py",
    "test_physics.py",
    "test_pilots_rc.py",
    "test_port_lock.py",
    "test_purity.py",
    "test_readme.py",
    "test_reference.py",
    "test_sbus.py",
    "test_stats.py",
    "test_sweep.py",
    "test_view_render.py",
    "test_wind.py",
)


def main(extra: list[str]) -> int:
    # the compiled kernels built first, once (cached on disk after), so no test waits for the compiler
    subprocess.run([sys.executable, "-P", "-m", "sim.compiled"], cwd=ROOT, check=True)
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra]
    compute = [f"tests/{name}" for name in COMPUTE_MODULES]
    with tempfile.TemporaryFile() as background_output:
        background = subprocess.Popen(
            ["nice", "-n", str(COMPUTE_NICENESS), *pytest, "-q", "-m", "compute and not realtime", *compute],
            cwd=ROOT,
            stdout=background_output,
            stderr=subprocess.STDOUT,
        )
        try:
            foreground = subprocess.run([*pytest, "-q", "-m", "not compute or realtime"], cwd=ROOT).returncode
            background_status = background.wait()
        finally:
            if background.poll() is None:
                background.terminate()
                background.wait()
        background_output.seek(0)
        sys.stdout.write(f"\n--- the compute-only tests (nice {COMPUTE_NICENESS}, beside the rest) ---\n")
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), background_output.read())
    return foreground or background_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
