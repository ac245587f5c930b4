"""A tiny valid PNG, built by hand so the fakes need no imaging library."""

from __future__ import annotations

import struct
import zlib


def tiny_png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (79, 70, 229)) -> bytes:
    """A valid, solid-colour RGB PNG."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row * height))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
