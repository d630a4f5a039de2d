"""``sim.stopping`` and the loop's long waits, in this process with real signals: what a signal does
before and after a command owns something, that a second one changes nothing, that the handlers
come back; that a stop request cuts an injected stall and a long physics catch-up short; and the
one-line wording of running out of resources."""

from __future__ import annotations

import errno
import os
import signal
import time

import pytest

from sim import stopping
from sim.config import FaultSpec, FlightConfig, apply_overrides
from sim.entry import out_of_resources
from sim.faults import FaultInjector
from sim.flight import Flight
from sim.loop import FlightLoop, ManualClock, MonotonicClock
from tests.conftest import heli


def deliver(sig: int) -> None:
    """Send ``sig`` to this process; its handler has run when this returns (main thread)."""
    os.kill(os.getpid(), sig)
    for _ in range(100):  # Python runs pending handlers between bytecodes: these are enough
        pass


def test_before_owning_a_signal_raises_where_the_main_thread_is():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(stopping.Terminated) as caught, stopping.handling_stops():
        deliver(signal.SIGTERM)
    assert caught.value.status == 143 and not isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is previous and stopping.requested() is None


def test_once_owning_a_signal_is_a_request_and_a_second_changes_nothing():
    told: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    with stopping.handling_stops(told.append):
        stopping.owning()
        deliver(signal.SIGINT)
        deliver(signal.SIGTERM)
        assert stopping.requested() == signal.SIGINT and told == [signal.SIGINT]
        assert stopping.time_left(10.0) > 9.0
        with pytest.raises(stopping.Interrupted) as caught:
            stopping.check()
    assert caught.value.status == 130 and isinstance(caught.value, KeyboardInterrupt)  # Ctrl-C code still sees it
    assert stopping.requested() is None and stopping.time_left(1.0) is None
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_scope_inside_a_scope_leaves_the_outer_one_as_it_was():
    with stopping.handling_stops():
        stopping.owning()
        deliver(signal.SIGTERM)
        with pytest.raises(stopping.Interrupted), stopping.handling_stops():  # not owning yet: it raises
            deliver(signal.SIGINT)
        assert stopping.requested() == signal.SIGTERM


def a_loop(clock, duration_s: float, **settings) -> FlightLoop:
    config = apply_overrides(FlightConfig(), start="hover", **settings)
    flight = Flight(heli("xcell60").config, config)
    return FlightLoop(flight, clock, loop_hz=500, duration_s=duration_s, catchup_limit_s=config.flight.catchup_limit_s)


@pytest.fixture
def alarm():
    """``alarm(seconds, loop)``: SIGALRM after ``seconds`` asks ``loop`` to stop (a signal, as Ctrl-C is)."""
    previous = signal.getsignal(signal.SIGALRM)

    def arm(seconds: float, loop: FlightLoop) -> None:
        signal.signal(signal.SIGALRM, lambda *_: loop.request_stop("SIGALRM"))
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_stop_ends_a_long_physics_catch_up_between_chunks(alarm):
    """A 9 s stall (on a hand-driven clock) leaves 9,000 steps to catch up: seconds of CPU.  The
    signal 20 ms into them ends the catch-up; the steps taken are the ones the tick records."""
    loop = a_loop(ManualClock(), 0.0, catchup_limit_s=10.0)

    def stall(loop: FlightLoop) -> None:
        if loop.ticks == 5:
            loop.clock.advance(9.0)
            alarm(0.02, loop)

    loop.before_tick = stall
    loop.run()
    assert loop.stop_reason == "SIGALRM" and loop.ticks == 6
    assert 10 < loop.flight.steps < 9000 - 500  # five ticks flown, then most of the catch-up never ran
    assert loop.flight_time_s == loop.flight.sim_time_s  # no reset: the faults' clock is the flight's


@pytest.mark.realtime
def test_a_stop_cuts_an_injected_ten_second_stall_short(alarm):
    """The reference is the stall itself: the flight with it would last over 10 s."""
    loop = a_loop(MonotonicClock(), 0.0)
    loop.faults = FaultInjector(
        (FaultSpec(kind="loop_delay", delay_ms=10_000.0, every_s=100.0, start_s=0.1),), {}, {}, {}
    )
    started = time.monotonic()
    alarm(0.5, loop)
    loop.run()
    assert loop.stop_reason == "SIGALRM"
    assert [e.kind for e in loop.events if e.kind.startswith("fault")] == ["fault_on"]  # the stall had begun
    assert time.monotonic() - started < 10.0 / 2


def test_faults_act_at_simulated_time_not_at_the_wall_clock():
    """A 2 s stall at 0.1 s of flight, with catch-up capped at 0.5 s: the world skips 1.5 s.  A
    fault due at 1.0 s of flight comes at 1.0 s of simulated time, 2.5 s of wall clock later."""
    loop = a_loop(ManualClock(), 1.5, catchup_limit_s=0.5)
    faults = (
        FaultSpec(kind="loop_delay", delay_ms=2000.0, every_s=100.0, start_s=0.1, duration_s=0.05),
        FaultSpec(kind="rc_silence", start_s=1.0, duration_s=0.2),
    )
    loop.faults = FaultInjector(faults, {}, {}, {"rc-in": "rc-in"})
    loop.run()
    (on,) = [e for e in loop.faults.history if e.spec.kind == "rc_silence"]
    assert on.start_s == pytest.approx(1.0, abs=0.003)
    (event,) = [e for e in loop.events if e.kind == "fault_on" and "RC" in e.detail]
    assert event.t_s == pytest.approx(1.0 + 1.5, abs=0.01)  # the wall clock: 1.5 s later than the flight


