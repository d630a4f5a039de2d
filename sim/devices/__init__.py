"""Far-end emulators: the devices on the other side of a port, each run as its own process.

``heli-sim device KIND --port PORT`` runs one by hand; a ``virtual`` port starts one on the far
end of a pty pair.  Kinds: ``transmitter`` (stick frames at a fixed rate, from a pilot),
``servo`` (a servo board: takes commands, acks after a latency), ``gcs`` (a ground station:
takes telemetry), ``link`` (the seed's slow device: replies after ``--latency-ms``).
"""
