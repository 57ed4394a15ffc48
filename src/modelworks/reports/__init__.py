"""Self-contained report pages: inline SVG charts (matplotlib figures, or small charts written
directly for pages with many of them), rendered into one HTML page.

Used by the validation report (governance) and the monitoring reports; nothing here knows
what a report is about.
"""

from __future__ import annotations

from .html import render_page
from .plots import bar_chart, calibration_chart, confusion_chart, figure_svg
from .svg import bar_overlay, histogram_overlay, line_chart

__all__ = ["bar_chart", "bar_overlay", "calibration_chart", "confusion_chart", "figure_svg",
           "histogram_overlay", "line_chart", "render_page"]
