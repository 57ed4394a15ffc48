"""One self-contained HTML page from a Jinja2 template: no scripts, styles or images fetched.

Templates are autoescaped; values marked with the ``|safe`` filter (the inline SVG plots we
render ourselves) are the only markup that passes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_page"]


_MISSING = "\u2013"  # an en dash


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers for people: ``0.9123``, ``12,345``; missing values as an en dash."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return _MISSING
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or 0 < abs(value) < 1e-3 \
            else f"{value:.{digits}f}"
    return str(value)


@cache
def _environment(package: str, folder: str) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, folder),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly, not blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    return env


def render_page(template: str, context: Mapping[str, Any], *, package: str,
                folder: str = "templates") -> str:
    """Render ``package/folder/template`` with ``context`` into one HTML page."""
    return _environment(package, folder).get_template(template).render(**context)
