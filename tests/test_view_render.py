"""The view's drawing code: every kind of snapshot draws, headless, on the SDL dummy driver.

Snapshots are built by hand here (not by the simulator), and what the user must see is checked on
the pixels: the I/O-mode banner's colour, the live stall counter, the port states, the crash.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import replace

os.environ["SDL_VIDEODRIVER"] = "dummy"

import numpy as np
import pygame
import pytest

from sim.view.camera import euler_from_matrix, quat_to_matrix
from sim.view.hud import BAD as FAILSAFE_RED
from sim.view.model import rotor_disc_ned
from sim.view.panels import MODE_LINE_COLOURS, STATE_COLOURS, UNKNOWN_MODE, WARN
from sim.view.render import BANNER_COLORS, CAPTION_EDGE, HELP_KEY, HELP_KEYS, Renderer, UiState, banner_rect
from sim.view.scene import CRASH_TEXT, FOCUS_COLOUR
from sim.view.snapshot import HISTORY, LATENESS_BINS_MS, PortView, Snapshot, VehicleView

NOW = 5000.0  # the view's monotonic clock in these tests, s
SIZE = (1280, 720)
SAMPLE_PNG = "/tmp/heli-view-sample.png"
DRAW_BOUND_S = 0.05  # CPU s a frame, generous: the target is 60 frames/s (about 8 ms a frame)


# ------------------------------------------------------------------------------------ hand-made data


def quat_from_euler(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a ZYX rotation (yaw, then pitch, then roll), body to NED."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def vehicle(
    position=(0.0, 0.0, -2.0),
    roll=0.0,
    pitch=0.0,
    yaw=0.0,
    rpm=1595.0,
    crashed=False,
    quat=None,
    flapping=(0.02, -0.01),
    failsafe=False,
) -> VehicleView:
    return VehicleView(
        position_ned_m=position,
        velocity_ned_m_s=(0.5, 0.2, -0.1),
        attitude_quat=quat if quat is not None else quat_from_euler(roll, pitch, yaw),
        flapping_rad=flapping,
        rotor_speed_rpm=rpm,
        collective_deg=4.8,
        throttle=0.64,
        crashed=crashed,
        armed=not crashed,
        failsafe=failsafe,
        mode="angle",
        governor="active",
    )


def histogram(lateness_ms: np.ndarray) -> np.ndarray:
    """Counts over LATENESS_BINS_MS with under- and overflow bins, computed independently of the snapshot module."""
    edges = np.array(LATENESS_BINS_MS)
    return np.bincount(np.searchsorted(edges, lateness_ms, side="right"), minlength=len(edges) + 1).astype(float)


def timing(mixed: bool = True, n: int = HISTORY) -> dict:
    """Loop history: threaded ticks near 2 ms, then (when ``mixed``) blocking ticks with 100 ms stalls."""
    rng = np.random.default_rng(7)
    period = 2.0 + rng.normal(0.0, 0.04, n)
    late = rng.lognormal(math.log(0.08), 0.5, n)
    mode = np.zeros(n)
    if mixed:
        mode[n // 2 :] = 1
        period[n // 2 :: 97] = 102.0
        late[n // 2 :: 97] = 100.0
    hist = {"threaded": histogram(late[mode == 0])}
    if mixed:
        hist["blocking"] = histogram(late[mode == 1])
    return dict(
        period_ms=period,
        lateness_ms=late,
        history_mode=mode,
        ticks_by_mode={m: int(h.sum()) for m, h in hist.items()},
        missed_by_mode={"threaded": 0, "blocking": int(np.sum(period[mode == 1] > 2.0 * 1.5))} if mixed else {},
        lateness_hist=hist,
    )


PORTS = [
    PortView("/dev/pts/3", "rc-in", "crsf", "in", 150.0, 3900.0, 0, 0.05, "ok"),
    PortView("/dev/pts/5", "servo", "maestro", "out", 250.0, 4500.0, 2, 0.11, "backpressured"),
    PortView("/dev/pts/7", "telemetry", "mavlink", "out", 50.0, 2100.0, 0, 1.9, "timed out"),
    PortView("socket://localhost:5760", "link", "hsf", "in/out", 10.0, 640.0, 17, 100.3, "disconnected"),
    PortView("/dev/pts/9", "rc-out", "sbus", "out", 0.0, 0.0, 0, 0.0, "closed"),
]

FLEET = [
    vehicle((0.0, 0.0, -2.0), roll=0.1, yaw=0.3),
    vehicle((3.0, 4.0, -5.0), roll=-0.3, yaw=1.2),
    vehicle((8.0, -5.0, -3.0), pitch=0.2, yaw=-0.7),
    vehicle((15.0, 10.0, 0.0), roll=1.4, rpm=0.0, crashed=True),
    vehicle((-3.0, 6.0, 0.0), yaw=2.0, rpm=0.0),
]


def snapshot(
    vehicles=None,
    io_mode="threaded",
    stalled_s=0.0,
    ports=(),
    mixed=True,
    **extra,
) -> Snapshot:
    fields = dict(
        sim_time_s=42.5,
        last_tick_monotonic=NOW - stalled_s - 0.0005,
        tick=21250,
        loop_hz=500.0,
        io_mode=io_mode,
        cpu_helper="off",
        heli_name="xcell60",
        rc_source="keyboard",
        sticks_us=(1600.0, 1420.0, 1700.0, 1450.0) + (1500.0,) * 12,
        sticks_fresh=True,
        vehicles=list(vehicles if vehicles is not None else [vehicle()]),
        ports=list(ports),
        events=["  1.00 s mode_switch threaded -> blocking", "  2.50 s behind 50 ticks", "  3.10 s port_lost link"],
    )
    fields.update(timing(mixed))
    fields.update(extra)
    return Snapshot(**fields)


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture
def screen():
    pygame.display.init()
    pygame.font.init()
    yield pygame.Surface(SIZE)
    pygame.quit()


def draw(surface, snap: Snapshot, ui: UiState | None = None, now: float = NOW, renderer: Renderer | None = None):
    renderer = renderer or Renderer(surface.get_size())
    renderer.draw(surface, snap, ui or UiState(), now)
    return surface


def pixels(surface: pygame.Surface, rect: pygame.Rect | None = None) -> np.ndarray:
    """(w, h, 3) RGB array of the surface, or of one rectangle of it."""
    area = surface.subsurface(rect) if rect is not None else surface
    return pygame.surfarray.array3d(area).astype(int)


def distinct_colours(surface: pygame.Surface) -> int:
    rgb = pixels(surface).reshape(-1, 3)
    return len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]))


def count_near(surface: pygame.Surface, colour, rect: pygame.Rect | None = None, tolerance: int = 12) -> int:
    """Pixels within ``tolerance`` of ``colour`` in every channel."""
    diff = np.abs(pixels(surface, rect) - np.array(colour[:3]))
    return int(np.sum(np.all(diff <= tolerance, axis=-1)))


def banner_samples(size) -> list[tuple[int, int]]:
    """Points inside the banner, clear of its centred label, its border and its rounded corners."""
    r = banner_rect(size)
    inset = 8
    return [
        (r.left + inset, r.top + inset),
        (r.right - 1 - inset, r.top + inset),
        (r.left + inset, r.bottom - 1 - inset),
        (r.right - 1 - inset, r.bottom - 1 - inset),
        (r.left + inset, r.centery),
        (r.right - 1 - inset, r.centery),
    ]


def stall_area(size) -> pygame.Rect:
    """Where the live stall counter goes: the strip right under the banner."""
    r = banner_rect(size)
    return pygame.Rect(r.left, r.bottom + 1, r.width, r.height)


# -------------------------------------------------------------------------------------------- tests


def test_hovering_heli_draws_a_full_frame(screen):
    draw(screen, snapshot())
    assert distinct_colours(screen) > 500


@pytest.mark.parametrize("mode", ["threaded", "blocking", "asyncio"])
def test_banner_is_filled_with_the_io_modes_colour(screen, mode):
    draw(screen, snapshot(io_mode=mode))
    for point in banner_samples(SIZE):
        assert tuple(screen.get_at(point))[:3] == BANNER_COLORS[mode], point


def test_banner_changes_colour_between_threaded_and_blocking(screen):
    renderer = Renderer(SIZE)
    point = banner_samples(SIZE)[4]
    threaded = tuple(draw(screen, snapshot(io_mode="threaded"), renderer=renderer).get_at(point))
    blocking = tuple(draw(screen, snapshot(io_mode="blocking"), renderer=renderer).get_at(point))
    assert threaded != blocking
    red, green = blocking[0] - blocking[1], threaded[1] - threaded[0]
    assert red > 80 and green > 60


def test_stall_counter_appears_while_the_loop_is_stalled_and_climbs(screen):
    renderer = Renderer(SIZE)
    area = stall_area(SIZE)
    draw(screen, snapshot(io_mode="blocking"), renderer=renderer)
    ticking = pixels(screen, area)
    assert count_near(screen, (255, 64, 48), area, tolerance=20) == 0
    stalled = snapshot(io_mode="blocking", stalled_s=0.5)
    assert stalled.stalled_ms(NOW) > 0
    draw(screen, stalled, renderer=renderer)
    at_500_ms = pixels(screen, area)
    assert np.any(at_500_ms != ticking)
    assert count_near(screen, (255, 64, 48), area, tolerance=20) > 100  # large red digits
    # the view keeps drawing while no snapshot arrives: the same snapshot, later, shows a larger number
    draw(screen, stalled, now=NOW + 0.25, renderer=renderer)
    assert np.any(pixels(screen, area) != at_500_ms)


def test_a_finished_flight_is_not_a_stall(screen):
    area = stall_area(SIZE)
    draw(screen, snapshot(io_mode="blocking", stalled_s=2.0, finished=True))
    assert count_near(screen, (255, 64, 48), area, tolerance=20) == 0


def test_fleet_of_five_with_the_third_focused(screen):
    renderer = Renderer(SIZE)
    snap = snapshot(FLEET, ports=PORTS)
    draw(screen, snap, UiState(focus=2), renderer=renderer)
    focus_2 = pixels(screen)
    assert distinct_colours(screen) > 500
    draw(screen, snap, UiState(focus=0), renderer=renderer)
    assert np.any(pixels(screen) != focus_2)
    draw(screen, snap, UiState(focus=7), renderer=renderer)  # Tab past the end: taken modulo the fleet
    assert np.array_equal(pixels(screen), focus_2)


def test_focused_heli_is_marked_in_the_scene(screen):
    renderer = Renderer(SIZE)
    layout = renderer.layout(SIZE, 0)
    lower_scene = pygame.Rect(layout.scene.left, layout.scene.height // 3, layout.scene.width, layout.scene.height // 3)
    draw(screen, snapshot([vehicle((0.0, 0.0, -1.0))]), renderer=renderer)
    assert count_near(screen, FOCUS_COLOUR, lower_scene, tolerance=4) > 30


def test_crashed_heli_is_labelled(screen):
    renderer = Renderer(SIZE)
    layout = renderer.layout(SIZE, 0)
    upright = snapshot([vehicle((0.0, 0.0, 0.0), rpm=0.0)])
    crashed = snapshot([vehicle((0.0, 0.0, 0.0), roll=1.5, rpm=0.0, crashed=True)])
    draw(screen, upright, renderer=renderer)
    before = count_near(screen, CRASH_TEXT, layout.scene, tolerance=6)
    draw(screen, crashed, renderer=renderer)
    after = count_near(screen, CRASH_TEXT, layout.scene, tolerance=6)
    assert after > before + 40


def test_failsafe_and_pause_are_shown(screen):
    renderer = Renderer(SIZE)
    scene = renderer.layout(SIZE, 0).scene
    top = pygame.Rect(scene.left, scene.top, scene.width, scene.height // 8)
    draw(screen, snapshot([vehicle()]), renderer=renderer)
    normal = pixels(screen)
    red_before = count_near(screen, FAILSAFE_RED, top, tolerance=4)
    draw(screen, snapshot([vehicle(failsafe=True)]), renderer=renderer)
    assert count_near(screen, FAILSAFE_RED, top, tolerance=4) > red_before + 100
    draw(screen, snapshot([vehicle()], paused=True), renderer=renderer)
    assert np.any(pixels(screen) != normal)


def test_every_port_state_has_its_colour(screen):
    renderer = Renderer(SIZE)
    draw(screen, snapshot(ports=PORTS), renderer=renderer)
    ports = renderer.layout(SIZE, len(PORTS)).ports
    assert ports.height > 5 * 12
    for state, colour in STATE_COLOURS.items():
        assert count_near(screen, colour, ports, tolerance=4) > 10, state


def test_injected_faults_are_shown_where_they_act(screen):
    renderer = Renderer(SIZE)
    layout = renderer.layout(SIZE, len(PORTS))
    draw(screen, snapshot(ports=PORTS), renderer=renderer)
    warn_in_ports = count_near(screen, WARN, layout.ports, tolerance=4)
    warn_in_panel = count_near(screen, WARN, layout.panel, tolerance=4)
    faulty = [replace(PORTS[0], state="ok", fault="no RC frames arrive"), *PORTS[1:]]
    draw(screen, snapshot(ports=faulty, loop_fault="a 30 ms stall every 1 s"), renderer=renderer)
    assert count_near(screen, WARN, layout.ports, tolerance=4) > warn_in_ports + 30
    assert count_near(screen, WARN, layout.panel, tolerance=4) > warn_in_panel + 30


def test_the_interpreter_is_named_and_a_free_threaded_one_stands_out(screen):
    renderer = Renderer(SIZE)
    panel = renderer.layout(SIZE, 0).panel
    draw(screen, snapshot(python=""), renderer=renderer)
    warn_before = count_near(screen, WARN, panel, tolerance=4)
    blank = pixels(screen, panel)
    draw(screen, snapshot(python="Python 3.11.7 (GIL)"), renderer=renderer)
    assert np.any(pixels(screen, panel) != blank)
    assert count_near(screen, WARN, panel, tolerance=4) == warn_before
    draw(screen, snapshot(python="Python 3.13.1 (free-threaded: no GIL)"), renderer=renderer)
    assert count_near(screen, WARN, panel, tolerance=4) > warn_before + 30


def test_the_tour_caption_is_drawn_over_the_scene(screen):
    renderer = Renderer(SIZE)
    scene = renderer.layout(SIZE, 0).scene
    draw(screen, snapshot(), renderer=renderer)
    before = count_near(screen, CAPTION_EDGE, scene, tolerance=4)
    caption = ["Slow serial devices", "One helicopter flies with N devices " * 6, "now: blocking, 3 slow links"]
    draw(screen, snapshot(caption=caption), renderer=renderer)
    assert count_near(screen, CAPTION_EDGE, scene, tolerance=4) > before + 200  # the frame round the caption
    assert count_near(screen, HELP_KEY, scene, tolerance=4) > 30  # the "now:" line


def test_many_ports_fit_and_none_is_fine(screen):
    renderer = Renderer(SIZE)
    ok = STATE_COLOURS["ok"]
    many = [PortView(f"/dev/pts/{k}", "servo", "maestro", "out", 250.0, 4500.0, 0, 0.1, "ok") for k in range(16)]
    draw(screen, snapshot(ports=many[:1]), renderer=renderer)
    one = count_near(screen, ok, renderer.layout(SIZE, 1).ports, tolerance=4)
    draw(screen, snapshot(ports=many), renderer=renderer)
    ports = renderer.layout(SIZE, len(many)).ports
    assert ports.bottom <= SIZE[1] and ports.height <= 0.32 * SIZE[1] + 1  # the scene keeps most of the window
    assert count_near(screen, ok, ports, tolerance=4) > 5 * one  # rows of ports, as many as fit
    draw(screen, snapshot(ports=[]), renderer=renderer)
    empty = renderer.layout(SIZE, 0).ports
    assert one > 0 and count_near(screen, ok, empty, tolerance=4) == 0  # no rows, a line that says so
    assert distinct_colours(screen) > 200  # the rest of the frame as always


def test_strip_chart_colours_samples_by_their_io_mode(screen):
    renderer = Renderer(SIZE)
    panel = renderer.layout(SIZE, 0).panel
    blocking_red = MODE_LINE_COLOURS["blocking"]
    draw(screen, snapshot(io_mode="threaded", mixed=False), renderer=renderer)
    threaded_only = count_near(screen, blocking_red, panel, tolerance=3)
    draw(screen, snapshot(io_mode="threaded", mixed=True), renderer=renderer)
    assert count_near(screen, blocking_red, panel, tolerance=3) > threaded_only + 100


def test_stale_sticks_are_dimmed(screen):
    renderer = Renderer(SIZE)
    scene = renderer.layout(SIZE, 0).scene
    gimbals = pygame.Rect(scene.left, scene.bottom - scene.height // 3, scene.width // 3, scene.height // 3)
    draw(screen, snapshot(sticks_fresh=True), renderer=renderer)
    fresh = count_near(screen, FOCUS_COLOUR, gimbals, tolerance=4)
    draw(screen, snapshot(sticks_fresh=False), renderer=renderer)
    assert fresh > 50
    assert count_near(screen, FOCUS_COLOUR, gimbals, tolerance=4) < fresh // 4


def test_help_overlay_lists_the_keys(screen):
    keys = {key for key, _ in HELP_KEYS}
    assert {"T", "G", "P", "R", "Space", "1", "2", "Tab", "F1", "Esc", "E", "M"} <= keys
    assert any("Arrow" in k for k in keys) and any("W" in k for k in keys) and any("A" in k for k in keys)
    assert all(what for _, what in HELP_KEYS)
    renderer = Renderer(SIZE)
    draw(screen, snapshot(), UiState(help=False), renderer=renderer)
    plain = pixels(screen)
    draw(screen, snapshot(), UiState(help=True, message="CPU helper: thread"), renderer=renderer)
    overlaid = pixels(screen)
    centre = (slice(SIZE[0] // 2 - 100, SIZE[0] // 2 + 100), slice(SIZE[1] // 2 - 60, SIZE[1] // 2 + 60))
    assert np.any(overlaid[centre] != plain[centre])
    assert overlaid.mean() < plain.mean()  # the frame behind the help box is darkened


def test_pilot_and_chase_cameras_differ(screen):
    renderer = Renderer(SIZE)
    snap = snapshot(FLEET)
    draw(screen, snap, UiState(camera="pilot", focus=1), renderer=renderer)
    pilot = pixels(screen)
    draw(screen, snap, UiState(camera="chase", focus=1), renderer=renderer)
    assert np.any(pixels(screen) != pilot)
    assert distinct_colours(screen) > 500


EDGE_CASES = {
    "at the pilot's eye": [vehicle((-10.0, 0.0, -1.7))],
    "behind the pilot": [vehicle((5.0, 0.0, -2.0)), vehicle((-30.0, 0.0, -2.0)), vehicle((-10.5, 0.1, -1.7))],
    "at the origin on the ground": [vehicle((0.0, 0.0, 0.0), rpm=0.0)],
    "underground": [vehicle((2.0, 1.0, 5.0))],
    "huge altitude": [vehicle((0.0, 0.0, -1.0e6))],
    "far away": [vehicle((1.0e5, -1.0e5, -10.0)), vehicle((20.0, 0.0, -2.0))],
    "upside down": [vehicle((4.0, 0.0, -3.0), roll=math.pi)],
    "nose straight up": [vehicle((4.0, 0.0, -3.0), pitch=math.pi / 2)],
    "nose straight down": [vehicle((4.0, 0.0, -3.0), pitch=-math.pi / 2, yaw=1.0)],
    "zero quaternion": [vehicle(quat=(0.0, 0.0, 0.0, 0.0))],
    "unnormalised quaternion": [vehicle(quat=(3.0, 0.5, 0.0, 1.0))],
    "big flapping": [vehicle(flapping=(0.5, -0.5))],
    "not a number": [vehicle((float("nan"), 0.0, -2.0)), vehicle(rpm=float("nan"), quat=(float("inf"), 0, 0, 0))],
    "no vehicles": [],
    "crowd": [vehicle((k % 8 * 1.5, k // 8 * 1.5, -1.0 - k % 3), yaw=0.3 * k) for k in range(64)],
}


@pytest.mark.parametrize("camera", ["pilot", "chase"])
@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_awkward_vehicles_never_break_a_frame(screen, case, camera):
    renderer = Renderer(SIZE)
    count = len(EDGE_CASES[case])
    for focus in sorted({0, count // 2, max(0, count - 1)}) if count > 3 else range(max(1, count)):  # crowd: 3 of 64
        draw(
            screen,
            snapshot(EDGE_CASES[case], io_mode="blocking"),
            UiState(camera=camera, focus=focus),
            renderer=renderer,
        )
        assert tuple(screen.get_at(banner_samples(SIZE)[0]))[:3] == BANNER_COLORS["blocking"]


def mode_lines(surface: pygame.Surface, panel: pygame.Rect) -> int:
    """Pixels of the strip chart's per-mode line colours in the timing panel."""
    return sum(count_near(surface, colour, panel, tolerance=3) for colour in MODE_LINE_COLOURS.values())