@pytest.mark.parametrize(
    ("error", "fragments"),
    [
        (OSError(errno.EMFILE, "Too many open files"), ["too many open files", "ulimit -n"]),
        (OSError(errno.ENFILE, "File table overflow"), ["table of open files"]),
        (BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"), ["processes or threads", "ulimit -u"]),
        (MemoryError(), ["out of memory", "ulimit -v"]),
        (RuntimeError("can't start new thread"), ["threads", "ulimit -u"]),
        (ImportError("libx.so: failed to map segment from shared object"), ["out of memory"]),
    ],
)
def test_running_out_of_a_resource_is_said_in_one_line(error, fragments):
    error.add_note("starting the view")
    line = out_of_resources(error)
    assert line is not None and "\n" not in line and "while starting the view" in line
    for fragment in fragments:
        assert fragment in line


@pytest.mark.parametrize("error", [OSError(errno.ENOENT, "No such file"), RuntimeError("other"), ImportError("no")])
def test_other_errors_are_not_taken_for_exhaustion(error):
    assert out_of_resources(error) is None


# a stand-in for pyserial (found first through PYTHONPATH) whose import is hit by SIGTERM inside a
# descriptor's __set_name__: Python 3.11 wraps what that hook raises in a RuntimeError, as it did
# when an emulator being shut down was still importing its dataclasses
_SIGNAL_IN_SET_NAME = """\
import os, signal

class Hook:
    def __set_name__(self, owner, name):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass

class Holder:
    field = Hook()
"""


def test_the_stop_behind_a_wrapped_error_is_found():
    try:
        try:
            raise stopping.Terminated(signal.SIGTERM)
        except stopping.Stopped as stop:
            raise RuntimeError("Error calling __set_name__") from stop
    except RuntimeError as wrapped:
        assert stopping.stop_in(wrapped).status == 143
    assert stopping.stop_in(RuntimeError("nothing behind it")) is None


_SIGNAL_SWALLOWED_BY_AN_EXTENSION = """
import os, signal

try:  # as an extension module's import does: the signal's exception is dropped, another raised
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):
        pass
except BaseException:
    pass
raise ImportError("PyCapsule_Import could not import module 'datetime'")
"""


@pytest.mark.parametrize(
    "stand_in",
    [_SIGNAL_IN_SET_NAME, _SIGNAL_SWALLOWED_BY_AN_EXTENSION],
    ids=["wrapped by an import hook", "turned into an ImportError"],
)
def test_a_signal_an_import_wraps_or_replaces_still_ends_the_command_quietly(tmp_path, stand_in):
    import subprocess
    import sys

    (tmp_path / "serial.py").write_text(stand_in)
    result = subprocess.run([sys.executable, "-m", "sim", "device", "servo", "--port", "/dev/null"], cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 143, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(("command", "started", "finished"),
                         [(["tour", "--quick", "--no-pause", "--headless", "--step", "devices"], "measuring...", "-> "),
                          (["bench", "--quick", "io"], "machine:", "  io ")], ids=["tour", "bench"])  # fmt: skip
def test_a_signal_ends_the_tour_and_a_benchmark_whose_flights_run_in_process(command, started, finished):
    """Their flights run without the flight command's stop handling: the signal still ends the
    whole command (143) in the middle of its step, not after it (its result lines never come)."""
    import sys

    from tests.helpers import PipeLines, running

    with running([sys.executable, "-u", "-m", "sim", *command]) as proc:
        PipeLines(proc.stdout.fileno()).wait_for(started, timeout_s=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert finished not in out.decode(), out.decode()
    assert "Traceback" not in err.decode(), err.decode()


def test_a_stop_python_could_not_pass_on_is_not_printed_but_other_errors_are(capsys, monkeypatch):
    """A signal during a weakref callback (the import system's module-lock cleanup) raises
    ``Stopped`` where Python can only print "Exception ignored"; the stop is recorded anyway, so
    heli-sim's hook keeps quiet about that one, and only that one."""
    import sys

    from sim import stopping

    class RaisesWhenCollected:
        def __init__(self, error: BaseException):
            self.error = error

        def __del__(self) -> None:  # Python cannot pass this on: it goes to sys.unraisablehook
            raise self.error

    monkeypatch.setattr(sys, "unraisablehook", stopping._quiet_about_stops)
    thing = RaisesWhenCollected(stopping.stopped(signal.SIGTERM))
    del thing
    assert capsys.readouterr().err == ""
    thing = RaisesWhenCollected(ValueError("a real bug"))
    del thing
    assert "ValueError: a real bug" in capsys.readouterr().err
