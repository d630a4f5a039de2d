"""Real flight-controller firmware in the loop: the firmware flies, heli-sim is its physics.

- ``config``: the ``[fc]`` table (which firmware, where it talks, wiring, sensors);
- ``firmwares``: the protocols heli-sim speaks (ArduPilot SITL's JSON interface), one entry each;
- ``link``: the UDP socket and the lock-step bookkeeping (lost, repeated, restarted frames);
- ``outputs``: the firmware's output pulses as the helicopter's servo and motor commands;
- ``rc``: heli-sim's pilot as the firmware's radio channels;
- ``sensors``: the IMU, position, wind, rangefinder and battery the firmware reads;
- ``loop``: the lock-step loop, in which the firmware's frames drive simulated time.
"""
