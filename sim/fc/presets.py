"""The shipped wiring for each helicopter and firmware: ``configs/ardupilot/NAME.toml``.

Each is a whole flight file for that helicopter with that firmware (its ``[fc]`` table: outputs,
radio channels, sensors; and the physics step matching the firmware's frames), next to the
firmware's parameter file (``NAME.parm``) that sets the firmware up for the same helicopter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.config import configs_dir, load_toml
from sim.fc.firmwares import FIRMWARES

__all__ = ["fc_preset", "fc_preset_path"]


def fc_preset_path(heli: str, firmware: str) -> Path | None:
    """The preset flight file for a shipped helicopter's name (None for a path or an unknown name)."""
    folder = FIRMWARES[firmware].preset_folder if firmware in FIRMWARES else ""
    if not folder or "/" in heli or heli.endswith(".toml"):
        return None
    path = configs_dir() / folder / f"{heli}.toml"
    return path if path.is_file() else None


def fc_preset(heli: str, firmware: str) -> dict[str, Any] | None:
    """The preset flight file's tables, or None where there is none."""
    path = fc_preset_path(heli, firmware)
    return None if path is None else load_toml(path, what="flight file")
