"""Line charts drawn on the server as SVG: no JavaScript library, no CDN; the numbers are in a
table beside each chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Line:
    label: str
    css: str  # a class of console.css: chart-allocated, chart-used, chart-capacity
    values: Sequence[float | None]


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(top))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= top:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _paths(values: Sequence[float | None], x: Sequence[float], scale: float) -> list[str]:
    """One polyline per run of known values (a gap where nothing was sampled)."""
    runs: list[str] = []
    current: list[str] = []
    for xi, value in zip(x, values, strict=True):
        if value is None:
            if current:
                runs.append(" ".join(current))
            current = []
            continue
        y = TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / scale)
        current.append(f"{xi:.1f},{y:.1f}")
    if current:
        runs.append(" ".join(current))
    return runs


def line_chart(title: str, unit: str, labels: Sequence[str], lines: Sequence[Line]) -> Markup:
    """An SVG chart of `lines` over the x `labels` (first and last are written under the axis)."""
    count = max(len(labels), 1)
    span = WIDTH - LEFT - RIGHT
    x = [LEFT + (span * i / (count - 1) if count > 1 else span / 2) for i in range(count)]
    known = [v for line in lines for v in line.values if v is not None]
    scale = _nice(max(known, default=0.0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)} ({escape(unit)})">',
        f"<title>{escape(title)} ({escape(unit)})</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + (HEIGHT - TOP - BOTTOM) * (1 - fraction)
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="chart-axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{scale * fraction:g}</text>'
        )
    if labels:
        bottom = HEIGHT - 8
        parts.append(f'<text class="chart-axis" x="{LEFT}" y="{bottom}">{escape(labels[0])}</text>')
        parts.append(
            f'<text class="chart-axis" x="{WIDTH - RIGHT}" y="{bottom}" text-anchor="end">{escape(labels[-1])}</text>'
        )
    for line in lines:
        for run in _paths(line.values, x, scale):
            if " " not in run:  # a lone sample between gaps: a dot, since a one-point line is invisible
                cx, cy = run.split(",")
                dot = f'<circle class="{escape(line.css)}" cx="{cx}" cy="{cy}" r="2.5">'
                parts.append(f"{dot}<title>{escape(line.label)}</title></circle>")
                continue
            parts.append(
                f'<polyline class="{escape(line.css)}" points="{run}"><title>{escape(line.label)}</title></polyline>'
            )
    parts.append("</svg>")
    legend = "".join(f'<span class="legend {escape(line.css)}">{escape(line.label)}</span>' for line in lines)
    caption = f'<figcaption>{escape(title)} <span class="muted">({escape(unit)})</span> {legend}</figcaption>'
    # Every piece of text above went through html.escape; the rest is markup this module writes.
    return Markup(f'<figure class="chart-box">{caption}{"".join(parts)}</figure>')  # noqa: S704
