"""The flight controller's gains, rates, limits and governor as MAVLink parameters.

Every field of ``heli.control.ControllerParams`` is a parameter a ground station can list, read
and set, under a short id (MAVLink ids are at most 16 characters) in ``PARAM_IDS``, with the
field's unit and range from its declaration.  Values travel as MAVLink REAL32: what a ground
station reads is the float32 nearest the value, and what it sets is taken as it arrives.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from heli.control import ControllerParams

__all__ = ["PARAM_IDS", "ParamInfo", "ParamTable"]

# MAVLink id -> ControllerParams field, in the order a ground station lists them
PARAM_IDS = {
    "RATE_RP_MAX": "roll_pitch_rate_max_deg_s",
    "RATE_YAW_MAX": "yaw_rate_max_deg_s",
    "RATE_EXPO": "rate_expo",
    "RLL_P": "roll_p_s",
    "RLL_I": "roll_i_per_s",
    "RLL_D": "roll_d_s2",
    "RLL_FF": "roll_f_s",
    "PIT_P": "pitch_p_s",
    "PIT_I": "pitch_i_per_s",
    "PIT_D": "pitch_d_s2",
    "PIT_FF": "pitch_f_s",
    "YAW_P": "yaw_p_s",
    "YAW_I": "yaw_i_per_s",
    "YAW_D": "yaw_d_s2",
    "YAW_FF": "yaw_f_s",
    "CYC_I_LIM": "cyclic_i_limit_deg",
    "YAW_I_LIM": "yaw_i_limit_deg",
    "D_CUTOFF": "d_cutoff_hz",
    "CYC_MAX": "cyclic_max_deg",
    "COLL_MAX": "collective_max_deg",
    "PRECOMP_BASE": "yaw_precomp_base_deg",
    "PRECOMP_GAIN": "yaw_precomp_gain_deg",
    "PRECOMP_COLL": "yaw_precomp_collective_weight",
    "PRECOMP_CYC": "yaw_precomp_cyclic_weight",
    "PRECOMP_CUTOFF": "yaw_precomp_cutoff_hz",
    "PRECOMP_REL": "yaw_precomp_release_s",
    "LEVEL_GAIN": "level_gain_per_s",
    "ANGLE_MAX": "max_angle_deg",
    "TRIM_ROLL": "level_trim_roll_deg",
    "TRIM_PITCH": "level_trim_pitch_deg",
    "CLIMB_P": "climb_p_deg_per_m_s",
    "CLIMB_I": "climb_i_deg_per_m",
    "CLIMB_I_LIM": "climb_i_limit_deg",
    "RESC_CLIMB": "rescue_climb_m_s",
    "RESC_CLIMB_T": "rescue_climb_s",
    "RESC_PULLUP": "rescue_pullup_collective_deg",
    "FS_LEVEL_T": "failsafe_level_s",
    "FS_DESCENT": "failsafe_descent_m_s",
    "FS_LANDED_T": "failsafe_landed_s",
    "GOV_RPM": "governor_headspeed_rpm",
    "GOV_P": "governor_p",
    "GOV_I": "governor_i_per_s",
    "GOV_FF": "governor_ff",
    "GOV_SPOOLUP_T": "spoolup_time_s",
}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter: its id, the field it sets, unit and range (``exclusive_low``: ``> low``)."""

    id: str
    field: str
    unit: str
    low: float
    high: float
    exclusive_low: bool

    def refusal(self, value: float) -> str | None:
        """Why ``value`` cannot be set (None: it can), in one line."""
        if not math.isfinite(value):
            return f"{self.id} = {value!r}: expected a finite number"
        too_low = value <= self.low if self.exclusive_low else value < self.low
        if too_low or value > self.high:
            bound = ">" if self.exclusive_low else ">="
            return f"{self.id} = {value:g}: expected {bound} {self.low:g} and <= {self.high:g} {self.unit}"
        return None


class ParamTable:
    """The parameters, by id and by index, over a ``ControllerParams``."""

    def __init__(self) -> None:
        fields = {f.name: f for f in dataclasses.fields(ControllerParams)}
        self.infos: list[ParamInfo] = []
        for param_id, name in PARAM_IDS.items():
            meta = fields[name].metadata
            exclusive = meta.get("gt") is not None
            low = meta["gt"] if exclusive else meta["ge"]
            self.infos.append(ParamInfo(param_id, name, meta.get("unit", ""), float(low), float(meta["le"]), exclusive))
        self.by_id = {info.id: info for info in self.infos}

    def __len__(self) -> int:
        return len(self.infos)

    def find(self, param_id: str, index: int) -> tuple[int, ParamInfo] | None:
        """The parameter a request names: by id, or by ``index`` when the id is empty (-1: by id only)."""
        if param_id:
            info = self.by_id.get(param_id)
            return None if info is None else (self.infos.index(info), info)
        if 0 <= index < len(self.infos):
            return index, self.infos[index]
        return None

    @staticmethod
    def value(params: ControllerParams, info: ParamInfo) -> float:
        return float(getattr(params, info.field))
