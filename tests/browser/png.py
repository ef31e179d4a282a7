"""Just enough of a PNG decoder to tell a blank screenshot from a page.

Chromium writes 8-bit RGB or RGBA, non-interlaced: that is all this reads
(zlib and the five row filters of the PNG specification, section 9).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel (bit depth 8)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        start = x * self.channels
        return tuple(self.rows[y][start : start + 3])


def _chunks(data: bytes):
    offset = len(SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        yield kind, data[offset + 8 : offset + 8 + length]
        offset += 12 + length


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, previous: bytes, bpp: int) -> bytes:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            upper_left = previous[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _paeth(left, up, upper_left)) & 0xFF
    return bytes(line)


def decode(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    header, compressed = None, b""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour {colour}")
    bpp = CHANNELS[colour]
    raw = zlib.decompress(compressed)
    stride = width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        previous = _unfilter(raw[start], line, previous, bpp)
        rows.append(previous)
    return Image(width, height, bpp, rows)


def busy_rows(image: Image, background: tuple[int, int, int], top: int = 0) -> int:
    """How many rows from `top` down hold a pixel that is not the background."""
    return sum(
        1
        for y in range(top, image.height)
        if any(image.pixel(x, y) != background for x in range(0, image.width, 2))
    )


def count(image: Image, colours: set[tuple[int, int, int]], top: int = 0) -> int:
    """How many pixels from row `top` down are exactly one of `colours`."""
    return sum(
        1
        for y in range(top, image.height)
        for x in range(image.width)
        if image.pixel(x, y) in colours
    )
