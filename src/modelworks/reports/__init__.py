"""Self-contained report pages: matplotlib figures as inline SVG, rendered into one HTML page.

Used by the validation report (governance) and the monitoring reports; nothing here knows
what a report is about.
"""

from __future__ import annotations

from .html import render_page
from .plots import bar_chart, calibration_chart, confusion_chart, figure_svg

__all__ = ["bar_chart", "calibration_chart", "confusion_chart", "figure_svg", "render_page"]
