"""Small charts written directly as inline SVG: no matplotlib, no scripts, no fetched files.

A drift report draws two or three charts per column and may have hundreds of columns;
matplotlib takes ~0.1 s and ~35 kB per figure, these take well under a millisecond and a few
kB. Every text (a column or category name) is escaped; numbers are formatted here. Hovering a
bar or a point shows its figures (an SVG ``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_overlay", "histogram_overlay", "line_chart"]

REFERENCE_COLOUR = "#8fa9c7"
CURRENT_COLOUR = "#d9622b"
_PALETTE = ("#3b6ea5", "#d9622b", "#2f9e62", "#8e5bb5", "#c9a227", "#c2417a", "#5a8f9e",
            "#7a6f5b")
_FONT = 'font-family="system-ui, sans-serif" font-size="10"'


def _num(value: float) -> str:
    """An axis or tooltip number: three significant digits."""
    if value != value:
        return "nan"
    return f"{value:.3g}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(label)}" class="chart">' + "".join(body) + "</svg>")


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]], *, width: float
            ) -> tuple[list[str], float]:
    """Colour keys left to right from (x, y), wrapping at ``width``; returns the elements
    and the height used."""
    out: list[str] = []
    start, line = x, 0
    for name, colour in entries:
        shown = name if len(name) <= 24 else name[:23] + "\u2026"
        step = 18 + 6 * len(shown)
        if x > start and x + step > width:
            x, line = start, line + 1
        top = y + 13 * line
        out.append(f'<rect x="{x:.1f}" y="{top - 8:.1f}" width="10" height="8" fill="{colour}"/>'
                   f'<text x="{x + 13:.1f}" y="{top:.1f}" {_FONT}><title>{escape(name)}</title>'
                   f"{escape(shown)}</text>")
        x += step
    return out, 13.0 * (line + 1)


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) if v is not None and math.isfinite(v) else 0.0 for v in values]


def histogram_overlay(edges: Sequence[float], reference: Sequence[float],
                      current: Sequence[float], *, label: str, width: int = 440,
                      height: int = 170) -> str:
    """Reference densities as filled bars, current densities as a step line over them.

    ``edges`` has one more entry than each density list; bins may differ in width.
    """
    ref, cur = _clean(reference), _clean(current)
    left, right, top, bottom = 46, 10, 18, 22
    x0, x1 = float(edges[0]), float(edges[-1])
    span = (x1 - x0) or 1.0
    peak = max([*ref, *cur, 0.0]) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - x0) / span * plot_w

    def sy(v: float) -> float:
        return top + plot_h - v / (peak * 1.05) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfcfd" '
            'stroke="#e3e8ee"/>']
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        a, b = sx(edges[i]), sx(edges[i + 1])
        tip = escape(f"[{_num(edges[i])}, {_num(edges[i + 1])}): reference {_num(r)}, "
                     f"current {_num(c)}")
        body.append(f'<rect x="{a:.2f}" y="{sy(r):.2f}" width="{max(b - a, 0.5):.2f}" '
                    f'height="{top + plot_h - sy(r):.2f}" fill="{REFERENCE_COLOUR}">'
                    f"<title>{tip}</title></rect>")
    points = [f"{sx(edges[0]):.2f},{sy(0):.2f}"]
    for i, c in enumerate(cur):
        points += [f"{sx(edges[i]):.2f},{sy(c):.2f}", f"{sx(edges[i + 1]):.2f},{sy(c):.2f}"]
    points.append(f"{sx(edges[-1]):.2f},{sy(0):.2f}")
    body.append(f'<polyline points="{" ".join(points)}" fill="{CURRENT_COLOUR}" '
                f'fill-opacity="0.15" stroke="{CURRENT_COLOUR}" stroke-width="1.6"/>')
    base = top + plot_h
    body += [
        f'<text x="{left}" y="{base + 14}" {_FONT}>{_num(x0)}</text>',
        f'<text x="{left + plot_w / 2:.1f}" y="{base + 14}" text-anchor="middle" {_FONT}>'
        f"{_num((x0 + x1) / 2)}</text>",
        f'<text x="{width - right}" y="{base + 14}" text-anchor="end" {_FONT}>{_num(x1)}</text>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_FONT}>{_num(peak)}</text>',
        f'<text x="{left - 4}" y="{base}" text-anchor="end" {_FONT}>0</text>',
        *_legend(left + 4, top - 6, [("reference", REFERENCE_COLOUR),
                                     ("current", CURRENT_COLOUR)], width=width)[0],
        f'<text x="{width - right}" y="{top - 6}" text-anchor="end" {_FONT} fill="#5b6776">'
        "density</text>",
    ]
    return _svg(width, height, label, body)


def bar_overlay(labels: Sequence[str], reference: Sequence[float], current: Sequence[float],
                *, label: str, marked: Sequence[bool] | None = None, width: int = 440) -> str:
    """Shares per category as paired horizontal bars (reference above current).

    ``marked`` labels (categories the reference never had) are drawn in italics with "new".
    """
    ref, cur = _clean(reference), _clean(current)
    left, right, top, row = 130, 96, 18, 16
    height = top + row * len(labels) + 8
    plot_w = width - left - right
    peak = max([*ref, *cur, 0.0]) or 1.0
    body = _legend(left, top - 6, [("reference", REFERENCE_COLOUR),
                                   ("current", CURRENT_COLOUR)], width=width)[0]
    for i, name in enumerate(labels):
        y = top + 2 + i * row
        new = bool(marked and marked[i])
        shown = name if len(name) <= 20 else name[:19] + "\u2026"
        style = ' font-style="italic"' if new else ""
        suffix = " (new)" if new else ""
        body.append(f'<text x="{left - 4}" y="{y + 10}" text-anchor="end" {_FONT}{style}>'
                    f"<title>{escape(name + suffix)}</title>{escape(shown + suffix)}</text>")
        for offset, value, colour, side in ((0, ref[i], REFERENCE_COLOUR, "reference"),
                                            (6, cur[i], CURRENT_COLOUR, "current")):
            w = value / peak * plot_w
            body.append(f'<rect x="{left}" y="{y + offset}" width="{max(w, 0.0):.2f}" '
                        f'height="6" fill="{colour}"><title>{escape(name)}: {side} '
                        f"{value:.2%}</title></rect>")
        body.append(f'<text x="{left + max(ref[i], cur[i]) / peak * plot_w + 3:.2f}" '
                    f'y="{y + 10}" {_FONT} fill="#5b6776">{ref[i]:.1%} \u2192 {cur[i]:.1%}'
                    "</text>")
    return _svg(width, height, label, body)


def line_chart(series: Sequence[tuple[str, Sequence[float | None]]], x_labels: Sequence[str],
               *, label: str, threshold: float | None = None,
               marked: Sequence[bool] | None = None, from_zero: bool = True,
               width: int = 440, height: int = 150) -> str:
    """Values per run, oldest left, one line per series; gaps where a value is None.

    ``threshold`` is drawn dashed; ``marked`` points (drifted runs) of the first series red.
    The y axis starts at 0 unless ``from_zero`` is False (metrics that move near 0.9).
    """
    legend: list[str] = []
    top = 18
    if len(series) > 1 or (series and series[0][0]):
        legend, used = _legend(50, 12, [(name, _PALETTE[k % len(_PALETTE)])
                                        for k, (name, _) in enumerate(series)], width=width)
        top = int(used) + 6
        height += top - 18
    left, right, bottom = 46, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    if threshold is not None and math.isfinite(threshold):
        values.append(threshold)
    if from_zero:
        low = min([0.0, *values])
        high = max([*values, 0.0]) or 1.0
        high += (high - low) * 0.08
    else:
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (high - low) * 0.1 or abs(high) * 0.05 or 1.0
        low, high = low - pad, high + pad
    n = max(len(x_labels), 1)

    def sx(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i / (n - 1) * plot_w)

    def sy(v: float) -> float:
        return top + plot_h - (v - low) / ((high - low) or 1.0) * plot_h

    base = top + plot_h
    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfcfd" '
            'stroke="#e3e8ee"/>',
            f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_FONT}>{_num(high)}</text>',
            f'<text x="{left - 4}" y="{base}" text-anchor="end" {_FONT}>{_num(low)}</text>']
    if threshold is not None and math.isfinite(threshold):
        y = sy(threshold)
        body.append(f'<line x1="{left}" y1="{y:.2f}" x2="{left + plot_w}" y2="{y:.2f}" '
                    'stroke="#cf222e" stroke-dasharray="4 3" stroke-width="1"/>'
                    f'<text x="{left + plot_w - 2}" y="{y - 3:.2f}" text-anchor="end" '
                    f'{_FONT} fill="#cf222e">threshold {_num(threshold)}</text>')
    for k, (name, vs) in enumerate(series):
        colour = _PALETTE[k % len(_PALETTE)]
        run: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                if run:
                    segments.append(run)
                run = []
                continue
            run.append(f"{sx(i):.2f},{sy(v):.2f}")
        if run:
            segments.append(run)
        for seg in segments:
            if len(seg) > 1:
                body.append(f'<polyline points="{" ".join(seg)}" fill="none" '
                            f'stroke="{colour}" stroke-width="1.6"/>')
        for i, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                continue
            hot = k == 0 and marked is not None and i < len(marked) and marked[i]
            tip = escape(f"{name} · {x_labels[i] if i < len(x_labels) else i}: {_num(v)}")
            body.append(f'<circle cx="{sx(i):.2f}" cy="{sy(v):.2f}" r="{3.2 if hot else 2.4}" '
                        f'fill="{"#cf222e" if hot else colour}"><title>{tip}</title></circle>')
    if x_labels:
        body.append(f'<text x="{left}" y="{base + 14}" {_FONT}>{escape(x_labels[0])}</text>')
        if len(x_labels) > 1:
            body.append(f'<text x="{left + plot_w}" y="{base + 14}" text-anchor="end" '
                        f"{_FONT}>{escape(x_labels[-1])}</text>")
    return _svg(width, height, label, body + legend)
