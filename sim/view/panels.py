"""The view's panels: loop timing (banner, stall counter, strip chart, histograms, counts, events) and ports.

The timing panel answers the question heli-sim exists for: is blocking I/O stalling the control
loop?  A big THREADED / BLOCKING banner, a live "no tick for N ms" counter while the loop is stalled,
period and lateness against the deadline over the last ticks, a lateness histogram per I/O mode
and the missed deadlines.  The ports panel has one row per port.  pygame, main thread only.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pygame

from sim.view.snapshot import IO_MODES, LATENESS_BINS_MS

if TYPE_CHECKING:
    from sim.view.snapshot import PortView, Snapshot
    from sim.view.text import Text

__all__ = [
    "BANNER_COLORS",
    "MODE_LINE_COLOURS",
    "STATE_COLOURS",
    "WARN",
    "draw_ports",
    "draw_timing",
    "hist_quantile_ms",
]

BANNER_COLORS: dict[str, tuple[int, int, int]] = {
    "threaded": (36, 150, 72),
    "blocking": (196, 46, 46),
    "asyncio": (48, 104, 200),
}
UNKNOWN_MODE = (110, 114, 124)
MODE_LINE_COLOURS: dict[str, tuple[int, int, int]] = {
    "threaded": (84, 222, 124),
    "blocking": (255, 96, 84),
    "asyncio": (104, 164, 255),
}
STATE_COLOURS: dict[str, tuple[int, int, int]] = {
    "ok": (70, 200, 110),
    "backpressured": (245, 170, 50),
    "timed out": (245, 170, 50),
    "disconnected": (235, 60, 50),
    "failed": (235, 60, 50),
    "closed": (130, 136, 148),
}
CHART_MIN_MS = 0.01  # the strip chart's log scale, ms
CHART_MAX_MS = 1000.0
HIST_LABELS_MS = (0.1, 1.0, 10.0, 100.0)
EVENT_LINES_MAX = 12

PANEL_BG = (22, 25, 32)
PLOT_BG = (14, 16, 21)
GRID = (44, 50, 62)
TEXT = (232, 236, 242)
DIM = (140, 148, 162)
FAINT = (92, 100, 114)
DEADLINE = (250, 236, 150)
STALL = (255, 64, 48)
STALL_BG = (72, 14, 12)
WARN = (245, 170, 50)
GOOD = (70, 200, 110)


def _mode_name(index: float) -> str:
    i = int(index) if math.isfinite(index) else -1
    return IO_MODES[i] if 0 <= i < len(IO_MODES) else "?"


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def hist_quantile_ms(counts, q: float) -> float | None:
    """Upper edge (ms) of the histogram bin holding quantile ``q``; inf for the overflow bin, None if empty."""
    c = np.asarray(counts, dtype=float)
    total = float(c.sum())
    if not total > 0:
        return None
    i = int(np.searchsorted(np.cumsum(c), q * total))
    return LATENESS_BINS_MS[i] if i < len(LATENESS_BINS_MS) else math.inf


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if math.isinf(ms):
        return f">{LATENESS_BINS_MS[-1] / 1000:.0f} s"
    if ms < 1.0:
        return f"{ms:.2g} ms"
    return f"{ms:.3g} ms" if ms < 1000 else f"{ms / 1000:.3g} s"


def _fmt_rate(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.1f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


# ------------------------------------------------------------------------------------------ timing


def draw_timing(
    surface: pygame.Surface,
    panel: pygame.Rect,
    banner: pygame.Rect,
    snapshot: Snapshot,
    now_monotonic: float,
    text: Text,
    scale: float,
) -> None:
    surface.fill(PANEL_BG, panel)
    pygame.draw.line(surface, GRID, panel.topleft, panel.bottomleft)
    gap = max(3, int(8 * scale))
    _banner(surface, banner, snapshot.io_mode, text, scale)
    x0, width = banner.left, banner.width
    y = banner.bottom + gap
    if snapshot.fc:  # firmware in the loop sets the pace: its link, not the loop's own deadlines
        y = _firmware(surface, pygame.Rect(x0, y, width, 0), snapshot.fc, text, scale) + gap
    else:
        y = _stall(surface, pygame.Rect(x0, y, width, 0), snapshot, now_monotonic, text, scale) + gap
    y = _status(surface, x0, y, width, snapshot, text) + gap
    chart_h = max(40, int(panel.height * 0.22))
    text.draw(surface, _chart_title(snapshot), (x0, y), "bold", TEXT, max_width=width)
    y += text.height("bold") + 2
    _strip_chart(surface, pygame.Rect(x0, y, width, chart_h), snapshot, text)
    y += chart_h + text.height("small") + gap
    hist_h = max(34, int(panel.height * 0.15))
    text.draw(surface, "lateness per I/O mode (ms; bars: log count)", (x0, y), "bold", TEXT, max_width=width)
    y += text.height("bold") + 2
    shown = _modes_shown(snapshot)
    y = _histograms(surface, pygame.Rect(x0, y, width, hist_h), shown, snapshot, text, scale) + gap
    y = _counts(surface, x0, y, width, shown, snapshot, text) + gap
    _events(surface, pygame.Rect(x0, y, width, panel.bottom - gap - y), snapshot.events, text)


def _banner(surface: pygame.Surface, rect: pygame.Rect, io_mode: str, text: Text, scale: float) -> None:
    colour = BANNER_COLORS.get(io_mode, UNKNOWN_MODE)
    pygame.draw.rect(surface, colour, rect, border_radius=max(2, int(6 * scale)))
    pygame.draw.rect(surface, _mix(colour, (255, 255, 255), 0.35), rect, 2, border_radius=max(2, int(6 * scale)))
    label = (io_mode or "?").upper()
    room = rect.width - 2 * max(12, rect.height // 2)  # keep the banner's ends clear: they show its colour
    style = next((st for st in ("big", "title", "bold") if text.width(label, st) <= room), "small")
    text.draw(surface, label, rect.center, style, (255, 255, 255), anchor="center", shadow=True, max_width=room)


def _stall(surface, area: pygame.Rect, snapshot: Snapshot, now: float, text: Text, scale: float) -> int:
    """The live stall counter (or a quiet 'ticking' line); returns the y below it."""
    height = text.height("small") + text.height("huge") + int(6 * scale)
    box = pygame.Rect(area.left, area.top, area.width, height)
    if snapshot.last_tick_monotonic <= 0.0:
        text.draw(surface, "waiting for the first tick", (box.left, box.centery), "body", WARN, anchor="midleft")
        return box.bottom
    if snapshot.finished:
        text.draw(surface, "the flight has ended", (box.left, box.centery), "body", DIM, anchor="midleft")
        return box.bottom
    stalled = snapshot.stalled_ms(now)
    if stalled > 0 and math.isfinite(stalled):
        pygame.draw.rect(surface, STALL_BG, box, border_radius=4)
        pygame.draw.rect(surface, STALL, box, 2, border_radius=4)
        text.draw(surface, "LOOP STALLED: no tick for", (box.left + 8, box.top + 3), "small", (255, 200, 190))
        text.draw(
            surface,
            f"{stalled:,.0f} ms",
            (box.right - 10, box.bottom - 2),
            "huge",
            STALL,
            anchor="bottomright",
        )
    else:
        line = f"loop ticking at {snapshot.loop_hz:.0f} Hz · deadline {snapshot.deadline_ms:.2f} ms"
        if text.width(line, "body") > box.width:
            line = f"ticking at {snapshot.loop_hz:.0f} Hz"
        text.draw(surface, line, (box.left, box.centery), "body", GOOD, anchor="midleft", max_width=box.width)
    return box.bottom


def _firmware(surface, area: pygame.Rect, fc: dict, text: Text, scale: float) -> int:
    """The firmware in the loop: who, its state, its frame rate, how far behind real time, what went
    wrong on its link (lost, repeated, malformed frames, restarts); returns the y below it."""
    line = text.height("body")
    box = pygame.Rect(area.left, area.top, area.width, text.height("bold") + 3 * line + int(8 * scale))
    state = fc.get("state", "?")
    colour = {"flying": GOOD, "waiting": WARN}.get(state, STALL)
    pygame.draw.rect(surface, PLOT_BG, box, border_radius=4)
    pygame.draw.rect(surface, colour, box, 2, border_radius=4)
    x, y = box.left + 8, box.top + 3
    heading = f"{'FIRMWARE LOST' if state == 'lost' else 'FIRMWARE'}: {fc.get('firmware', '?')}"
    text.draw(surface, heading, (x, y), "bold", colour, max_width=box.width - 16)
    y += text.height("bold")
    behind = float(fc.get("behind_s", 0.0))
    pace = f"{behind:.2f} s behind real time" if behind >= 0 else f"{-behind:.2f} s ahead of real time"
    status = {
        "flying": f"{fc.get('frame_rate_hz', 0.0):,.0f} frames/s · {pace}",
        "waiting": f"waiting on {fc.get('address', '?')}",
        "lost": f"no frame for {fc.get('timeout_s', 0.0):g} s: motor off, servos held",
    }.get(state, state)
    text.draw(surface, status, (x, y), "body", TEXT if state == "flying" else colour, max_width=box.width - 16)
    y += line
    counts = (
        f"lost {fc.get('lost', 0):,} · repeated {fc.get('repeated', 0):,} · malformed {fc.get('malformed', 0):,}"
        f" · restarts {fc.get('restarts', 0)}" + (f" · foreign {fc['foreign']:,}" if fc.get("foreign") else "")
    )
    bad = any(fc.get(key, 0) for key in ("lost", "repeated", "malformed", "foreign", "restarts", "timeouts"))
    text.draw(surface, counts, (x, y), "body", WARN if bad else DIM, max_width=box.width - 16)
    y += line
    fault = fc.get("fault", "")
    where = (
        f"fault on the link: {fault}" if fault
        else f"{fc.get('frames', 0):,} frames from {fc.get('peer') or '-'} · {fc.get('timeouts', 0)} timeouts"
    )  # fmt: skip
    text.draw(surface, where, (x, y), "body", WARN if fault else DIM, max_width=box.width - 16)
    return box.bottom


def _status(surface, x: int, y: int, width: int, snapshot: Snapshot, text: Text) -> int:
    line = text.height("body")
    text.draw(surface, f"sim {snapshot.sim_time_s:9.2f} s   tick {snapshot.tick:,}", (x, y), "mono", TEXT)
    if snapshot.python:  # the lesson depends on it: with no GIL, threads compute in parallel too
        colour = DIM if snapshot.python.endswith("(GIL)") else WARN
        text.draw(surface, snapshot.python, (x + width, y), "small", colour, anchor="topright")
    y += line
    helper = snapshot.cpu_helper or "off"
    text.draw(surface, f"CPU helper: {helper}", (x, y), "body", DIM if helper == "off" else WARN)
    if snapshot.paused:
        text.draw(surface, "PAUSED", (x + width, y), "bold", WARN, anchor="topright")
    if snapshot.loop_fault:
        y += line
        text.draw(surface, f"fault in the loop: {snapshot.loop_fault}", (x, y), "body", WARN, max_width=width)
    return y + line


def _chart_title(snapshot: Snapshot) -> str:
    n = min(len(snapshot.period_ms), len(snapshot.lateness_ms), len(snapshot.history_mode))
    seconds = n / snapshot.loop_hz if snapshot.loop_hz > 0 else 0.0
    return f"period & lateness: last {n} ticks, {seconds:.1f} s"


def _y_of(values: np.ndarray, plot: pygame.Rect) -> np.ndarray:
    lo, hi = math.log10(CHART_MIN_MS), math.log10(CHART_MAX_MS)
    v = np.clip(np.nan_to_num(values, nan=CHART_MIN_MS, posinf=CHART_MAX_MS), CHART_MIN_MS, CHART_MAX_MS)
    return plot.bottom - 1 - (np.log10(v) - lo) / (hi - lo) * (plot.height - 2)


def _strip_chart(surface: pygame.Surface, rect: pygame.Rect, snapshot: Snapshot, text: Text) -> None:
    label_w = text.render("1000", "small", DIM).get_width() + 4
    plot = pygame.Rect(rect.left + label_w, rect.top, rect.width - label_w, rect.height)
    pygame.draw.rect(surface, PLOT_BG, plot)
    decades = range(int(math.log10(CHART_MIN_MS)), int(math.log10(CHART_MAX_MS)) + 1)
    step = 1 if plot.height / len(decades) >= text.height("small") else 2
    for k, e in enumerate(decades):
        y = float(_y_of(np.array([10.0**e]), plot)[0])
        pygame.draw.line(surface, GRID, (plot.left, y), (plot.right - 1, y))
        if (len(decades) - 1 - k) % step == 0 and k > 0:
            anchor = "topright" if k == len(decades) - 1 else "midright"
            text.draw(surface, f"{10.0**e:g}", (plot.left - 3, y), "small", DIM, anchor=anchor)
    n = min(len(snapshot.period_ms), len(snapshot.lateness_ms), len(snapshot.history_mode))
    deadline = snapshot.deadline_ms
    if n >= 2:
        period = np.asarray(snapshot.period_ms, dtype=float)[-n:]
        late = np.asarray(snapshot.lateness_ms, dtype=float)[-n:]
        modes = np.asarray(snapshot.history_mode, dtype=float)[-n:]
        bucket = max(1, math.ceil(n / max(plot.width - 2, 1)))
        starts = np.arange(0, n, bucket)
        # the worst sample of each pixel column: a single stalled tick must stay visible
        p = np.maximum.reduceat(np.nan_to_num(period, nan=0.0), starts)
        la = np.maximum.reduceat(np.nan_to_num(late, nan=0.0), starts)
        m = modes[np.minimum(starts + bucket - 1, n - 1)]
        xs = plot.left + 1 + (starts + 0.5 * bucket) / n * (plot.width - 2)
        yp = _y_of(p, plot)
        yl = _y_of(la, plot)
        cut = np.flatnonzero(np.diff(m) != 0) + 1
        bounds = [0, *cut.tolist(), len(m)]
        for a, b in itertools.pairwise(bounds):
            end = min(b + 1, len(m))  # join each run to the next one's first point
            colour = MODE_LINE_COLOURS.get(_mode_name(m[a]), UNKNOWN_MODE)
            for ys, c, w in ((yl, _mix(colour, PLOT_BG, 0.45), 1), (yp, colour, 1)):
                pts = np.stack([xs[a:end], ys[a:end]], axis=1).tolist()
                if len(pts) >= 2:
                    pygame.draw.lines(surface, c, False, pts, w)
                else:
                    pygame.draw.circle(surface, c, pts[0], 1)
    else:
        text.draw(surface, "no ticks yet", plot.center, "small", DIM, anchor="center")
    if math.isfinite(deadline) and deadline > 0:
        y = float(_y_of(np.array([deadline]), plot)[0])
        dash = 6
        for x in range(plot.left, plot.right - 1, 2 * dash):
            pygame.draw.line(surface, DEADLINE, (x, y), (min(x + dash, plot.right - 1), y))
        label = text.render(f"deadline {deadline:.3g} ms", "small", DEADLINE)
        box = label.get_rect(bottomright=(plot.right - 3, int(y) - 2))
        surface.fill(PLOT_BG, box.inflate(4, 0))
        surface.blit(label, box)
    pygame.draw.rect(surface, GRID, plot, 1)
    # legend and scale under the plot
    ly = plot.bottom + 1
    x = rect.left
    for legend, shade in (("period", 0.0), ("lateness", 0.45)):
        for mode in ("threaded", "blocking"):
            pygame.draw.line(surface, _mix(MODE_LINE_COLOURS[mode], PLOT_BG, shade), (x, ly + 7), (x + 8, ly + 7), 2)
            x += 10
        r = text.draw(surface, legend, (x + 2, ly), "small", DIM)
        x = r.right + 10
    for note in ("ms, log scale, worst per pixel", "ms, log scale"):
        if text.width(note, "small") < plot.right - x:
            text.draw(surface, note, (plot.right, ly), "small", FAINT, anchor="topright")
            break


def _modes_shown(snapshot: Snapshot) -> list[str]:
    shown = []
    for mode in IO_MODES:
        has_data = snapshot.ticks_by_mode.get(mode, 0) > 0 or (
            mode in snapshot.lateness_hist and float(np.sum(snapshot.lateness_hist[mode])) > 0
        )
        if mode in ("threaded", "blocking") or has_data or snapshot.io_mode == mode:
            shown.append(mode)
    return shown


def _histograms(surface, rect: pygame.Rect, shown: list[str], snapshot: Snapshot, text: Text, scale) -> int:
    gap = max(4, int(8 * scale))
    k = len(shown)
    w = (rect.width - gap * (k - 1)) // k
    small_h = text.height("small")
    bins = len(LATENESS_BINS_MS) + 1
    for i, mode in enumerate(shown):
        box = pygame.Rect(rect.left + i * (w + gap), rect.top, w, rect.height)
        colour = MODE_LINE_COLOURS.get(mode, UNKNOWN_MODE)
        counts = np.asarray(snapshot.lateness_hist.get(mode, np.zeros(bins)), dtype=float)
        counts = np.nan_to_num(counts[:bins], nan=0.0)
        text.draw(surface, mode, (box.left, box.top), "bold", colour)
        p50, p99 = hist_quantile_ms(counts, 0.5), hist_quantile_ms(counts, 0.99)
        text.draw(
            surface,
            f"p50<{_fmt_ms(p50)} p99<{_fmt_ms(p99)}" if p50 is not None else "no samples",
            (box.left, box.top + text.height("bold")),
            "small",
            DIM,
            max_width=box.width,
        )
        plot = pygame.Rect(
            box.left,
            box.top + text.height("bold") + small_h + 2,
            box.width,
            box.height - text.height("bold") - 2 * small_h - 2,
        )
        pygame.draw.rect(surface, PLOT_BG, plot)
        bw = plot.width / bins
        peak = float(np.log10(1.0 + counts.max())) if counts.size else 0.0
        if peak > 0:
            heights = np.log10(1.0 + counts) / peak * (plot.height - 2)
            for j, h in enumerate(heights.tolist()):
                if h > 0:
                    hh = max(1, int(h))
                    bar = pygame.Rect(int(plot.left + j * bw) + 1, plot.bottom - 1 - hh, max(1, int(bw) - 1), hh)
                    pygame.draw.rect(surface, colour, bar)
        dl = snapshot.deadline_ms
        if math.isfinite(dl) and dl > 0:
            x = plot.left + (4 * math.log10(dl) + 9) * bw
            if plot.left <= x <= plot.right:
                for yy in range(plot.top, plot.bottom, 6):
                    pygame.draw.line(surface, DEADLINE, (x, yy), (x, min(yy + 3, plot.bottom - 1)))
        pygame.draw.rect(surface, GRID, plot, 1)
        last_right = -1
        for value in HIST_LABELS_MS:
            x = plot.left + (4 * math.log10(value) + 9) * bw
            pygame.draw.line(surface, DIM, (x, plot.bottom), (x, plot.bottom + 2))
            s = text.render(f"{value:g}", "small", DIM)
            left = int(x - s.get_width() / 2)
            if left > last_right + 2 and left + s.get_width() <= box.right + 2:
                surface.blit(s, (left, plot.bottom + 2))
                last_right = left + s.get_width()
    return rect.bottom


def _counts(surface, x: int, y: int, width: int, shown: list[str], snapshot: Snapshot, text: Text) -> int:
    line = text.height("mono")
    text.draw(surface, "mode", (x, y), "small", FAINT)
    text.draw(surface, "ticks", (x + int(width * 0.52), y), "small", FAINT, anchor="topright")
    text.draw(surface, "missed deadlines", (x + width, y), "small", FAINT, anchor="topright")
    y += text.height("small")
    for mode in shown:
        ticks = int(snapshot.ticks_by_mode.get(mode, 0))
        missed = int(snapshot.missed_by_mode.get(mode, 0))
        colour = MODE_LINE_COLOURS.get(mode, UNKNOWN_MODE)
        text.draw(surface, mode, (x, y), "mono", colour)
        text.draw(surface, f"{ticks:,}", (x + int(width * 0.52), y), "mono", TEXT, anchor="topright")
        # of the deadlines that passed in this mode (each tick kept one, each missed one was skipped)
        share = f" ({_percent(100.0 * missed / (ticks + missed))})" if missed else ""
        text.draw(surface, f"{missed:,}{share}", (x + width, y), "mono", STALL if missed else TEXT, anchor="topright")
        y += line
    return y


def _events(surface, rect: pygame.Rect, events: list[str], text: Text) -> None:
    line = text.height("small")
    if rect.height < text.height("bold") + line:
        return
    text.draw(surface, "events", (rect.left, rect.top), "bold", TEXT)
    fit = min(EVENT_LINES_MAX, (rect.height - text.height("bold")) // line)
    recent = list(events)[-fit:] if fit > 0 else []
    y = rect.top + text.height("bold")
    if not recent:
        text.draw(surface, "none yet", (rect.left, y), "small", FAINT)
    for k, event in enumerate(recent):
        colour = TEXT if k == len(recent) - 1 else DIM
        text.draw(surface, event, (rect.left, y), "small", colour, max_width=rect.width)
        y += line


# ------------------------------------------------------------------------------------------- ports

# column: (header, share of the width, right-aligned)
PORT_COLUMNS = (
    ("port", 0.18, False),
    ("role", 0.09, False),
    ("protocol", 0.09, False),
    ("dir", 0.06, False),
    ("frames/s", 0.08, True),
    ("bytes/s", 0.08, True),
    ("errors", 0.08, True),
    ("I/O wait", 0.10, True),
    ("state", 0.24, False),  # and the fault injected on the port, if any
)


def _port_cells(port: PortView) -> list[str]:
    wait = f"{port.io_wait_ms:.2f} ms" if math.isfinite(port.io_wait_ms) else "-"
    return [
        port.name,
        port.role,
        port.protocol,
        port.direction,
        _fmt_rate(port.frames_per_s),
        _fmt_rate(port.bytes_per_s),
        f"{port.errors:,}",
        wait,
        port.state,
    ]


def draw_ports(surface: pygame.Surface, rect: pygame.Rect, ports: list[PortView], text: Text, scale: float) -> None:
    surface.fill(PANEL_BG, rect)
    pygame.draw.line(surface, GRID, rect.topleft, rect.topright)
    pad = max(3, int(8 * scale))
    inner = rect.inflate(-2 * pad, -pad)
    row_h = text.height("mono") + 1
    lefts = []
    x: float = inner.left
    for _, share, _ in PORT_COLUMNS:
        lefts.append(x)
        x += share * inner.width
    y = inner.top
    for (header, share, right), left in zip(PORT_COLUMNS, lefts, strict=True):
        if right:
            text.draw(surface, header, (left + share * inner.width - 6, y), "small", FAINT, anchor="topright")
        else:
            text.draw(surface, header, (left, y), "small", FAINT)
    y += text.height("small") + 1
    if not ports:
        text.draw(surface, "no ports: the flight runs with in-process pilots only", (inner.left, y), "small", DIM)
        return
    fit = max(1, (inner.bottom - y) // row_h)
    rows = list(ports)
    hidden = 0
    if len(rows) > fit:
        hidden = len(rows) - fit + 1
        rows = rows[: fit - 1]
    for k, port in enumerate(rows):
        if k % 2:
            surface.fill((28, 32, 41), pygame.Rect(rect.left, y, rect.width, row_h))
        for (_, share, right), left, cell in zip(PORT_COLUMNS, lefts, _port_cells(port), strict=True):
            width = int(share * inner.width) - 8
            if right:
                text.draw(surface, cell, (left + share * inner.width - 6, y), "mono", TEXT, anchor="topright")
            elif cell == port.state:
                colour = STATE_COLOURS.get(port.state, DIM)
                pygame.draw.circle(surface, colour, (int(left + row_h / 2), y + row_h // 2), max(3, row_h // 4))
                drawn = text.draw(surface, cell, (left + row_h, y), "mono", colour, max_width=width - row_h)
                if port.fault:  # an injected fault: say so next to what it causes
                    room = left + width - drawn.right - 6
                    if room > 20:
                        text.draw(surface, f"fault: {port.fault}", (drawn.right + 6, y), "mono", WARN, max_width=room)
            else:
                text.draw(surface, cell, (left, y), "mono", TEXT, max_width=width)
        y += row_h
    if hidden:
        text.draw(surface, f"+ {hidden} more ports", (inner.left, y), "small", DIM)


def _percent(value: float) -> str:
    """A share as a person writes it: "0.4 %", "12 %", "99 %", never "1e+02 %"."""
    if not math.isfinite(value):
        return "n/a"
    if value < 0.1:
        return "<0.1 %"
    if round(value, 1) < 10.0:
        return f"{value:.1f} %"
    if value < 99.5:
        return f"{value:.0f} %"
    return f"{min(value, 99.9):.1f} %" if value < 100.0 else "100 %"
