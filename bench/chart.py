"""Grouped bar charts as PNG files, drawn with a 5x7 bitmap font and zlib (no matplotlib)."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BarChart", "render_png"]

# Column-major 5x7 glyphs (bit 0 is the top row), the classic LCD font.
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x3E, 0x51, 0x49, 0x45, 0x3E), "1": (0x00, 0x42, 0x7F, 0x40, 0x00),
    "2": (0x42, 0x61, 0x51, 0x49, 0x46), "3": (0x21, 0x41, 0x45, 0x4B, 0x31),
    "4": (0x18, 0x14, 0x12, 0x7F, 0x10), "5": (0x27, 0x45, 0x45, 0x45, 0x39),
    "6": (0x3C, 0x4A, 0x49, 0x49, 0x30), "7": (0x01, 0x71, 0x09, 0x05, 0x03),
    "8": (0x36, 0x49, 0x49, 0x49, 0x36), "9": (0x06, 0x49, 0x49, 0x29, 0x1E),
    "A": (0x7E, 0x11, 0x11, 0x11, 0x7E), "B": (0x7F, 0x49, 0x49, 0x49, 0x36),
    "C": (0x3E, 0x41, 0x41, 0x41, 0x22), "D": (0x7F, 0x41, 0x41, 0x22, 0x1C),
    "E": (0x7F, 0x49, 0x49, 0x49, 0x41), "F": (0x7F, 0x09, 0x09, 0x09, 0x01),
    "G": (0x3E, 0x41, 0x49, 0x49, 0x7A), "H": (0x7F, 0x08, 0x08, 0x08, 0x7F),
    "I": (0x00, 0x41, 0x7F, 0x41, 0x00), "J": (0x20, 0x40, 0x41, 0x3F, 0x01),
    "K": (0x7F, 0x08, 0x14, 0x22, 0x41), "L": (0x7F, 0x40, 0x40, 0x40, 0x40),
    "M": (0x7F, 0x02, 0x0C, 0x02, 0x7F), "N": (0x7F, 0x04, 0x08, 0x10, 0x7F),
    "O": (0x3E, 0x41, 0x41, 0x41, 0x3E), "P": (0x7F, 0x09, 0x09, 0x09, 0x06),
    "Q": (0x3E, 0x41, 0x51, 0x21, 0x5E), "R": (0x7F, 0x09, 0x19, 0x29, 0x46),
    "S": (0x46, 0x49, 0x49, 0x49, 0x31), "T": (0x01, 0x01, 0x7F, 0x01, 0x01),
    "U": (0x3F, 0x40, 0x40, 0x40, 0x3F), "V": (0x1F, 0x20, 0x40, 0x20, 0x1F),
    "W": (0x3F, 0x40, 0x38, 0x40, 0x3F), "X": (0x63, 0x14, 0x08, 0x14, 0x63),
    "Y": (0x07, 0x08, 0x70, 0x08, 0x07), "Z": (0x61, 0x51, 0x49, 0x45, 0x43),
    " ": (0x00, 0x00, 0x00, 0x00, 0x00), ".": (0x00, 0x60, 0x60, 0x00, 0x00),
    ",": (0x00, 0x50, 0x30, 0x00, 0x00), "-": (0x08, 0x08, 0x08, 0x08, 0x08),
    "/": (0x20, 0x10, 0x08, 0x04, 0x02), "(": (0x00, 0x1C, 0x22, 0x41, 0x00),
    ")": (0x00, 0x41, 0x22, 0x1C, 0x00), "%": (0x23, 0x13, 0x08, 0x64, 0x62),
    ":": (0x00, 0x36, 0x36, 0x00, 0x00), "=": (0x14, 0x14, 0x14, 0x14, 0x14),
    "+": (0x08, 0x08, 0x3E, 0x08, 0x08), "×": (0x22, 0x14, 0x08, 0x14, 0x22),
    "?": (0x02, 0x01, 0x51, 0x09, 0x06), "<": (0x08, 0x14, 0x22, 0x41, 0x00),
    ">": (0x00, 0x41, 0x22, 0x14, 0x08), "_": (0x40, 0x40, 0x40, 0x40, 0x40),
}  # fmt: skip

_PALETTE = ((52, 101, 164), (230, 126, 34), (46, 139, 87), (155, 89, 182), (192, 57, 43))
_WHITE = (255, 255, 255)
_INK = (40, 40, 40)
_GRID = (225, 225, 225)

Color = tuple[int, int, int]


@dataclass(frozen=True)
class BarChart:
    """Bars for each group (x axis), one bar per series; NaN values draw no bar."""

    title: str
    unit: str
    groups: Sequence[str]
    series: Sequence[tuple[str, Sequence[float]]]
    width: int = 840
    height: int = 440


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(_WHITE) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = _INK, scale: int = 2) -> None:
        for char in text.upper():
            glyph = _FONT.get(char, _FONT["?"])
            for col, bits in enumerate(glyph):
                for row in range(7):
                    if bits >> row & 1:
                        px, py = x + col * scale, y + row * scale
                        self.rect(px, py, px + scale, py + scale, color)
            x += 6 * scale

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    """Pixels taken by `text` at `scale`."""
    return len(text) * 6 * scale


def _nice_top(value: float) -> float:
    if value <= 0 or math.isnan(value):
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exponent:
            return step * exponent
    return 10.0 * exponent


def _label(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_png(chart: BarChart) -> bytes:
    """Draw `chart` and return the PNG file's bytes."""
    canvas = _Canvas(chart.width, chart.height)
    left, right, top, bottom = 80, chart.width - 20, 70, chart.height - 50
    canvas.text(20, 14, chart.title, scale=2)
    legend_x = 20
    for index, (name, _) in enumerate(chart.series):
        color = _PALETTE[index % len(_PALETTE)]
        canvas.rect(legend_x, 42, legend_x + 12, 54, color)
        canvas.text(legend_x + 18, 44, name, scale=1)
        legend_x += 30 + text_width(name, 1)
    values = [v for _, vs in chart.series for v in vs if not math.isnan(v)]
    top_value = _nice_top(max(values, default=1.0))
    for tick in range(5):
        value = top_value * tick / 4
        y = bottom - int((bottom - top) * tick / 4)
        canvas.rect(left, y, right, y + 1, _GRID)
        label = _label(value)
        canvas.text(left - 8 - text_width(label, 1), y - 3, label, scale=1)
    canvas.text(8, top - 16, chart.unit, scale=1)
    canvas.rect(left, top, left + 1, bottom + 1, _INK)
    canvas.rect(left, bottom, right, bottom + 1, _INK)
    group_w = (right - left) / max(1, len(chart.groups))
    bar_w = max(2, int(group_w * 0.8 / max(1, len(chart.series))))
    for g, group in enumerate(chart.groups):
        gx = left + int(g * group_w + group_w * 0.1)
        for s, (_, vs) in enumerate(chart.series):
            value = vs[g] if g < len(vs) else math.nan
            if math.isnan(value):
                continue
            x0 = gx + s * bar_w
            height = int((bottom - top) * min(value, top_value) / top_value)
            canvas.rect(x0 + 1, bottom - height, x0 + bar_w - 1, bottom, _PALETTE[s % 5])
            label = _label(value)
            if text_width(label, 1) <= bar_w + 4:
                canvas.text(
                    x0 + (bar_w - text_width(label, 1)) // 2, bottom - height - 10, label, scale=1
                )
        label_x = left + int(g * group_w + (group_w - text_width(group, 1)) / 2)
        canvas.text(label_x, bottom + 10, group, scale=1)
    return canvas.png()
