"""``heli-sim ports`` and ``sim.ports.listing``: the VID:PID guesses, listing this machine, the JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from serial.tools.list_ports_common import ListPortInfo

from sim.cli.ports import NO_PORTS, to_json, to_text
from sim.ports.listing import PortInfo, guess_device, list_serial_ports, port_info

JSON_KEYS = {"path", "vid_pid", "description", "manufacturer", "serial_number", "guess", "hint"}


@pytest.mark.parametrize(
    ("vid", "pid", "description", "guess_has", "hint_has"),
    [
        (0x0403, 0x6001, "FT232R USB UART", "FT232R", "16 ms"),
        (0x0403, 0x6015, "FT231X USB UART", "FT-X", "1 ms"),
        (0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller", "CP210x", "cannot do 420000"),
        (0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller", "CP210x", "brltty"),
        (0x1A86, 0x7523, "USB Serial", "CH340", "brltty"),
        (0x0483, 0x5740, "STM32 Virtual ComPort", "flight controller", "ModemManager"),
        (0x0483, 0x5740, "", "radio in USB serial mode", "ModemManager"),
        (0x067B, 0x2303, "USB-Serial Controller", "PL2303", ""),
    ],
)
def test_guess_device_knows_the_table(vid, pid, description, guess_has, hint_has):
    guess, hint = guess_device(vid, pid, description)
    assert guess_has in guess
    assert hint_has in hint


def test_a_cp2102n_gets_no_baud_warning_and_an_unnamed_cp210x_a_conditional_one():
    assert "420000" not in guess_device(0x10C4, 0xEA60, "CP2102N USB to UART Bridge Controller")[1]
    assert "420000" not in guess_device(0x10C4, 0xEA60, "CP2104 USB to UART Bridge Controller")[1]
    assert guess_device(0x10C4, 0xEA60, "USB Serial")[1].startswith("check the chip")


def test_unknown_and_non_usb_devices_are_said_so_without_a_hint():
    assert guess_device(0x1234, 0xABCD, "Gadget") == ("unknown USB device 1234:abcd", "")
    guess, hint = guess_device(None, None, "ttyS0")
    assert "not a USB device" in guess and hint == ""


def test_listing_this_machine_does_not_raise():
    ports = list_serial_ports()  # there may be none
    assert all(isinstance(port, PortInfo) and port.path.startswith("/dev/") for port in ports)
    assert not any(port.path.startswith("/dev/pts/") for port in ports)


def test_the_cli_prints_valid_json_and_exits_0():
    done = subprocess.run([sys.executable, "-m", "sim", "ports", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert isinstance(listed, list)
    assert all(set(entry) == JSON_KEYS for entry in listed)


# USB adapters cannot be produced virtually (ptys are never listed), so these build pyserial's
# ListPortInfo by hand, filled the way list_ports_linux fills it from sysfs.


def usb_adapter() -> ListPortInfo:
    info = ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    info.vid, info.pid = 0x10C4, 0xEA60
    info.serial_number = "0001"
    info.manufacturer = "Silicon Labs"
    info.product = "CP2102N USB to UART Bridge Controller"
    info.description = info.product
    return info


def test_a_listed_usb_adapter_becomes_json_with_the_contract_keys():
    port = port_info(usb_adapter())
    assert port == PortInfo(
        path="/dev/ttyUSB0",
        vid_pid="10c4:ea60",
        description="CP2102N USB to UART Bridge Controller",
        manufacturer="Silicon Labs",
        serial_number="0001",
        guess="Silicon Labs CP210x USB-serial adapter",
        hint=guess_device(0x10C4, 0xEA60, "CP2102N")[1],
    )
    (entry,) = json.loads(to_json([port]))
    assert set(entry) == JSON_KEYS
    assert entry["vid_pid"] == "10c4:ea60" and "brltty" in entry["hint"]


def test_a_non_usb_port_has_empty_fields_not_n_a():
    port = port_info(ListPortInfo("/dev/ttyS0", skip_link_detection=True))  # pyserial says "n/a"
    assert (port.vid_pid, port.description, port.manufacturer, port.serial_number) == ("", "", "", "")


def test_text_output_shows_each_port_and_explains_an_empty_list():
    text = to_text([port_info(usb_adapter())])
    assert text.splitlines()[0].startswith("/dev/ttyUSB0  (10c4:ea60, CP2102N")
    assert "likely: Silicon Labs CP210x" in text and "hint:" in text
    assert to_text([]) == NO_PORTS
    assert "heli-sim vports" in NO_PORTS and "never listed" in NO_PORTS
