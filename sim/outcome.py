"""Whether a finished flight went as it should: the failures its run summary records.

``fly`` prints one line naming them and ends with exit status 3 (``EXIT_FLIGHT_FAILED``) when
there are any, so a script never reads a broken flight as a good one.  A failure is a port whose
state is ``failed`` (it could not go on), a vehicle that ``diverged`` (a non-finite state or
command), a user controller that failed (``controller_failed``: the built-in one took that
vehicle over), or a flight log that stopped early (``log_stopped``: a full disk).
"""

from __future__ import annotations

__all__ = ["FAILURE_EVENTS", "flight_failures"]

FAILURE_EVENTS = ("controller_failed", "log_stopped")  # event kinds that make a flight a failure


def flight_failures(summary: dict) -> list[str]:
    """One short phrase per failure recorded in a ``FlightLoop.summary()`` (empty: all went well)."""
    failures = [f"port {port['name']} failed" for port in summary.get("ports", []) if port.get("state") == "failed"]
    failures += [
        f"vehicle {vehicle['id']} diverged" for vehicle in summary.get("vehicles", []) if vehicle.get("diverged")
    ]
    seen: set[str] = set()
    for event in summary.get("events", []):
        kind = event.get("kind")
        if kind in FAILURE_EVENTS and event.get("detail") not in seen:
            seen.add(event.get("detail"))
            failures.append(f"{kind.replace('_', ' ')}: {event.get('detail')}")
    return failures
