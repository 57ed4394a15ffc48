"""Matplotlib figures rendered to inline SVG strings (Agg backend, no display, no files).

The SVG is stable for equal input: no creation date is written and element ids are salted
with a fixed string, so a page can be re-rendered byte for byte.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["bar_chart", "calibration_chart", "confusion_chart", "figure_svg"]

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_WIDTH, _HEIGHT = 6.0, 3.6  # inches; the page scales the SVG to its column


def _figure(width: float = _WIDTH, height: float = _HEIGHT) -> Figure:
    # Figure() directly, not pyplot: no global state, no backend switch, thread-safe.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def figure_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), ready to inline in HTML."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "modelworks", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    # the RDF metadata block names external vocabularies (purl.org, creativecommons.org)
    return _METADATA.sub("", text[start:] if start >= 0 else text)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str,
              xlabel: str = "") -> str:
    """A horizontal bar chart, largest value on top."""
    fig = _figure(height=max(2.0, 0.3 * len(labels) + 1.0))
    ax = fig.add_subplot()
    order = list(range(len(labels)))[::-1]
    ax.barh([str(labels[i]) for i in order], [float(values[i]) for i in order],
            color="#3b6ea5")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return figure_svg(fig)


def calibration_chart(mean_predicted: Sequence[float], fraction_positive: Sequence[float],
                      *, title: str = "Calibration") -> str:
    """Reliability diagram: observed frequency against mean predicted probability per bin."""
    fig = _figure(width=4.5, height=4.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfectly calibrated")
    ax.plot(list(mean_predicted), list(fraction_positive), marker="o", color="#3b6ea5",
            label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction of positives")
    ax.set_title(title)
    ax.legend(loc="upper left")
    return figure_svg(fig)


def confusion_chart(matrix: Sequence[Sequence[int]], labels: Sequence[str], *,
                    title: str = "Confusion matrix") -> str:
    """Counts per (true, predicted) class, annotated in each cell."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    size = max(3.0, 0.6 * len(labels) + 2.0)
    fig = _figure(width=size + 0.8, height=size)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, [str(x) for x in labels])
    ax.set_yticks(ticks, [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts[i, j]):,}", ha="center", va="center",
                    color="white" if counts[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return figure_svg(fig)
