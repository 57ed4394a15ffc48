"""Optional model libraries, imported when a format first needs them."""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import InvalidInput

__all__ = ["require"]


def require(module: str, *, format_name: str, extra: str) -> Any:
    """The imported module, or InvalidInput saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InvalidInput(
            f"model format {format_name!r} needs {module}: pip install 'modelworks[{extra}]'",
            field="format",
        ) from exc
