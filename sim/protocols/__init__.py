"""Serial wire protocols of the simulator: pure frame codecs, no ports, threads or clocks.

``sim.protocols.hsf`` is heli-sim's own framing ("HSF"), used on virtual serial ports until the
real RC protocols arrive.  Modules here import nothing from the rest of ``sim``.
"""
