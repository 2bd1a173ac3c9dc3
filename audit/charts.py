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

# Okabe and Ito's colour-blind-safe palette: blue, vermillion, orange, bluish green, reddish
# purple, sky blue (a third series, such as "stalled", is orange, never green). Lines also
# differ by dash (DASHES), so no series relies on hue alone.
PALETTE = ("#0072b2", "#d55e00", "#e69f00", "#009e73", "#cc79a7", "#56b4e9")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "", "6 3")
# Chart text is at least 11 CSS px as drawn: the wide charts (560 units) are shown at least
# about 0.8 of their size, the narrow ones (340 units, for phones) about their own size.
TEXT = 14
TEXT_NARROW = 12
CHAR = 0.6  # a label's width per character, in font sizes (DejaVu Sans digits ~0.64)
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


def _steps(top: float) -> int:
    """How many grid steps make round ticks for an axis top from nice_max: 0.25 for 1,
    0.5 for 2 and 2.5, 1 for 5, 2 for 10 (times the power of ten)."""
    if top <= 0:
        return 4
    mantissa = round(top / 10 ** math.floor(math.log10(top)), 6)
    return {1.0: 4, 2.0: 4, 2.5: 5, 5.0: 5, 10.0: 5}.get(mantissa, 4)


def _text_size(width: int) -> int:
    return TEXT_NARROW if width <= 400 else TEXT


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
    y_scale: float = 1.0,
) -> SafeString:
    """Lines over shared x labels (days); None values leave gaps. Points link to `href`.
    `y_scale`: the unit y_format shows values in (3600 for hours), for round ticks."""
    size = _text_size(width)
    frame = _Frame(width, height, left=int(size * 4), bottom=int(size * 2.2))
    labels = [p.label for p in series[0].points] if series else []
    values = [p.value for s in series for p in s.points if p.value is not None]
    top = y_max if y_max is not None else nice_max(max(values, default=0.0))
    parts = [_open(frame, title, _describe(series, y_format))]
    # Grid: round steps, labelled.
    steps = _steps(top / y_scale)
    for i in range(steps + 1):
        y = frame.top + frame.inner_height * (1 - i / steps)
        parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#e4e7eb"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y + size * 0.35:.1f}" text-anchor="end" '
                     f'font-size="{size}" fill="#52606d">'
                     f'{escape(_fmt(top * i / steps, y_format))}</text>')
    n = len(labels)

    def x_at(index: int) -> float:
        return frame.left + (frame.inner_width * (index / (n - 1) if n > 1 else 0.5))

    def y_at(value: float) -> float:
        return frame.top + frame.inner_height * (1 - min(value, top) / top)

    for index, anchor in x_labels(labels, x_at, size):
        parts.append(f'<text x="{x_at(index):.1f}" y="{height - size * 0.6:.1f}" '
                     f'text-anchor="{anchor}" font-size="{size}" fill="#52606d">'
                     f'{escape(labels[index])}</text>')
    for number, s in enumerate(series):
        color = s.color or PALETTE[number % len(PALETTE)]
        dash = DASHES[number % len(DASHES)]
        dash = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[str]] = [[]]
        for index, p in enumerate(s.points):
            if p.value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x_at(index):.1f},{y_at(p.value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
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


def x_labels(labels: Sequence[str], x_at: Callable[[int], float],
              size: float) -> list[tuple[int, str]]:
    """The x labels to draw, as (index, text-anchor): the first and the last always, and
    evenly spaced ones between whose text cannot touch a neighbour's (widths estimated from
    the font size, with a gap of one character)."""
    n = len(labels)
    if not n:
        return []

    def extent(index: int, anchor: str) -> tuple[float, float]:
        w = len(labels[index]) * size * CHAR
        x = x_at(index)
        return {"start": (x, x + w), "end": (x - w, x), "middle": (x - w / 2, x + w / 2)}[anchor]

    widest = max(len(label) for label in labels) * size * CHAR + size * CHAR
    spacing = (x_at(n - 1) - x_at(0)) / (n - 1) if n > 1 else widest
    every = max(1, math.ceil(widest / spacing)) if spacing else n
    chosen = [(0, "start" if n > 1 else "middle")]
    last = (n - 1, "end") if n > 1 else None
    for index in range(every, n - 1, every):
        left, right = extent(index, "middle")
        if left < extent(*chosen[-1])[1] + size * CHAR:
            continue
        if last and right + size * CHAR > extent(*last)[0]:
            break
        chosen.append((index, "middle"))
    if last:
        chosen.append(last)
    return chosen


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
    """Horizontal bars, one per point, labelled on the left, value on the right; narrow
    charts (phones) put each label above its bar, whole, so none is cut short."""
    size = _text_size(width)
    if width <= 400:
        return _bar_chart_stacked(title, points, width, size, x_max, x_format, color)
    longest = max((len(p.label) for p in points), default=0)
    label_width = min(int(longest * size * CHAR) + 16, width // 3)
    value_width, gap = int(size * 5.5), 8
    bar_height = max(bar_height, size + 8)
    height = max(1, len(points)) * (bar_height + gap) + gap
    frame = _Frame(width, height, left=label_width, right=value_width, top=gap, bottom=0)
    values = [p.value for p in points if p.value is not None]
    top = x_max if x_max is not None else nice_max(max(values, default=0.0))
    parts = [_open(frame, title, _describe([Series(title, points)], x_format))]
    fits = int((label_width - 12) / (size * CHAR))
    for index, p in enumerate(points):
        y = gap + index * (bar_height + gap)
        text = "—" if p.value is None else (p.text or _fmt(p.value, x_format))
        label = p.label if len(p.label) <= fits else p.label[:fits - 1] + "…"
        parts.append(f'<text x="{label_width - 8}" y="{y + bar_height / 2 + size * 0.35:.1f}" '
                     f'text-anchor="end" font-size="{size}" fill="#1f2933">'
                     f'<title>{escape(p.label)}</title>{escape(label)}</text>')
        parts += _bar(p, text, x=label_width, y=y, full=frame.inner_width,
                      height=bar_height, top=top, color=color)
        parts.append(f'<text x="{width - value_width + 6}" '
                     f'y="{y + bar_height / 2 + size * 0.35:.1f}" '
                     f'font-size="{size}" fill="#1f2933">{escape(text)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def _bar(p: Point, text: str, *, x: float, y: float, full: float, height: int, top: float,
         color: str) -> list[str]:
    """One bar of a bar chart: its grey track across `full`, and the value's part of it
    (linked to the point's conversations, with the label and value as its title)."""
    parts = [f'<rect x="{x}" y="{y}" width="{full:.1f}" height="{height}" rx="3" '
             f'fill="#eef2f6"/>']
    if p.value:
        bar = (f'<rect x="{x}" y="{y}" height="{height}" rx="3" fill="{color}" '
               f'width="{full * min(p.value, top) / top:.1f}">'
               f'<title>{escape(f"{p.label}: {text}")}</title></rect>')
        parts.append(_link(p.href, bar, f"{p.label}: {text}"))
    return parts


def _bar_chart_stacked(title: str, points: Sequence[Point], width: int, size: int,
                       x_max: float | None, x_format: Callable[[float], str] | None,
                       color: str) -> SafeString:
    """Label and value on one line, the bar under them across the whole width."""
    line, bar_height, gap = size + 4, 12, 10
    row = line + bar_height + gap
    height = max(1, len(points)) * row + 2
    frame = _Frame(width, height, left=0, right=0, top=0, bottom=0)
    values = [p.value for p in points if p.value is not None]
    top = x_max if x_max is not None else nice_max(max(values, default=0.0))
    parts = [_open(frame, title, _describe([Series(title, points)], x_format))]
    for index, p in enumerate(points):
        y = index * row
        text = "—" if p.value is None else (p.text or _fmt(p.value, x_format))
        fits = int(width / (size * CHAR)) - len(text) - 2
        label = p.label if len(p.label) <= fits else p.label[:fits - 1] + "…"
        parts.append(f'<text x="0" y="{y + size:.1f}" font-size="{size}" fill="#1f2933">'
                     f'{escape(label)}</text>')
        parts.append(f'<text x="{width}" y="{y + size:.1f}" text-anchor="end" '
                     f'font-size="{size}" fill="#1f2933">{escape(text)}</text>')
        parts += _bar(p, text, x=0, y=y + line, full=width, height=bar_height, top=top,
                      color=color)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
