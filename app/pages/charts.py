"""Server-side SVG charts of the assessment page: no script, no chart library, no asset.

A chart is a few rectangles, lines and labels; drawn here it works offline on any
phone, prints, and carries the numbers it shows as text (``<title>`` per mark).
Every label is escaped; the markup is returned as :class:`markupsafe.Markup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["Bar", "area_bars", "trend_lines"]

#: Colours of the series: handled in the grid, passed up, not handled yet.
GRID_COLOUR, UP_COLOUR, OPEN_COLOUR = "#2e8b57", "#e08a1e", "#c3ccd6"
RECEIVED_COLOUR = "#1f6fb2"


@dataclass(frozen=True)
class Bar:
    """One area's bar: its label and counts (received = grid + up + the rest)."""

    label: str
    received: int
    handled_grid: int
    passed_up: int


def area_bars(bars: Sequence[Bar], chart_id: str = "gm-bars") -> Markup:
    """Horizontal stacked bars, one per area: handled in the grid, passed up, the rest."""
    label_w, bar_w, row_h, top = 170, 380, 20, 28
    width, height = label_w + bar_w + 60, top + row_h * max(len(bars), 1) + 8
    most = max((b.received for b in bars), default=0) or 1
    parts = [
        _legend(
            [
                (GRID_COLOUR, "网格内处置 grid"),
                (UP_COLOUR, "上报 passed up"),
                (OPEN_COLOUR, "其他 other"),
            ]
        )
    ]
    for i, bar in enumerate(bars):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(_short(bar.label, 14))}</text>"
        )
        x = float(label_w)
        rest = max(bar.received - bar.handled_grid - bar.passed_up, 0)
        for value, colour, name in (
            (bar.handled_grid, GRID_COLOUR, "网格内处置 handled in the grid"),
            (bar.passed_up, UP_COLOUR, "上报 passed up"),
            (rest, OPEN_COLOUR, "其他 other"),
        ):
            w = bar_w * value / most
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                    f'fill="{colour}"><title>{escape(bar.label)}: {name} {value}</title></rect>'
                )
            x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="12" class="gm-bar-value">'
            f"{bar.received}</text>"
        )
    if not bars:
        parts.append(f'<text x="10" y="{top + 14}" font-size="13">无数据 No data</text>')
    return _svg(chart_id, width, height, "各区域事件数 Incidents per area", parts)


def trend_lines(
    months: Sequence[str],
    received: Sequence[int],
    handled_grid: Sequence[int],
    chart_id: str = "gm-trend",
) -> Markup:
    """Received and handled-in-the-grid per month, as two lines with their points."""
    left, right, top, bottom, width, height = 44, 12, 28, 36, 600, 240
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max([*received, *handled_grid, 0]) or 1
    step = plot_w / max(len(months) - 1, 1)

    def point(i: int, value: int) -> tuple[float, float]:
        x = left + (i * step if len(months) > 1 else plot_w / 2)
        return x, top + plot_h * (1 - value / most)

    parts = [_legend([(RECEIVED_COLOUR, "受理 received"), (GRID_COLOUR, "网格内处置 grid")])]
    for tick in (0, most // 2, most):
        y = top + plot_h * (1 - tick / most)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#e3e6ea"/><text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick}</text>'
        )
    every = max(1, -(-len(months) // 12))  # at most a dozen month labels
    for i, month in enumerate(months):
        if i % every == 0:
            x, _ = point(i, 0)
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'font-size="11">{escape(month[2:])}</text>'
            )
    for values, colour, name, series in (
        (received, RECEIVED_COLOUR, "受理 received", "received"),
        (handled_grid, GRID_COLOUR, "网格内处置 handled in the grid", "handled_grid"),
    ):
        points = [point(i, v) for i, v in enumerate(values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-series="{series}"/>'
        )
        for (x, y), month, v in zip(points, months, values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(month)} {name}: {v}</title></circle>"
            )
    return _svg(chart_id, width, height, "每月趋势 Trend per month", parts)


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    items, x = [], 4
    for colour, name in entries:
        items.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="16" font-size="12">{escape(name)}</text>'
        )
        x += 28 + sum(12 if ord(ch) > 0x2E80 else 7 for ch in name)  # CJK is wider
    return "".join(items)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(chart_id: str, width: int, height: int, title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg id="{chart_id}" class="gm-chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )
