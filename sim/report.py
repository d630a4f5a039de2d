"""The run summary as a table a person reads at the end of a headless flight."""

from __future__ import annotations

__all__ = ["format_summary"]


def _triple(d: dict, fmt: str) -> str:
    def one(v: float | None) -> str:
        return "-" if v is None else format(v, fmt)

    return f"{one(d['p50'])} / {one(d['p99'])} / {one(d['max'])}"


def format_summary(summary: dict) -> str:
    """Segments, vehicles and events of a ``FlightLoop.summary()`` as aligned text."""
    lines = [
        f"heli-sim: {summary['duration_s']:.2f} s flown, {summary['heli']} x{summary['fleet']}, "
        f"loop {summary['loop_hz']:g} Hz, physics {summary['physics_dt_s'] * 1e3:g} ms, "
        f"ended: {summary['stop_reason']}",
        "",
        f"{'segment (s)':<16}{'io':<10}{'ticks':>8}{'missed':>8}   {'lateness us p50/p99/max':<28}"
        f"{'period ms p50/p99/max'}",
    ]
    for seg in summary["segments"]:
        span = f"{seg['t_start_s']:.1f}-{seg['t_end_s']:.1f}"
        lines.append(
            f"{span:<16}{seg['io_mode']:<10}{seg['ticks']:>8}{seg['missed_deadlines']:>8}   "
            f"{_triple(seg['lateness_us'], '.0f'):<28}{_triple(seg['period_ms'], '.2f')}"
        )
    lines += ["", f"{'vehicle':<9}{'state':<18}{'position n/e/d m':<26}{'alt min/max m':<17}{'rotor rpm':>9}"]
    for v in summary["vehicles"]:
        state = f"crashed: {v['crash_reason']}" if v["crashed"] else "ok"
        position = " ".join(f"{x:7.2f}" for x in v["final_position_m"])
        altitudes = f"{v['min_altitude_m']:.2f} / {v['max_altitude_m']:.2f}"
        lines.append(f"{v['id']:<9}{state:<18}{position:<26}{altitudes:<17}{v['rotor_speed_rpm']:>9.0f}")
    if summary["events"]:
        lines += ["", "events:"]
        lines += [f"  {e['t_s']:8.3f} s  {e['kind']:<12} {e['detail']}" for e in summary["events"]]
    return "\n".join(lines)
