"""Line charts as PNG files, with nothing but the standard library.

The load benchmark draws its memory curve with this, so that the plot needs no plotting
library in the environment that runs the benchmark. It draws what such a chart needs and no
more: stacked panels that share the x axis, each with lines, dashed guides, ticks with their
numbers, a title and a legend, in a 3×5 pixel font drawn at twice its size (upper case,
digits and a few signs).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

Color = tuple[int, int, int]

BLACK, GREY, LIGHT, WHITE = (0, 0, 0), (150, 150, 150), (228, 228, 228), (255, 255, 255)
BLUE, RED, GREEN, ORANGE = (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14)

#: Each glyph as five rows of three pixels, a row to a digit of three bits.
_GLYPHS = {
    "0": "75557",
    "1": "26227",
    "2": "71747",
    "3": "71717",
    "4": "55711",
    "5": "74717",
    "6": "74757",
    "7": "71111",
    "8": "75757",
    "9": "75717",
    "A": "25755",
    "B": "65656",
    "C": "34443",
    "D": "65556",
    "E": "74647",
    "F": "74644",
    "G": "34553",
    "H": "55755",
    "I": "72227",
    "J": "11152",
    "K": "55655",
    "L": "44447",
    "M": "57755",
    "N": "65555",
    "O": "25552",
    "P": "65644",
    "Q": "25563",
    "R": "65655",
    "S": "34216",
    "T": "72222",
    "U": "55557",
    "V": "55552",
    "W": "55775",
    "X": "55255",
    "Y": "55222",
    "Z": "71247",
    " ": "00000",
    ".": "00002",
    ":": "02020",
    "(": "12221",
    ")": "42224",
    "/": "11244",
    "-": "00700",
    "+": "02720",
    "%": "51245",
    ",": "00024",
    "=": "07070",
}
SCALE = 2
CHAR_WIDTH = 4 * SCALE
CHAR_HEIGHT = 5 * SCALE


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    color: Color


@dataclass
class Panel:
    """One chart: its title, its lines, and horizontal (y) or vertical (x) dashed guides."""

    title: str
    series: list[Series] = field(default_factory=list)
    hlines: list[tuple[float, Color]] = field(default_factory=list)
    vlines: list[tuple[float, Color]] = field(default_factory=list)
    from_zero: bool = False


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = 3 * (y * self.width + x)
            self.pixels[at : at + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1, dash: int = 0) -> None:
        """Bresenham's line; ``dash`` pixels on, then as many off, when given."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error, step = dx + dy, 0
        while True:
            if not dash or (step // dash) % 2 == 0:
                for ox in range(width):
                    for oy in range(width):
                        self.dot(x0 + ox - width // 2, y0 + oy - width // 2, color)
            if x0 == x1 and y0 == y1:
                return
            step += 1
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x0 += sx
            if doubled <= dx:
                error += dx
                y0 += sy

    def text(self, x: int, y: int, words: str, color: Color = BLACK) -> None:
        for index, char in enumerate(words.upper()):
            glyph = _GLYPHS.get(char, _GLYPHS[" "])
            for row, bits in enumerate(glyph):
                for column in range(3):
                    if int(bits) & (4 >> column):
                        for ox in range(SCALE):
                            for oy in range(SCALE):
                                self.dot(x + index * CHAR_WIDTH + column * SCALE + ox, y + row * SCALE + oy, color)

    def png(self) -> bytes:
        rows = b"".join(
            b"\0" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
        )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round numbers (1, 2 or 5 times a power of ten apart) that cover ``low`` to ``high``."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def draw(path: Path, title: str, x_label: str, panels: list[Panel], width: int = 900, panel_height: int = 260) -> None:
    """Write ``panels``, stacked and sharing the x axis, as a PNG file at ``path``."""
    left, right, top, gap, bottom = 80, 20, 40, 50, 50
    height = top + len(panels) * panel_height + (len(panels) - 1) * gap + bottom
    canvas = Canvas(width, height)
    canvas.text(left, 12, title)
    xs = [x for panel in panels for s in panel.series for x, _ in s.points] or [0.0, 1.0]
    x_ticks = nice_ticks(min(xs), max(xs))
    x_low, x_high = x_ticks[0], x_ticks[-1]
    plot_width = width - left - right
    for index, panel in enumerate(panels):
        y0 = top + index * (panel_height + gap) + 20
        plot_height = panel_height - 20
        ys = [y for s in panel.series for _, y in s.points] + [y for y, _ in panel.hlines] + [0.0] * panel.from_zero
        y_ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
        y_low, y_high = y_ticks[0], y_ticks[-1]

        def px(x: float) -> int:
            return left + round((x - x_low) / (x_high - x_low) * plot_width)

        def py(y: float, y0: int = y0, low: float = y_low, high: float = y_high, tall: int = plot_height) -> int:
            return y0 + tall - round((y - low) / (high - low) * tall)

        canvas.text(left, y0 - 16, panel.title)
        for tick in y_ticks:
            canvas.line(left, py(tick), left + plot_width, py(tick), LIGHT)
            label = _number(tick)
            canvas.text(left - 8 - len(label) * CHAR_WIDTH, py(tick) - CHAR_HEIGHT // 2, label)
        for tick in x_ticks:
            canvas.line(px(tick), y0, px(tick), y0 + plot_height, LIGHT)
            label = _number(tick)
            canvas.text(px(tick) - len(label) * CHAR_WIDTH // 2, y0 + plot_height + 6, label)
        canvas.line(left, y0, left, y0 + plot_height, BLACK)
        canvas.line(left, y0 + plot_height, left + plot_width, y0 + plot_height, BLACK)
        for y, color in panel.hlines:
            canvas.line(left, py(y), left + plot_width, py(y), color, dash=6)
        for x, color in panel.vlines:
            canvas.line(px(x), y0, px(x), y0 + plot_height, color, dash=6)
        legend_x = left + plot_width
        for series in reversed(panel.series):
            legend_x -= (len(series.label) + 4) * CHAR_WIDTH
            canvas.line(legend_x, y0 - 11, legend_x + 2 * CHAR_WIDTH, y0 - 11, series.color, width=3)
            canvas.text(legend_x + 3 * CHAR_WIDTH, y0 - 16, series.label, series.color)
        for series in panel.series:
            for (xa, ya), (xb, yb) in zip(series.points, series.points[1:], strict=False):
                canvas.line(px(xa), py(ya), px(xb), py(yb), series.color, width=2)
    canvas.text(left + plot_width // 2 - len(x_label) * CHAR_WIDTH // 2, height - 22, x_label)
    Path(path).write_bytes(canvas.png())
