"""Server-side SVG charts for the dashboards: a line chart over days and a horizontal bar
chart, inline in the page (no JavaScript, no CDN; many customers' networks have no
internet). Each chart carries an accessible title and description, every point or bar can
link to the conversations behind it, and the page shows the same figures as numbers.

Kept small on purpose: two shapes, escaped text, fixed palette, no dependencies.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import count

from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2f6fed", "#d92d20", "#067647", "#f79009", "#7c3aed", "#0e9384")
_ids = count(1)


@dataclass(frozen=True)
class Point:
    label: str  # x label (a day) or the bar's name
    value: float | None  # None: no data, drawn as a gap
    href: str = ""
    text: str = ""  # how the value reads to people ("42%"); defaults to the number


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]
    color: str = ""


@dataclass
class _Frame:
    width: int
    height: int
    left: int = 44
    right: int = 12
    top: int = 12
    bottom: int = 28
    parts: list[str] = field(default_factory=list)

    @property
    def inner_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def inner_height(self) -> float:
        return self.height - self.top - self.bottom


def nice_max(value: float) -> float:
    """A round axis top at or above value (1, 2, 2.5, 5 or 10 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if value <= step * magnitude)


def _fmt(value: float, formatter: Callable[[float], str] | None) -> str:
    if formatter:
        return formatter(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _open(frame: _Frame, title: str, description: str) -> str:
    uid = next(_ids)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {frame.width} '
        f'{frame.height}" role="img" aria-labelledby="chart-{uid}-t chart-{uid}-d" '
        f'preserveAspectRatio="xMinYMin meet">'
        f'<title id="chart-{uid}-t">{escape(title)}</title>'
        f'<desc id="chart-{uid}-d">{escape(description)}</desc>'
    )


def _link(href: str, inner: str, label: str) -> str:
    if not href:
        return inner
    return f'<a href="{escape(href)}" aria-label="{escape(label)}">{inner}</a>'


def _describe(series: Sequence[Series], formatter: Callable[[float], str] | None) -> str:
    chunks = []
    for s in series:
        values = [
            f"{p.label}: {p.text or _fmt(p.value, formatter)}"
            for p in s.points if p.value is not None
        ]
        chunks.append(f"{s.name} — " + ("; ".join(values) if values else "no data"))
    return ". ".join(chunks)


def line_chart(
    *,
    title: str,
    series: Sequence[Series],
    width: int = 560,
    height: int = 180,
    y_max: float | None = None,
    y_format: Callable[[float], str] | None = None,
) -> SafeString:
    """Lines over shared x labels (days); None values leave gaps. Points link to `href`."""
    frame = _Frame(width, height)
    labels = [p.label for p in series[0].points] if series else []
    values = [p.value for s in series for p in s.points if p.value is not None]
    top = y_max if y_max is not None else nice_max(max(values, default=0.0))
    parts = [_open(frame, title, _describe(series, y_format))]
    # Grid: four steps, labelled.
    for i in range(5):
        y = frame.top + frame.inner_height * (1 - i / 4)
        parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#e4e7eb"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="10" fill="#616e7c">{escape(_fmt(top * i / 4, y_format))}</text>')
    n = len(labels)

    def x_at(index: int) -> float:
        return frame.left + (frame.inner_width * (index / (n - 1) if n > 1 else 0.5))

    def y_at(value: float) -> float:
        return frame.top + frame.inner_height * (1 - min(value, top) / top)

    # X labels: first, last and a few between, so 90 days do not overlap.
    every = max(1, round(n / 6))
    for index, label in enumerate(labels):
        # Every `every`th label and the last, skipping one that would crowd the last.
        if index == n - 1 or (index % every == 0 and n - 1 - index >= every * 0.75):
            anchor = "end" if index == n - 1 and n > 1 else ("start" if index == 0 else "middle")
            parts.append(f'<text x="{x_at(index):.1f}" y="{height - 8}" text-anchor="{anchor}" '
                         f'font-size="10" fill="#616e7c">{escape(label)}</text>')
    for number, s in enumerate(series):
        color = s.color or PALETTE[number % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for index, p in enumerate(s.points):
            if p.value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x_at(index):.1f},{y_at(p.value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                             f'points="{" ".join(run)}"/>')
        for index, p in enumerate(s.points):
            if p.value is None:
                continue
            text = p.text or _fmt(p.value, y_format)
            dot = (f'<circle cx="{x_at(index):.1f}" cy="{y_at(p.value):.1f}" r="3.5" '
                   f'fill="{color}"><title>{escape(f"{s.name}, {p.label}: {text}")}</title>'
                   f'</circle>')
            parts.append(_link(p.href, dot, f"{s.name}, {p.label}: {text}"))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart(
    *,
    title: str,
    points: Sequence[Point],
    width: int = 560,
    bar_height: int = 22,
    x_max: float | None = None,
    x_format: Callable[[float], str] | None = None,
    color: str = PALETTE[0],
) -> SafeString:
    """Horizontal bars, one per point, labelled on the left, value on the right."""
    label_width, value_width, gap = 130, 70, 8
    height = max(1, len(points)) * (bar_height + gap) + gap
    frame = _Frame(width, height, left=label_width, right=value_width, top=gap, bottom=0)
    values = [p.value for p in points if p.value is not None]
    top = x_max if x_max is not None else nice_max(max(values, default=0.0))
    parts = [_open(frame, title, _describe([Series(title, points)], x_format))]
    for index, p in enumerate(points):
        y = gap + index * (bar_height + gap)
        text = "—" if p.value is None else (p.text or _fmt(p.value, x_format))
        label = p.label if len(p.label) <= 20 else p.label[:19] + "…"
        parts.append(f'<text x="{label_width - 8}" y="{y + bar_height / 2 + 4:.1f}" '
                     f'text-anchor="end" font-size="12" fill="#1f2933">{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{frame.inner_width:.1f}" '
                     f'height="{bar_height}" rx="3" fill="#eef2f6"/>')
        if p.value:
            bar = (f'<rect x="{label_width}" y="{y}" height="{bar_height}" rx="3" fill="{color}" '
                   f'width="{frame.inner_width * min(p.value, top) / top:.1f}">'
                   f'<title>{escape(f"{p.label}: {text}")}</title></rect>')
            parts.append(_link(p.href, bar, f"{p.label}: {text}"))
        parts.append(f'<text x="{width - value_width + 6}" y="{y + bar_height / 2 + 4:.1f}" '
                     f'font-size="12" fill="#1f2933">{escape(text)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
