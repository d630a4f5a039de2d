"""A port served by the asyncio event loop never blocks that loop on its exchange lock: while an
earlier exchange (an I/O thread that would not stop) still holds it, the loop serves its other
work, and the port says it is stuck after the lock's timeout."""

from __future__ import annotations

import asyncio
import os

from sim.ports.codecs import make_codec
from sim.ports.events import EventLog
from sim.ports.roles import RcInPort
from sim.ports.transport import open_transport


def test_a_held_lock_is_waited_for_on_the_event_loop_without_blocking_it():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    events = EventLog()
    port = RcInPort("rc-in", lambda: open_transport(path), events, url=path, codec=make_codec("hsf"))
    port.open()
    port.backend = object()  # served by an event loop (asyncio mode); no line attached: the lock comes first

    async def exchange_beside_other_work() -> tuple[object, int]:
        ticks = 0

        async def other_work() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        other = asyncio.create_task(other_work())
        try:
            return await port.exchange_async(None), ticks
        finally:
            other.cancel()

    port._lock.acquire()  # an earlier exchange that never ended
    try:
        result, ticks = asyncio.run(exchange_beside_other_work())
    finally:
        port._lock.release()
        port.backend = None
        port.close()
        os.close(master)
        os.close(slave)
    assert result is None
    assert ticks > 20  # the loop went on while the lock was held (blocked, it would tick once at most)
    assert [event.kind for event in events.drain()] == ["port_stuck"]
