"""Serial wire protocols of the simulator: pure frame codecs, no ports, threads or clocks.

``sim.protocols.hsf`` is heli-sim's own framing ("HSF"), the default on the virtual serial ports
between heli-sim and its own device emulators; CRSF, SBUS, iBUS, MSP, Maestro and MAVLink are the
ones real devices speak.  Modules here import nothing from the rest of ``sim``.
"""
