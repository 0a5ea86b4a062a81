"""A small PNG of a simulated VM's screen (name, power state, IP), with the standard library only:
zlib and struct for the PNG format, and a 3x5 bitmap font drawn at 2x."""

from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT = 320, 120
SCALE = 2
# 3x5 glyphs, rows top to bottom, "1" = ink. Lowercase is drawn as uppercase.
GLYPHS = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111", "0": "111101101101111", "1": "010110010010111",
    "2": "110001010100111", "3": "110001010001110", "4": "101101111001001", "5": "111100110001110",
    "6": "011100111101111", "7": "111001010010010", "8": "111101111101111", "9": "111101111001110",
    ".": "000000000000010", "-": "000000111000000", "_": "000000000000111", ":": "000010000010000",
    "/": "001001010100100", " ": "000000000000000",
}  # fmt: skip
UNKNOWN = "110001010000010"  # "?"
BACKGROUND = {"poweredOn": (18, 42, 30), "poweredOff": (40, 40, 44), "suspended": (60, 48, 16)}
INK = (220, 230, 225)


def draw(name: str, power_state: str, ip: str | None) -> bytes:
    """A PNG (RGB, 8 bits) showing the three lines of text on a background by power state."""
    background = BACKGROUND.get(power_state, (0, 0, 0))
    pixels = [[background] * WIDTH for _ in range(HEIGHT)]
    for row, text in enumerate((name, power_state, f"IP {ip or '-'}")):
        _text(pixels, text, 8, 10 + row * 18)
    raw = b"".join(b"\x00" + bytes(v for pixel in line for v in pixel) for line in pixels)
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _text(pixels: list[list[tuple[int, int, int]]], text: str, left: int, top: int) -> None:
    for index, char in enumerate(text.upper()):
        glyph = GLYPHS.get(char, UNKNOWN)
        x0 = left + index * 4 * SCALE
        if x0 + 3 * SCALE > WIDTH:
            return  # clipped at the right edge, like a real console
        for bit, ink in enumerate(glyph):
            if ink == "1":
                gx, gy = bit % 3, bit // 3
                for dy in range(SCALE):
                    for dx in range(SCALE):
                        pixels[top + gy * SCALE + dy][x0 + gx * SCALE + dx] = INK


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