def test_awkward_timing_data_never_breaks_a_frame(screen):
    renderer = Renderer(SIZE)
    panel = renderer.layout(SIZE, 0).panel
    empty = dict(period_ms=np.zeros(0), lateness_ms=np.zeros(0), history_mode=np.zeros(0), lateness_hist={})
    draw(screen, snapshot(), renderer=renderer)
    drawn = mode_lines(screen, panel)  # a normal history: its lines (and the legend in the same colours)
    draw(screen, snapshot(**empty), renderer=renderer)
    nothing = mode_lines(screen, panel)
    assert nothing < drawn / 2  # no history: no lines, and a whole frame round them
    assert tuple(screen.get_at(banner_samples(SIZE)[0]))[:3] == BANNER_COLORS["threaded"]
    assert distinct_colours(screen) > 200
    short = dict(period_ms=np.array([2.0]), lateness_ms=np.array([0.1, 0.2]), history_mode=np.array([0.0, 1.0, 2.0]))
    draw(screen, snapshot(**short), renderer=renderer)
    assert distinct_colours(screen) > 200
    wild = dict(
        period_ms=np.array([0.0, -1.0, np.nan, np.inf, 1e9, 2.0] * 50),
        lateness_ms=np.array([-5.0, np.nan, 0.0, 1e-9, np.inf, 3.0] * 50),
        history_mode=np.array([0.0, 1.0, 2.0, 7.0, -1.0, np.nan] * 50),
        lateness_hist={"threaded": np.zeros(3), "weird": np.ones(26)},
    )
    draw(screen, snapshot(**wild, io_mode="no-such-mode", last_tick_monotonic=0.0), renderer=renderer)
    assert tuple(screen.get_at(banner_samples(SIZE)[0]))[:3] == UNKNOWN_MODE  # a mode it does not know: grey
    assert mode_lines(screen, panel) > nothing  # the finite samples of known modes are still drawn
    draw(screen, snapshot(paused=True, cpu_helper="process", sticks_us=(), rc_source=""), renderer=renderer)
    assert distinct_colours(screen) > 200


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080), (900, 900), (400, 300)])
def test_layout_adapts_to_the_window_size(screen, size):
    renderer = Renderer(SIZE)
    draw(screen, snapshot(FLEET, io_mode="blocking", ports=PORTS), renderer=renderer)
    resized = pygame.Surface(size)
    draw(
        resized, snapshot(FLEET, io_mode="blocking", ports=PORTS, stalled_s=0.3), UiState(help=True), renderer=renderer
    )
    draw(resized, snapshot(FLEET, io_mode="threaded", ports=PORTS), UiState(camera="chase"), renderer=renderer)
    assert banner_rect(size).right <= size[0] and banner_rect(size).bottom < size[1]
    for point in banner_samples(size):
        assert tuple(resized.get_at(point))[:3] == BANNER_COLORS["threaded"], point
    assert distinct_colours(resized) > 200


