"""Pickle: any Python object, at the cost that loading runs code from the payload.

Only an explicit ``allow_pickle=True`` saves (via ``detect_format``) or loads it: unpickling
bytes from anyone you do not fully trust hands them your process.
"""

from __future__ import annotations

import pickle
import platform
from collections.abc import Collection
from typing import Any

from ...errors import IntegrityError, InvalidInput

__all__ = ["PROTOCOL", "PickleFormat"]

PROTOCOL = 5


class PickleFormat:
    """Any picklable object, opt-in only."""

    name = "pickle"
    library = "python"
    executes_code_on_load = True

    def library_version(self) -> str:
        return platform.python_version()

    def can_save(self, model: Any) -> bool:
        return True  # the fallback; an unpicklable object fails in ``save`` with the reason

    def save(self, model: Any) -> bytes:
        try:
            return pickle.dumps(model, protocol=PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"model cannot be pickled: {exc}", field="model") from exc

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),  # pickle cannot be restricted by type
        allow_pickle: bool = False,
    ) -> Any:
        if not allow_pickle:
            raise InvalidInput(
                "this model is stored as pickle, and loading pickle runs arbitrary code from "
                "the stored bytes; pass allow_pickle=True only if you trust who wrote them",
                field="allow_pickle",
            )
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise IntegrityError(f"not a pickle model payload: {exc}") from exc
