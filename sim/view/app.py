"""The view process: ``python -m sim.view.app --shm NAME --commands-fd N [...]`` (started by ``ViewLink``).

Main thread only for pygame: read the newest snapshot, handle events, draw, flip, ~60 times a
second.  Keys that concern the flight (T, G, P, R, Space, Esc, closing the window) are written
to the command pipe as one word per line; keys that concern only the picture (1, 2, Tab, F1) stay
here.  With ``--rc-fd`` the keyboard (or a joystick) is the pilot: a ``CrsfSender`` thread writes
CRSF frames into the simulator's RC port.  When the flight ends (the snapshot says
``finished``) the view draws its last frame, saves ``--screenshot`` if asked, and exits.

``HELI_SIM_VIEW_SCRIPT`` presses keys at seconds of *simulated* flight time, read from the
snapshot (``KeyScript``), so a script means the same on a busy machine as on an idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from typing import Any

__all__ = ["SCRIPT_ENV", "KeyScript", "ViewApp", "main", "parse_script", "press_key"]

_FPS = 60
_KEY_COMMANDS = {
    "t": "toggle_io",
    "i": "toggle_asyncio",
    "g": "cpu_thread",
    "p": "cpu_process",
    "r": "reset",
    "space": "pause",
}
_KEY_MESSAGES = {"t": "I/O: switching ...", "i": "I/O: switching ...", "g": "CPU helper thread",
                 "p": "CPU helper process", "r": "reset", "space": "pause"}  # fmt: skip
# function keys inject faults (sim.faults.KEY_PRESETS); a second press clears the fault
_FAULT_KEYS = {"f2": "rc_silence", "f3": "byte_loss", "f4": "corrupt", "f5": "unplug", "f6": "backpressure",
               "f7": "latency", "f8": "pace", "f9": "loop_delay"}  # fmt: skip
_FLYING_KEYS = {"left", "right", "up", "down", "a", "d", "w", "s"}
_FINISH_WAIT_S = 3.0  # after asking to quit, how long to wait for the simulator to finish the flight
SCRIPT_ENV = "HELI_SIM_VIEW_SCRIPT"  # "1.0:t,2.5:g,4:escape": keys pressed at simulated seconds (demos, tests)
_SCRIPT_TICKS_APART = 2  # ticks the simulator runs between two scripted keys: never two in one tick


def parse_script(text: str) -> list[tuple[float, str]]:
    """``"1.0:t,2.5:g"`` -> ``[(1.0, "t"), (2.5, "g")]``, sorted by time; ``ValueError`` names the bad item."""
    script = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        at, sep, key = item.partition(":")
        try:
            seconds = float(at)
        except ValueError:
            seconds = math.nan
        if not sep or not key.strip() or not math.isfinite(seconds) or seconds < 0.0:
            raise ValueError(f"{SCRIPT_ENV}: {item!r} is not SECONDS:KEY (for example 1.5:t)")
        script.append((seconds, key.strip()))
    return sorted(script)


class KeyScript:
    """The keys of ``HELI_SIM_VIEW_SCRIPT``, due at seconds of simulated flight time.

    The view calls ``update`` once a frame, after reading the snapshot; it answers the key to
    press now, or None.  The script's clock runs with the snapshot's simulated time (a reset,
    which sets simulated time back to zero, does not rewind it), and with the view's own clock
    while the flight is paused (so a script can pause and resume a flight).  Keys are pressed one
    at a time, in order: the next one waits until the simulator has run ``_SCRIPT_TICKS_APART``
    ticks since the last one was sent, so no two reach the loop in the same tick.  A view that
    falls behind (it runs at the lowest CPU priority: on a busy machine it draws a few frames a
    second) presses a key late, and the rest of the script moves with it: the gaps between keys,
    in simulated time, are never shorter than written.  Pure: no pygame, no clock of its own.
    """

    def __init__(self, items: list[tuple[float, str]]):
        self.items = list(items)
        self.clock_s = 0.0  # the script's time: simulated seconds of flight (plus wall seconds paused)
        self.late_s = 0.0  # how late the last key came; the keys after it move by as much
        self._last: tuple[float, float] | None = None  # (simulated time, view time) of the last update
        self._sent = False  # a key was pressed last frame: its command went out during this frame's events
        self._next_tick = 0  # the first tick at which the next key may be pressed

    def update(self, tick: int, sim_time_s: float, paused: bool, now_s: float) -> str | None:
        """The key to press now (or None), given this frame's snapshot and the view's clock."""
        if self._last is None:
            self.clock_s = max(0.0, sim_time_s)  # the first snapshot seen (the view may start late)
        else:
            last_sim_s, last_now_s = self._last
            step_s = now_s - last_now_s if paused else sim_time_s - last_sim_s
            self.clock_s += max(0.0, step_s)
        self._last = (sim_time_s, now_s)
        if self._sent:  # the command went out before this snapshot was read: wait for the loop to run
            self._sent = False
            self._next_tick = tick + _SCRIPT_TICKS_APART
            return None
        if not self.items or tick < self._next_tick:
            return None
        at_s, key = self.items[0]
        if self.clock_s < at_s + self.late_s:
            return None
        self.late_s = self.clock_s - at_s
        self.items.pop(0)
        self._sent = True
        return key


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heli-sim view")
    parser.add_argument("--shm", required=True)
    parser.add_argument("--commands-fd", type=int, required=True)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--screenshot")
    parser.add_argument("--rc-fd", type=int)
    parser.add_argument("--joystick", default="{}", help="JSON: channel_map and joystick mapping")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _start_up_priority()  # the flight waits for the first frame: nothing to protect yet
    import pygame  # the only process that draws (others read joysticks with it)

    app = ViewApp(pygame, args)
    try:
        return app.run()
    finally:
        app.close()


class ViewApp:
    """The view process's state: the window, the snapshot it reads, the keyboard's (or a joystick's)
    transmitter and the command pipe; ``run`` draws until the flight ends, ``close`` lets all go."""

    def __init__(self, pygame: Any, args: argparse.Namespace):
        from sim.config import JoystickMap
        from sim.joystick.device import JoystickDevice
        from sim.joystick.sticks import HoverTakeover
        from sim.view.render import Renderer, UiState
        from sim.view.shared import SnapshotReader
        from sim.view.sticks import CrsfSender, StickState

        self.pygame, self.args = pygame, args
        width, height = (int(v) for v in args.size.lower().split("x"))
        options = json.loads(args.joystick)
        given = options.get("joystick", {})
        fields: dict[str, Any] = {key: tuple(v) if isinstance(v, list) else v for key, v in given.items()}  # JSON
        self.script = KeyScript(parse_script(os.environ.get(SCRIPT_ENV, "")))
        self.sticks = StickState(channel_map=tuple(options.get("channel_map", (1, 2, 3, 4, 5, 6, 7))))
        self.takeover = None
        if options.get("start_hover") and "hover_collective" in options:  # take over a hovering helicopter
            self.sticks.take_over_hover(float(options["hover_collective"]))
            self.takeover = HoverTakeover(float(options["hover_collective"]))  # a joystick too, until it moves
        self.commands = os.fdopen(args.commands_fd, "wb", buffering=0)
        pygame.display.init()
        pygame.font.init()
        pygame.joystick.init()
        self.screen = pygame.display.set_mode((width, height), pygame.RESIZABLE)
        self.flying_keys = {name: pygame.key.key_code(name) for name in _FLYING_KEYS}
        pygame.display.set_caption("heli-sim")
        self.reader = SnapshotReader(args.shm)
        self.renderer = Renderer((width, height))
        self.ui = UiState(hover_collective_deg=options.get("hover_collective_deg"))
        self.sender = None
        if args.rc_fd is not None:
            self.sender = CrsfSender(args.rc_fd, self.sticks)
            self.sender.start()
        # the keyboard's transmitter takes a joystick's sticks and switches while one is plugged in
        mapping = JoystickMap(**fields)
        self.joystick = JoystickDevice(pygame, mapping, require=False) if self.sender is not None else None
        if self.joystick is not None and self.joystick.connected:
            self.send(f"joystick {self.joystick.opened}")
        sticks = self.sticks
        self.switches = (sticks.armed, sticks.mode, False, sticks.hold)  # a joystick's changes are said as keys'
        self.snapshot = self.reader.read()
        self.io_switch = IoSwitchWatch()
        self.frames = 0
        self.first_frame_at: float | None = None
        self.quit_asked: float | None = None

    def send(self, command: str) -> None:
        with contextlib.suppress(BrokenPipeError):  # the simulator has gone: closing follows
            self.commands.write(command.encode() + b"\n")

    def run(self) -> int:
        """Frames until the flight ends (0), the user's quit goes unanswered (0) or the simulator dies (1)."""
        pygame = self.pygame
        clock = pygame.time.Clock()
        simulator = os.getppid()
        while True:
            dt = clock.tick(_FPS) / 1000.0
            if self.joystick is not None:
                self.joystick.sync()
            for event in pygame.event.get():
                self._handle(event)
            self._move_sticks(dt)
            self._draw()
            if os.getppid() != simulator:  # the simulator died without closing us: nothing left to show
                return 1
            if self.snapshot.finished:
                if self.args.screenshot:
                    save_atomically(pygame, self.screen, self.args.screenshot)
                return 0
            if self.quit_asked is not None and time.monotonic() - self.quit_asked > _FINISH_WAIT_S:
                return 0  # the simulator did not answer: close anyway

    def close(self) -> None:
        if self.first_frame_at is not None:
            self.send(f"frames {self.frames} {time.monotonic() - self.first_frame_at:.3f}")
        if self.sender is not None:
            self.sender.stop()
            os.close(self.args.rc_fd)
        self.reader.close()
        self.commands.close()
        self.pygame.quit()

    def _handle(self, event: Any) -> None:
        pygame, joystick, sender, ui = self.pygame, self.joystick, self.sender, self.ui
        # (a joystick is opened only beside the keyboard's transmitter, the sender)
        if joystick is not None and sender is not None and (change := joystick.handle(event)) is not None:
            kind, detail = change
            self.send(f"{kind} {detail}")
            sender.paused = kind == "joystick_lost"  # unplugged: nothing sent, the failsafe takes over
            ui.message = (
                "joystick unplugged: failsafe until it is back (or fly on with the keys)"
                if sender.paused else f"joystick: {joystick.name}"
            )  # fmt: skip
        elif event.type == pygame.QUIT:
            self._ask_to_quit()
        elif event.type == pygame.VIDEORESIZE:
            self.screen = pygame.display.set_mode(event.size, pygame.RESIZABLE)
        elif event.type == pygame.KEYDOWN:
            self._key(pygame.key.name(event.key))

    def _key(self, name: str) -> None:
        ui, sender = self.ui, self.sender
        if name in _KEY_COMMANDS:
            self.send(_KEY_COMMANDS[name])
            ui.message = _KEY_MESSAGES[name]
            if name in ("t", "i"):
                self.io_switch.asked(self.snapshot, time.monotonic())
        elif name in _FAULT_KEYS:
            self.send(f"fault {_FAULT_KEYS[name]}")
            ui.message = f"fault: {_FAULT_KEYS[name].replace('_', ' ')} (again to clear)"
        elif name == "escape":
            self._ask_to_quit()
        elif name in ("1", "2"):
            ui.camera = "pilot" if name == "1" else "chase"
            self.send(f"note camera {ui.camera}")
        elif name == "tab":
            ui.focus += 1
            self.send(f"note focus vehicle {ui.focus}")
        elif name == "f1":
            ui.help = not ui.help
            self.send(f"note help {'shown' if ui.help else 'hidden'}")
        elif name in ("e", "h", "m"):
            self._switch(name)
        if sender is not None and sender.paused and name in (*_FLYING_KEYS, "e", "h", "m"):
            sender.paused = False  # the joystick is gone: the keyboard flies on
            ui.message = "the keyboard flies (the joystick is unplugged)"
            self.send("note transmitter: the keyboard took over from the unplugged joystick")

    def _ask_to_quit(self) -> None:
        """Esc or closing the window: say what the keyboard transmitter sent (an event of the flight), then quit."""
        self.quit_asked = self.quit_asked or time.monotonic()
        if self.sender is not None:
            sender = self.sender
            self.send(
                f"note transmitter sent {sender.frames} CRSF frames ({sender.dropped} dropped, the port full), "
                f"read {sender.telemetry_frames} telemetry frames"
            )
        self.send("quit")

    def _switch(self, key: str) -> None:
        """The transmitter's arm switch (E), throttle hold (H) or mode switch (M); recorded as an event."""
        ui, sticks = self.ui, self.sticks
        if self.sender is None:  # a real radio (or an in-process pilot) holds the sticks
            ui.message = f"the sticks come from {self.reader.last.rc_source or 'the pilot'}, not this keyboard"
            return
        if self.joystick is not None and self.joystick.connected:
            ui.message = "the joystick's switches hold arm and mode"
            return
        if key == "e":
            sticks.toggle_arm()
            ui.message = "armed" if sticks.armed else "disarmed (throttle hold)"
        elif key == "h" and not (len(sticks.channel_map) > 6 and sticks.channel_map[6]):
            ui.message = "no throttle-hold channel in this flight's channel map ([rc] throttle_hold)"
        elif key == "h":
            sticks.toggle_hold()
            ui.message = "throttle hold on: the motor stops, autorotate" if sticks.hold else "throttle hold off"
        else:
            sticks.next_mode()
            ui.message = f"flight mode: {sticks.mode_name}"
        self.send(f"note transmitter {ui.message}")

    def _move_sticks(self, dt: float) -> None:
        """The sticks from the joystick (saying its switches' changes) or from the keys held."""
        sticks, ui = self.sticks, self.ui
        reading = self.joystick.read() if self.joystick is not None else None
        if reading is not None and self.takeover is not None and self.takeover.holding:
            reading = self.takeover.apply(reading)
        if reading is None:
            pressed = self.pygame.key.get_pressed()
            sticks.from_keys({name for name, code in self.flying_keys.items() if pressed[code]}, dt)
            self.switches = (sticks.armed, sticks.mode, False, sticks.hold)
            return
        sticks.from_joystick(reading)
        if (sticks.armed, sticks.mode, reading.arm_refused, sticks.hold) != self.switches:
            hold = ", throttle hold" if sticks.hold else ""
            ui.message = (
                "arm refused: collective up (lower it to zero pitch or below)" if reading.arm_refused
                else f"{'armed' if sticks.armed else 'disarmed (throttle hold)'}, {sticks.mode_name}{hold}"
            )  # fmt: skip
            self.send(f"note transmitter (joystick) {ui.message}")
        self.switches = (sticks.armed, sticks.mode, reading.arm_refused, sticks.hold)

    def _draw(self) -> None:
        """The newest snapshot drawn; a scripted key pressed; the first frame starts the flight."""
        ui = self.ui
        self.snapshot = snapshot = self.reader.read()
        if snapshot.vehicles:
            ui.focus %= len(snapshot.vehicles)
        ui.message = self.io_switch.outcome(snapshot, time.monotonic()) or ui.message
        key = self.script.update(snapshot.tick, snapshot.sim_time_s, snapshot.paused, time.monotonic())
        if key is not None:
            press_key(self.pygame, key)  # handled with the next frame's events, as a key from the keyboard
        if self.sender is not None:
            ui.radio = self.sender.telemetry_line()
        self.renderer.draw(self.screen, snapshot, ui, time.monotonic())
        self.pygame.display.flip()
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
            # drawing is for people, the loop has deadlines: when both want a core, the loop goes first
            _flying_priority()
            self.send("shown")  # the flight starts


class IoSwitchWatch:
    """After ``T`` or ``I``: what came of it, as the view says it: the mode the loop switched to
    ("I/O: blocking"), or why it stayed ("I/O stays threaded: ..."), from the snapshots that follow."""

    WATCH_S = 3.0  # a switch happens at the next tick: later, a change is not this key's (a signal's, say)

    def __init__(self) -> None:
        self._from: str | None = None
        self._refusal_seen = ""
        self._until = 0.0

    def asked(self, snapshot: Any, now: float) -> None:
        """``T`` or ``I`` pressed (again: the loop may switch there and back before a snapshot shows it)."""
        if self._from is None or now > self._until:
            self._from, self._refusal_seen = snapshot.io_mode, _last_refusal(snapshot)
        self._until = now + self.WATCH_S

    def outcome(self, snapshot: Any, now: float) -> str | None:
        """The message once the switch happened or was refused (once), else None."""
        if self._from is None:
            return None
        if now > self._until:
            self._from = None
            return None
        if snapshot.io_mode != self._from:
            self._from = None
            return f"I/O: {snapshot.io_mode}"
        refusal = _last_refusal(snapshot)
        if refusal and refusal != self._refusal_seen:
            stayed, self._from = self._from, None
            return f"I/O stays {stayed}: {refusal.split('mode_refused: ', 1)[-1]}"
        return None


def _last_refusal(snapshot: Any) -> str:
    return next((event for event in reversed(snapshot.events) if "mode_refused" in event), "")


def _start_up_priority() -> None:
    """Niceness 19 while the view starts: the flight has not begun (it waits for the first frame),
    and at SCHED_IDLE a busy machine could keep the view from ever showing one."""
    with contextlib.suppress(OSError):
        os.nice(19 - os.nice(0))


def _flying_priority() -> None:
    """SCHED_IDLE (Linux) once the flight starts: this process then runs only on a core nothing
    else wants.  Measured with ``heli-sim bench view``: at niceness 19 the loop's p99 lateness
    doubled with the view open, at SCHED_IDLE it does not move.  The price: on a machine busy with
    other work the view draws less often.  Where the policy is missing, niceness 19 stays."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def save_atomically(pygame, surface, path: str) -> None:
    """Save ``surface`` as the image ``path`` names, whole or not at all: it is written beside it
    first and renamed, so a view ended while saving (a busy machine) leaves no broken file."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.{os.getpid()}.partial{os.path.splitext(name)[1]}")
    try:
        pygame.image.save(surface, partial)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


def press_key(pygame, key: str) -> None:
    """Post a key press (from the script) as if it came from the keyboard; "quit" closes the window."""
    if key == "quit":
        pygame.event.post(pygame.event.Event(pygame.QUIT))
    else:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(key)))


if __name__ == "__main__":
    sys.exit(main())
