"""The run summary as a table a person reads at the end of a headless flight."""

from __future__ import annotations

__all__ = ["format_summary"]


def _triple(d: dict, fmt: str) -> str:
    def one(v: float | None) -> str:
        return "-" if v is None else format(v, fmt)

    return f"{one(d['p50'])} / {one(d['p99'])} / {one(d['max'])}"


def fc_line(fc: dict) -> str:
    """The firmware link in one line: who, where, frames, what went wrong, how far behind real time."""
    peer = f" at {fc['peer']}" if fc.get("peer") else f" (never heard on {fc['address']})"
    behind = fc["behind_s"]
    pace = f"{behind:.2f} s behind real time" if behind >= 0 else f"{-behind:.2f} s ahead of real time"
    return (
        f"firmware: {fc['firmware']}{peer}, {fc['state']}: {fc['frames']} frames ({fc['frame_rate_hz']:g}/s lately), "
        f"{fc['lost']} lost, {fc['repeated']} repeated, {fc['malformed']} malformed, {fc['restarts']} restarts, "
        f"{fc['timeouts']} timeouts; {pace}"
    )


_VEHICLES_SHOWN = 20
_HELD_AT_LEAST = 0.9  # of the ticks the flight's length should have had: below, a line says so


def _held_line(summary: dict) -> list[str]:
    """A warning when the loop ran far fewer ticks than its rate asks (each tick one controller cycle):
    the flight was too heavy to fly in real time, and its controller flew nearly blind."""
    if summary.get("fc"):
        return []  # lock-step: the firmware's frames set the pace
    ticks = sum(seg["ticks"] for seg in summary["segments"])
    wall_s = max((seg["t_end_s"] for seg in summary["segments"]), default=0.0)
    expected = wall_s * summary["loop_hz"]
    if expected < 50 or ticks >= _HELD_AT_LEAST * expected:
        return []
    blocking_s = sum(seg["t_end_s"] - seg["t_start_s"] for seg in summary["segments"] if seg["io_mode"] == "blocking")
    if blocking_s > 0.5 * wall_s:  # the seed's stall: the loop itself waited on its ports
        why = (f"the loop waited on its ports in blocking I/O ({blocking_s:.1f} s of it): with --io threaded or "
               "asyncio the waits overlap and the loop keeps its rate")  # fmt: skip
    else:
        remedies = ["a smaller fleet", *(["--no-ports"] if summary.get("ports") else []), "a lower --loop-hz"]
        if summary.get("kernel") != "compiled":
            remedies.append("--kernel compiled")
        why = (
            f"a tick took longer than the period: try {', '.join(remedies[:-1])} or {remedies[-1]} "
            "(heli-sim bench fleet measures the fleet this machine keeps)"
        )
    return [
        "",
        f"the loop ran {ticks:,} ticks of the {expected:,.0f} that {wall_s:.1f} s of wall-clock time at "
        f"{summary['loop_hz']:g} Hz asks for ({100 * ticks / expected:.0f} %): the controller ran that much less "
        f"often than its rate, on older sensor readings each time; {why}",
    ]


def _kernel_words(summary: dict) -> str:
    return " on the compiled kernels" if summary.get("kernel") == "compiled" else ""


def format_summary(summary: dict) -> str:
    """Segments, vehicles, ports, events and failures of a ``FlightLoop.summary()`` as aligned text."""
    pace = f"lock-step with {summary['fc']['firmware']}" if summary.get("fc") else f"loop {summary['loop_hz']:g} Hz"
    lines = [
        f"heli-sim: {summary['duration_s']:.2f} s flown, {summary['heli']} x{summary['fleet']}, "
        f"{pace}, physics {summary['physics_dt_s'] * 1e3:g} ms{_kernel_words(summary)}, "
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
    lines += _held_line(summary)
    lines += ["", f"{'vehicle':<9}{'state':<26}{'position n/e/d m':<26}{'alt min/max m':<17}{'rotor rpm':>9}"]
    vehicles = summary["vehicles"]
    for v in vehicles[:_VEHICLES_SHOWN]:
        position = " ".join(f"{x:7.2f}" for x in v["final_position_m"])
        altitudes = f"{v['min_altitude_m']:.2f} / {v['max_altitude_m']:.2f}"
        lines.append(f"{v['id']:<9}{_vehicle_state(v):<26}{position:<26}{altitudes:<17}{v['rotor_speed_rpm']:>9.0f}")
    if len(vehicles) > _VEHICLES_SHOWN:  # a fleet of thousands: counts by state (--stats-json has every one)
        states: dict[str, int] = {}
        for v in vehicles[_VEHICLES_SHOWN:]:
            states[_vehicle_state(v)] = states.get(_vehicle_state(v), 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda item: -item[1]))
        lines.append(f"... and {len(vehicles) - _VEHICLES_SHOWN} more: {counts}")
    if summary.get("ports"):
        lines += ["", f"{'port':<14}{'role':<11}{'protocol':<10}{'state':<15}{'frames in':>10}{'frames out':>11}"
                      f"{'decode err':>11}{'io err':>8}"]  # fmt: skip
        for port in summary["ports"]:
            lines.append(
                f"{port['name']:<14}{port.get('role', '-'):<11}{port.get('protocol', '-'):<10}"
                f"{port.get('state') or '-':<15}{port.get('frames_in', 0):>10}{port.get('frames_out', 0):>11}"
                f"{port.get('decode_errors', '-'):>11}{port.get('io_errors', '-'):>8}"
            )
    if summary.get("fc"):
        lines += ["", fc_line(summary["fc"])]
    for port in summary.get("ports") or []:
        if port.get("role") == "rc-in" and port.get("stick_frames") == 0:
            lines += ["", f"no frames from {port['name']} (expected {port.get('line') or port.get('protocol')})"]
    if summary["events"]:
        lines += ["", "events:"]
        lines += _event_lines(summary["events"])
    if summary.get("failures"):
        lines += ["", f"failures: {'; '.join(summary['failures'])}"]
    return "\n".join(lines)


_EVENTS_SHOWN_PER_KIND = 20  # a ground station setting a gain a thousand times is one line, not a thousand


def _event_lines(events: list[dict]) -> list[str]:
    """One line per event, but at most ``_EVENTS_SHOWN_PER_KIND`` of a kind, then how many more."""
    lines: list[str] = []
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for e in events:
        kind = e["kind"]
        shown[kind] = shown.get(kind, 0) + 1
        if shown[kind] <= _EVENTS_SHOWN_PER_KIND:
            lines.append(f"  {e['t_s']:8.3f} s  {kind:<12} {e['detail']}")
        else:
            hidden[kind] = hidden.get(kind, 0) + 1
    lines += [f"  ... and {count:,} more {kind} events (all of them in --stats-json and the log)"
              for kind, count in hidden.items()]  # fmt: skip
    return lines


def _vehicle_state(vehicle: dict) -> str:
    """ok, crashed: ..., diverged, taken over: what the end of the flight found, most serious first."""
    parts = []
    if vehicle.get("diverged"):
        parts.append("diverged")
    if vehicle.get("controller_failed"):
        parts.append("taken over")
    if vehicle["crashed"]:
        parts.append(f"crashed: {vehicle['crash_reason']}")
    return ", ".join(parts) or "ok"
