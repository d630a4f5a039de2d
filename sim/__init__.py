"""heli-sim runtime: the real-time loop, ports and protocols, pilots, the view, configuration,
statistics and the CLI.

Everything with time, threads, processes, files, ports and pixels lives here; the vehicle
itself is the pure ``heli`` package, which never imports from ``sim``.
"""

__version__ = "0.1.0"
