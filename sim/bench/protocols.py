"""``heli-sim bench protocols``: encode and decode rates of each RC protocol's frames, and how
many a decoder recovers from a stream with garbage in it."""

from __future__ import annotations

import numpy as np

from sim.bench.common import Result, median_time
from sim.ports.codecs import protocols_for

__all__ = ["bench_protocols"]


def _protocol_stream(protocol: str, frames: int, rng: np.random.Generator) -> tuple[list[bytes], object]:
    """``frames`` encoded stick frames of ``protocol`` (varying sticks) and a decoder factory."""
    from sim.ports.codecs import make_codec

    host, device = make_codec(protocol, "host"), make_codec(protocol, "device")
    encoded = []
    for i in range(frames):
        sticks = tuple(float(v) for v in rng.integers(1000, 2001, 16))
        encoded.append(device.encode(device.stick_message(0, sticks), i % 65536))
    return encoded, host.new_decoder


def bench_protocols(quick: bool = False) -> list[Result]:
    """Decode throughput per protocol through the port's codec: from a byte stream in 4 KiB chunks,
    in 64-byte chunks (a USB full-speed packet), and with 30 % random garbage interleaved between
    frames (and how many frames the garbage cost)."""
    results: list[Result] = []
    rng = np.random.default_rng(2026)
    count = 2_000 if quick else 20_000
    repeats = 3 if quick else 5
    for protocol in protocols_for("rc-in"):
        frames, new_decoder = _protocol_stream(protocol, count, rng)
        clean = b"".join(frames)
        garbage_bytes = int(len(clean) * 0.3 / 0.7)
        cuts = np.sort(rng.integers(0, count, garbage_bytes // 8))  # garbage in runs of about 8 bytes
        noise = rng.integers(0, 256, garbage_bytes, dtype=np.uint8).tobytes()
        pieces, at, used = [], 0, 0
        run = max(1, garbage_bytes // max(1, len(cuts)))
        for index, frame in enumerate(frames):
            while at < len(cuts) and cuts[at] == index:
                pieces.append(noise[used : used + run])
                used += run
                at += 1
            pieces.append(frame)
        dirty = b"".join(pieces)
        for label, stream, chunk_size in (
            ("", clean, 4096),
            ("_64_byte_chunks", clean, 64),
            ("_with_garbage", dirty, 4096),
        ):
            chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
            decoded = [0]

            def decode(chunks: list[bytes] = chunks, new_decoder=new_decoder, decoded: list[int] = decoded) -> None:
                decoder = new_decoder()
                decoded[0] = sum(len(decoder.feed(chunk)) for chunk in chunks)

            seconds = median_time(decode, repeats)
            metric = f"decode_frames_per_s{label}"
            results.append(Result("protocols", metric, round(decoded[0] / seconds), "1/s", protocol))
            if label == "_with_garbage":
                recovered = round(decoded[0] / count, 4)
                results.append(Result("protocols", "frames_recovered_with_garbage", recovered, "ratio", protocol))
    return results
