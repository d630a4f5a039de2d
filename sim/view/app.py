"""The view process: ``python -m sim.view.app --shm NAME --commands-fd N [...]`` (started by ``ViewLink``).

Main thread only for pygame: read the newest snapshot, handle events, draw, flip, ~60 times a
second.  Keys that concern the flight (T, G, P, R, Space, Esc, closing the window) are written
to the command pipe as one word per line; keys that concern only the picture (1, 2, Tab, F1) stay
here.  With ``--rc-fd`` the keyboard (or a joystick) is the pilot: a ``CrsfSender`` thread writes
CRSF frames into the simulator's RC port.  When the flight ends (the snapshot says
``finished``) the view draws its last frame, saves ``--screenshot`` if asked, and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

__all__ = ["main"]

_FPS = 60
_KEY_COMMANDS = {
    "t": "toggle_io",
    "i": "toggle_asyncio",
    "g": "cpu_thread",
    "p": "cpu_process",
    "r": "reset",
    "space": "pause",
}
_KEY_MESSAGES = {"t": "I/O mode toggled", "i": "asyncio I/O toggled", "g": "CPU helper thread",
                 "p": "CPU helper process", "r": "reset", "space": "pause"}  # fmt: skip
# function keys inject faults (sim.faults.KEY_PRESETS); a second press clears the fault
_FAULT_KEYS = {"f2": "rc_silence", "f3": "byte_loss", "f4": "corrupt", "f5": "unplug", "f6": "backpressure",
               "f7": "latency", "f8": "pace", "f9": "loop_delay"}  # fmt: skip
_FLYING_KEYS = {"left", "right", "up", "down", "a", "d", "w", "s"}
_FINISH_WAIT_S = 3.0  # after asking to quit, how long to wait for the simulator to finish the flight
SCRIPT_ENV = "HELI_SIM_VIEW_SCRIPT"  # "1.0:t,2.5:g,4:escape": keys pressed at seconds of flight (demos, tests)


def parse_script(text: str) -> list[tuple[float, str]]:
    """``"1.0:t,2.5:g"`` -> ``[(1.0, "t"), (2.5, "g")]``, sorted by time; ``ValueError`` names the bad item."""
    script = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        at, sep, key = item.partition(":")
        try:
            script.append((float(at), key.strip()))
        except ValueError:
            raise ValueError(f"{SCRIPT_ENV}: {item!r} is not SECONDS:KEY (for example 1.5:t)") from None
        if not sep or not key.strip():
            raise ValueError(f"{SCRIPT_ENV}: {item!r} is not SECONDS:KEY (for example 1.5:t)")
    return sorted(script)


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
    # drawing is for people, the loop has deadlines: when both want a core, the loop goes first
    _lower_priority()
    import pygame  # the only process that imports it

    from sim.view.render import Renderer, UiState
    from sim.view.shared import SnapshotReader
    from sim.view.sticks import CrsfSender, JoystickMap, StickState

    width, height = (int(v) for v in args.size.lower().split("x"))
    options = json.loads(args.joystick)
    given = options.get("joystick", {})
    mapping = JoystickMap(**{key: tuple(v) if isinstance(v, list) else v for key, v in given.items()})
    script = parse_script(os.environ.get(SCRIPT_ENV, ""))
    sticks = StickState(channel_map=tuple(options.get("channel_map", (1, 2, 3, 4, 5, 6))))
    commands = os.fdopen(args.commands_fd, "wb", buffering=0)

    def send(command: str) -> None:
        with contextlib.suppress(BrokenPipeError):  # the simulator has gone: closing follows
            commands.write(command.encode() + b"\n")

    def switch(key: str) -> None:
        """The transmitter's arm switch (E) or mode switch (M); recorded as an event."""
        if sender is None:  # a real radio (or an in-process pilot) holds the sticks
            ui.message = f"the sticks come from {reader.last.rc_source or 'the pilot'}, not this keyboard"
            return
        if key == "e":
            sticks.toggle_arm()
            ui.message = "armed" if sticks.armed else "disarmed (throttle hold)"
        else:
            sticks.next_mode()
            ui.message = f"flight mode: {sticks.mode_name}"
        send(f"note transmitter {ui.message}")

    pygame.display.init()
    pygame.font.init()
    pygame.joystick.init()
    screen = pygame.display.set_mode((width, height), pygame.RESIZABLE)
    flying_keys = {name: pygame.key.key_code(name) for name in _FLYING_KEYS}
    pygame.display.set_caption("heli-sim")
    reader = SnapshotReader(args.shm)
    renderer = Renderer((width, height))
    ui = UiState()
    sender = None
    if args.rc_fd is not None:
        sender = CrsfSender(args.rc_fd, sticks)
        sender.start()
    joystick = pygame.joystick.Joystick(0) if pygame.joystick.get_count() else None
    clock = pygame.time.Clock()
    simulator = os.getppid()
    flight_started: float | None = None  # the first tick seen: the script's time zero
    frames, first_frame_at = 0, None
    quit_asked: float | None = None
    try:
        while True:
            dt = clock.tick(_FPS) / 1000.0
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    quit_asked = quit_asked or time.monotonic()
                    send("quit")
                elif event.type == pygame.JOYBUTTONDOWN:
                    if event.button in (mapping.arm_button, mapping.mode_button):
                        switch("e" if event.button == mapping.arm_button else "m")
                elif event.type == pygame.VIDEORESIZE:
                    screen = pygame.display.set_mode(event.size, pygame.RESIZABLE)
                elif event.type == pygame.KEYDOWN:
                    name = pygame.key.name(event.key)
                    if name in _KEY_COMMANDS:
                        send(_KEY_COMMANDS[name])
                        ui.message = _KEY_MESSAGES[name]
                    elif name in _FAULT_KEYS:
                        send(f"fault {_FAULT_KEYS[name]}")
                        ui.message = f"fault: {_FAULT_KEYS[name].replace('_', ' ')} (again to clear)"
                    elif name == "escape":
                        quit_asked = quit_asked or time.monotonic()
                        send("quit")
                    elif name in ("1", "2"):
                        ui.camera = "pilot" if name == "1" else "chase"
                        send(f"note camera {ui.camera}")
                    elif name == "tab":
                        ui.focus += 1
                        send(f"note focus vehicle {ui.focus}")
                    elif name == "f1":
                        ui.help = not ui.help
                        send(f"note help {'shown' if ui.help else 'hidden'}")
                    elif name in ("e", "m"):
                        switch(name)
            pressed = pygame.key.get_pressed()
            held = {name for name, code in flying_keys.items() if pressed[code]}
            if joystick is not None:
                sticks.from_joystick([joystick.get_axis(i) for i in range(joystick.get_numaxes())], mapping)
            else:
                sticks.from_keys(held, dt)
            snapshot = reader.read()
            if snapshot.vehicles:
                ui.focus %= len(snapshot.vehicles)
            if flight_started is None and snapshot.tick > 0:
                flight_started = time.monotonic()
            while script and flight_started is not None and time.monotonic() - flight_started >= script[0][0]:
                press_key(pygame, script.pop(0)[1])
            renderer.draw(screen, snapshot, ui, time.monotonic())
            pygame.display.flip()
            frames += 1
            if first_frame_at is None:
                first_frame_at = time.monotonic()
                send("shown")
            if os.getppid() != simulator:  # the simulator died without closing us: nothing left to show
                return 1
            if snapshot.finished:
                if args.screenshot:
                    pygame.image.save(screen, args.screenshot)
                return 0
            if quit_asked is not None and time.monotonic() - quit_asked > _FINISH_WAIT_S:
                return 0  # the simulator did not answer: close anyway
    finally:
        if first_frame_at is not None:
            send(f"frames {frames} {time.monotonic() - first_frame_at:.3f}")
        if sender is not None:
            sender.stop()
            os.close(args.rc_fd)
        reader.close()
        commands.close()
        pygame.quit()


def _lower_priority() -> None:
    """Drawing is for people, the loop has deadlines: when both want a core, the loop goes first.

    SCHED_IDLE (Linux): this process runs only on a core nothing else wants; where that policy is
    not available, the lowest niceness short of it."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(10)


def press_key(pygame, key: str) -> None:
    """Post a key press (from the script) as if it came from the keyboard; "quit" closes the window."""
    if key == "quit":
        pygame.event.post(pygame.event.Event(pygame.QUIT))
    else:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(key)))


if __name__ == "__main__":
    sys.exit(main())
