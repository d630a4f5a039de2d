"""USB joysticks, and radios in USB joystick (HID) mode, as the pilot's transmitter.

``sticks`` turns raw axes and buttons into stick positions and switch levels (pure, no pygame);
``device`` opens a joystick through pygame, follows it across unplug and replug and lists the
connected ones; ``virtual`` mirrors a JSON description into an SDL virtual joystick (how the
tests, and anyone without a joystick, drive the same code path); ``pilot`` is the emulated
transmitter's pilot that flies by a joystick.  The view's keyboard transmitter, the headless
``--pilot joystick[:N]``, ``heli-sim calibrate --joystick`` and ``heli-sim ports`` all read
joysticks through this package.
"""
