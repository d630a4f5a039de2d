"""List the real serial ports of this machine and guess what is plugged in (``heli-sim ports``).

The guess comes from the adapters' USB VID:PID numbers (``_KNOWN``: each chip maker's own IDs,
as the Linux usb-serial drivers list them), with the known pitfall of each adapter as a hint.
ptys and socat pairs are never listed: the OS does not report them (``heli-sim vports`` makes and
prints pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

__all__ = ["PortInfo", "guess_device", "list_serial_ports", "port_info"]

_FTDI_HINT = (
    "FTDI latency timer defaults to 16 ms (frames arrive in 16 ms clumps): set it to 1 ms "
    "(echo 1 > /sys/bus/usb-serial/devices/ttyUSBn/latency_timer, a udev rule, or set_low_latency_mode(True))"
)
_BRLTTY_HINT = "brltty may grab it and the port vanishes (apt remove brltty, or mask its udev rules)"
_CP2102_HINT = "a CP2102 (non-N) cannot do 420000 baud (CRSF): the port opens without error, the bytes are garbage"
_STM32_HINT = (
    "ModemManager may probe it with AT commands for seconds after plug-in "
    '(udev: ENV{ID_MM_DEVICE_IGNORE}="1" for 0483:5740)'
)
# CP210x chips with a fixed baud-rate table (from the Linux cp210x driver); CP2102N, CP2104 and CP2105 do 420000
_CP210X_FIXED_RATES = ("CP2101", "CP2102", "CP2103", "CP2108")

# (vid, pid) -> likely device, hint
_KNOWN: dict[tuple[int, int], tuple[str, str]] = {
    (0x0403, 0x6001): ("FTDI FT232R USB-serial adapter", _FTDI_HINT),
    (0x0403, 0x6015): ("FTDI FT-X USB-serial adapter", _FTDI_HINT),
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-serial adapter", ""),  # hint depends on the chip, below
    (0x1A86, 0x7523): ("WCH CH340 USB-serial adapter", f"{_BRLTTY_HINT}; check 420000/100000 baud with a loopback"),
    (0x0483, 0x5740): ("STM32 virtual COM port: a flight controller, or a radio in USB serial mode", _STM32_HINT),
    (0x067B, 0x2303): ("Prolific PL2303 USB-serial adapter", ""),
}


@dataclass(frozen=True)
class PortInfo:
    """One serial port as ``heli-sim ports`` shows it; strings are empty when unknown."""

    path: str
    vid_pid: str  # lowercase hex "10c4:ea60"; empty if not a USB device
    description: str
    manufacturer: str
    serial_number: str
    guess: str  # the likely device
    hint: str  # a known pitfall of that device, or empty


def guess_device(vid: int | None, pid: int | None, description: str) -> tuple[str, str]:
    """The likely device and a hint for a USB ``vid``:``pid`` (None: not USB); ``description`` refines it."""
    if vid is None or pid is None:
        return "not a USB device (on-board or legacy serial port)", ""
    known = _KNOWN.get((vid, pid))
    if known is None:
        return f"unknown USB device {vid:04x}:{pid:04x}", ""
    guess, hint = known
    if (vid, pid) == (0x10C4, 0xEA60):
        chip = description.upper()
        if any(f"{name}N" in chip for name in _CP210X_FIXED_RATES):
            hint = _BRLTTY_HINT
        elif any(name in chip for name in _CP210X_FIXED_RATES):
            hint = f"{_CP2102_HINT}; {_BRLTTY_HINT}"
        elif any(name in chip for name in ("CP2104", "CP2105")):
            hint = _BRLTTY_HINT
        else:
            hint = f"check the chip: {_CP2102_HINT}; {_BRLTTY_HINT}"
    return guess, hint


def port_info(port: ListPortInfo) -> PortInfo:
    """A pyserial ``ListPortInfo`` as a ``PortInfo`` (pure; pyserial's "n/a" becomes empty)."""
    description = "" if port.description in (None, "n/a") else port.description
    usb = port.vid is not None and port.pid is not None
    guess, hint = guess_device(port.vid, port.pid, f"{description} {port.product or ''}")
    return PortInfo(
        path=port.device,
        vid_pid=f"{port.vid:04x}:{port.pid:04x}" if usb else "",
        description=description,
        manufacturer=port.manufacturer or "",
        serial_number=port.serial_number or "",
        guess=guess,
        hint=hint,
    )


def list_serial_ports() -> list[PortInfo]:
    """The serial ports the OS reports now, sorted by path (may be empty; never lists ptys)."""
    return sorted((port_info(port) for port in list_ports.comports()), key=lambda info: info.path)