def test_rotor_disc_follows_attitude_and_flapping():
    level = vehicle((0.0, 0.0, -5.0), flapping=(0.0, 0.0))
    rim = rotor_disc_ned(level)
    assert np.allclose(rim[:, 2], rim[0, 2])  # a level disc on a level heli
    aft = rotor_disc_ned(vehicle((0.0, 0.0, -5.0), flapping=(0.1, 0.0)))
    nose, tail = aft[0], aft[len(aft) // 2]
    assert nose[2] < tail[2]  # a1 > 0: front edge up (NED down is negative up)
    right = rotor_disc_ned(vehicle((0.0, 0.0, -5.0), flapping=(0.0, 0.1)))
    starboard, port = right[len(right) // 4], right[3 * len(right) // 4]
    assert starboard[1] > port[1] and starboard[2] > port[2]  # b1 > 0: right edge down
    rolled = rotor_disc_ned(vehicle((0.0, 0.0, -5.0), roll=0.3, flapping=(0.0, 0.0)))
    assert rolled[len(rolled) // 4][2] > rolled[3 * len(rolled) // 4][2]  # rolled right: right side lower
    assert np.allclose(np.linalg.norm(rim - rim.mean(axis=0), axis=1), 0.75)


def test_quaternion_helpers_agree_with_euler_angles():
    for roll, pitch, yaw in [(0.1, -0.2, 0.3), (-1.0, 0.4, 3.0), (0.0, 0.0, -2.0)]:
        r = quat_to_matrix(quat_from_euler(roll, pitch, yaw))
        assert np.allclose(r @ r.T, np.eye(3))
        assert np.allclose(euler_from_matrix(r), (roll, pitch, yaw))
    assert np.allclose(quat_to_matrix((0.0, 0.0, 0.0, 0.0)), np.eye(3))


def test_representative_frame_is_saved_and_draws_fast(screen):
    renderer = Renderer(SIZE)
    snap = snapshot(FLEET, io_mode="blocking", stalled_s=0.4, ports=PORTS, cpu_helper="thread")
    assert len(snap.period_ms) == HISTORY
    ui = UiState(focus=2, message="I/O: blocking")
    draw(screen, snap, ui, renderer=renderer)  # first frame: fonts and caches warm up
    times = []
    for k in range(100):  # CPU time of this thread: what the drawing costs, not what other processes took
        start = time.thread_time()
        renderer.draw(screen, snap, ui, NOW + k / 60.0)
        times.append(time.thread_time() - start)
    median_ms = 1000.0 * statistics.median(times)
    print(f"\ndraw() at {SIZE[0]}x{SIZE[1]}, fleet of 5, {HISTORY} history samples: median {median_ms:.2f} ms CPU")
    assert statistics.median(times) < DRAW_BOUND_S
    renderer.draw(screen, snap, ui, NOW)
    pygame.image.save(screen, SAMPLE_PNG)
    assert os.path.getsize(SAMPLE_PNG) > 10_000


FC_FLYING = {"firmware": "ArduPilot SITL (JSON)", "address": "udp:127.0.0.1:9002", "state": "flying",
             "frame_rate_hz": 1200.0, "behind_s": 0.02, "lost": 0, "repeated": 0, "malformed": 0, "restarts": 0,
             "timeouts": 0, "frames": 48000, "peer": "127.0.0.1:5501", "fault": ""}  # fmt: skip


@pytest.mark.parametrize(("state", "colour"), [("flying", (70, 200, 110)), ("waiting", (245, 170, 50)),
                                               ("lost", (255, 64, 48))])  # fmt: skip
def test_firmware_in_the_loop_has_a_panel_coloured_by_its_state_instead_of_the_stall_counter(screen, state, colour):
    area = stall_area(SIZE)
    area.height *= 2
    draw(screen, snapshot(io_mode="threaded", stalled_s=0.5, fc={**FC_FLYING, "state": state}))
    assert count_near(screen, colour, area, tolerance=10) > 100  # the panel's frame and heading
    if state != "lost":  # the firmware sets the pace: a wait for its frame is no loop stall
        assert count_near(screen, (255, 64, 48), area, tolerance=20) == 0


def test_the_firmware_panel_shows_what_went_wrong_on_its_link(screen):
    area = stall_area(SIZE)
    area.height *= 2
    clean = pixels(draw(screen, snapshot(fc=FC_FLYING)), area)
    draw(screen, snapshot(fc={**FC_FLYING, "lost": 3, "fault": "5% datagrams lost"}))
    assert np.any(pixels(screen, area) != clean)
    assert count_near(screen, (245, 170, 50), area, tolerance=10) > count_near(
        pygame.surfarray.make_surface(clean), (245, 170, 50), tolerance=10
    )


def test_the_io_key_says_which_mode_the_loop_switched_to_or_why_it_stayed():
    from types import SimpleNamespace

    from sim.view.app import IoSwitchWatch

    def snap(mode, *events):
        return SimpleNamespace(io_mode=mode, events=list(events))

    watch = IoSwitchWatch()
    assert watch.outcome(snap("threaded"), 0.0) is None  # nothing asked
    watch.asked(snap("threaded"), 0.0)
    assert watch.outcome(snap("threaded"), 0.1) is None  # not yet: the switch waits for a tick boundary
    assert watch.outcome(snap("blocking"), 0.2) == "I/O: blocking"
    assert watch.outcome(snap("threaded"), 0.3) is None  # said once
    old = "   1.00 s  mode_refused: asyncio: no"
    watch.asked(snap("threaded", old), 1.0)
    assert watch.outcome(snap("threaded", old), 1.1) is None  # an earlier refusal is not this one's
    new = "   2.00 s  mode_refused: asyncio: the firmware link is a UDP socket"
    said = watch.outcome(snap("threaded", old, new), 1.2)
    assert said == "I/O stays threaded: asyncio: the firmware link is a UDP socket"
    watch.asked(snap("threaded"), 5.0)
    watch.asked(snap("threaded"), 5.1)  # T twice before a snapshot shows either: there and back
    assert watch.outcome(snap("threaded"), 5.2) is None
    assert watch.outcome(snap("blocking"), 9.0) is None  # seconds later: a signal's switch, not the key's


def test_a_share_of_missed_deadlines_reads_as_a_person_writes_it():
    from sim.view.panels import _percent

    assert [_percent(v) for v in (0.04, 0.4, 9.94, 9.96, 12.3, 99.6, 99.99, 100.0, math.nan)] == [
        "<0.1 %", "0.4 %", "9.9 %", "10 %", "12 %", "99.6 %", "99.9 %", "100 %", "n/a",
    ]  # fmt: skip


@pytest.mark.parametrize("camera", ["pilot", "chase"])
def test_labels_of_a_crashed_fleet_overlap_neither_each_other_nor_a_panel_nor_a_helicopter(screen, camera):
    """Six helicopters crashed side by side, the loop stalled: every one is labelled, and no label covers
    another, the HUD, the stall counter or a helicopter (before, they were drawn on top of each other)."""
    renderer = Renderer(SIZE)
    fleet = [vehicle((0.0, east, 0.0), roll=1.5, rpm=0.0, crashed=True) for east in (-1.5, -0.9, -0.3, 0.3, 0.9, 1.5)]
    draw(screen, snapshot(fleet, io_mode="blocking", stalled_s=0.5), UiState(focus=1, camera=camera), renderer=renderer)
    placed = renderer.placed_labels
    names = sorted(request.lines[-1][0] for request, _ in placed if request.lines[-1][0].startswith("#"))
    assert names == [f"#{i}" for i in range(6)]
    assert all(request.lines[0][0] == "CRASHED" for request, _ in placed if request.lines[-1][0].startswith("#"))
    rects = [rect for _, rect in placed]
    assert all(not a.colliderect(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    assert len(renderer.label_obstacles) > 6  # the HUD's card, chips and gimbals, the stall counter, the helicopters
    assert all(rect.collidelist(renderer.label_obstacles) < 0 for rect in rects)
    assert count_near(screen, CRASH_TEXT, renderer.layout(SIZE, 0).scene, tolerance=6) > 6 * 40
