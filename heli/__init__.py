"""The vehicle: a numpy flight model of RC helicopters and their flybarless flight controller.

Pure by design: numpy and the standard library's maths only; no serial ports, pygame, threads,
clocks or files.  Time comes in as ``dt`` seconds, state in and state out, with a leading
batch axis of N vehicles.  Entry points: ``heli.dynamics.step``, ``heli.control.control``,
``heli.trim.solve_hover_trim``, ``heli.initial``.
"""
