"""CRC-8/DVB-S2, the checksum CRSF and MSP v2 both use (polynomial 0xD5, init 0, MSB first, no final
xor; the check value of ``b"123456789"`` is 0xBC), one table for both codecs."""

from __future__ import annotations

__all__ = ["CRC8_DVB_S2_TABLE", "crc8_dvb_s2"]

_POLY = 0xD5


def _table() -> bytes:
    table = bytearray(256)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[byte] = crc
    return bytes(table)


CRC8_DVB_S2_TABLE = _table()


def crc8_dvb_s2(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-8/DVB-S2 of ``data``, continuing from ``crc`` (0 for a fresh one)."""
    table = CRC8_DVB_S2_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc
