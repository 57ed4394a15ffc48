"""The validation report as one self-contained HTML page (plots inline as SVG)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..reports import bar_chart, calibration_chart, confusion_chart, render_page

if TYPE_CHECKING:
    from .validation import ValidationReport

__all__ = ["render_report"]

_TEMPLATE = "validation.html.j2"
_PLOTTED_FEATURES = 15


def _plots(report: ValidationReport) -> dict[str, str | None]:
    plots: dict[str, str | None] = {"calibration": None, "confusion": None, "features": None}
    if report.calibration is not None and report.calibration.mean_predicted:
        plots["calibration"] = calibration_chart(report.calibration.mean_predicted,
                                                 report.calibration.fraction_positive)
    if report.confusion_matrix is not None and report.classes is not None:
        plots["confusion"] = confusion_chart(report.confusion_matrix, report.classes)
    if report.explanations is not None and report.explanations.features:
        top = report.explanations.features[:_PLOTTED_FEATURES]
        unit = ("mean |SHAP value|" if report.explanations.method.startswith("shap")
                else "drop in score when permuted")
        plots["features"] = bar_chart([f.feature for f in top], [f.importance for f in top],
                                      title="Top features", xlabel=unit)
    return plots


def render_report(report: ValidationReport) -> str:
    context: dict[str, Any] = {"r": report, "plots": _plots(report)}
    return render_page(_TEMPLATE, context, package="modelworks.governance")
